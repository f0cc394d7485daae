"""Studies over many estimates: compare, sweep, reproduce the paper, its claims, verify counts."""
