"""The network as layers: the graph, its expansion from a spec, its variants."""
