"""Tests of drill and target files: loading, semantic checks, fixtures."""
