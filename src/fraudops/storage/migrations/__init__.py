"""Alembic migrations of the warehouse, shipped inside the package so they are installed."""
