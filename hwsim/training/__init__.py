"""Training on the NumPy reference: data, the loop, checkpoints, runs and experiments."""
