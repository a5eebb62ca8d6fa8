"""Diagnose and repair Django migration state."""

__version__ = "0.1.0"
