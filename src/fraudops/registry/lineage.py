"""Where a model came from: a fingerprint of its training data and the code's git commit."""

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

UNKNOWN_COMMIT = "unknown"


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and values (row order matters, index does not)."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}\x1f{dtype}\x1e".encode())
    rows = pd.util.hash_pandas_object(frame, index=False)
    digest.update(rows.to_numpy(dtype="uint64").tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class GitRevision:
    """The commit the code was run from, and whether tracked files differed from it."""

    commit: str
    dirty: bool | None


def git_revision(folder: Path | None = None) -> GitRevision:
    """The git commit where the code lives (default: this package), or "unknown" outside git."""
    git = shutil.which("git")
    where = folder if folder is not None else Path(__file__).resolve().parent
    if git is None:
        return GitRevision(UNKNOWN_COMMIT, None)
    try:
        commit = _git(git, where, "rev-parse", "HEAD")
        changes = _git(git, where, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return GitRevision(UNKNOWN_COMMIT, None)
    return GitRevision(commit, bool(changes))


def _git(git: str, where: Path, *args: str) -> str:
    """The stripped output of one git command; raises if git fails."""
    done = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
        [git, "-C", str(where), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.stdout.strip()
