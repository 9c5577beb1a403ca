"""Fixtures of the integration tests."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_redis import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A running private redis-server; skipped without the binary, except under CI=true."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed: the restart tests run a server of their own"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the Redis tests must run, not skip)")
        pytest.skip(message)
    server = PrivateRedis(binary, tmp_path)
    server.start()
    yield server
    server.kill()
