"""Calibration: datasets, grids, replay of recorded samples, importers. Imports planner, never the reverse."""
