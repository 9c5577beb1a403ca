"""Warehouse schema revisions, oldest first."""
