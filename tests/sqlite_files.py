"""Copies of SQLite database files for tests that start from a prepared one."""

import sqlite3
from contextlib import closing
from pathlib import Path


def copy_database(source: Path, target: Path | str) -> None:
    """Copy a SQLite database into `target` (created or overwritten) with SQLite's backup
    API: a consistent copy, whatever its journal holds."""
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copy:
        original.backup(copy)
