"""`--fix`: turn a diagnosis into a plan of exact steps, back up, lock, apply, re-diagnose."""

from .run import RepairResult, run_repair

__all__ = ["RepairResult", "run_repair"]
