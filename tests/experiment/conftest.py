"""Fixtures of the experiment readout tests (defined in experiment_world.py, beside the helpers)."""
from experiment_world import stacks, world  # noqa: F401 (pytest finds fixtures by name here)
