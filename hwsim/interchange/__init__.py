"""hwsim's networks with weights, to and from ONNX: export, the weights of an imported model, ONNX Runtime.

This stage sits above the NumPy reference, whose parameter layout it converts: :mod:`.export` writes a
layer graph and the reference's arrays as an ONNX model; :mod:`.weights` reads an imported model's
initializers into the reference's layout; :mod:`.runtime` runs a model in ONNX Runtime beside the reference.
Reading a model's structure (no weights) is an input format and lives in :mod:`hwsim.spec.onnx_reader`.
"""
