"""Models whose migrations lack only what QuietAutodetector ignores."""
