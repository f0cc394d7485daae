"""Pydantic models of the two YAML files, and the one place that turns their errors into a line."""
