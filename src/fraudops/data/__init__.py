"""Canonical transaction schema, dataset profiles, readers and validation."""
