"""Rendering: per-layer tables in every format, plots, traces, training progress."""
