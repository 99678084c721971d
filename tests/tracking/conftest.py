"""Fixtures for the tracking and tuning tests: the config tests' private copy of the shipped stacks."""
from __future__ import annotations

from foundation.conftest import cli, edit, invalid, stacks  # noqa: F401  (pytest fixtures, re-exported)
