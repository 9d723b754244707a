"""energy-console: measure what compressing an ML model does to its energy use.

The code lives in the top-level folders `core/` (measurement, no UI) and `tui/` (the Textual
console); pyproject.toml installs them as `energy_console.core` and `energy_console.tui`, so the
project claims one import name in site-packages, not the generic `core` and `tui`.
"""
