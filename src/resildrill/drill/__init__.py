"""Drill and target files: typed models, loading with located errors, semantic checks."""
