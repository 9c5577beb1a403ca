"""`fraudops keys rotate-card-hash`: a new key in the chain, card ids rehashed, no key shown."""

from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.config import get_settings
from fraudops.data.personal import KEY_FILE, PersonalData
from fraudops.storage import ScoreRecord, Warehouse


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A home of the test's own, with the embedded key file (no key in the environment)."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    monkeypatch.delenv("FRAUDOPS_CARD_HASH_KEY", raising=False)
    monkeypatch.delenv("FRAUDOPS_REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_rotation_adds_a_key_to_the_file_and_rehashes_stored_cards(tmp_path: Path) -> None:
    """The key file gains a line; the stored card id is the new chain's; nothing is printed
    of the keys."""
    warehouse = Warehouse.from_settings(get_settings())
    warehouse.migrate()
    score = ScoreRecord(
        model_name="m",
        model_version="1",
        fraud_probability=0.1,
        decision="approve",
        scored_at=datetime(2024, 1, 1),
    )
    transaction = {
        "trans_num": "t1",
        "cc_num": 4868880499277919,
        "merchant": "m",
        "category": "home",
        "amt": 1.0,
        "unix_time": 1_700_000_000,
    }
    warehouse.store_scored(transaction, score)
    warehouse.dispose()
    result = CliRunner().invoke(app, ["keys", "rotate-card-hash"])
    assert 0 == result.exit_code, result.output
    key_file = tmp_path / KEY_FILE
    lines = key_file.read_text().split()
    assert 2 == len(lines)
    assert 0o600 == key_file.stat().st_mode & 0o777
    assert not any(line in result.output for line in lines)
    rotated = PersonalData.from_key_file(key_file)
    stored = Warehouse.from_settings(get_settings()).get_transaction("t1")
    assert stored is not None
    assert rotated.card_id(4868880499277919) == stored.record["cc_num"]


def test_rotation_with_the_key_in_the_environment_needs_a_file_for_the_new_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With FRAUDOPS_CARD_HASH_KEY set, the new chain must go to --key-out: one error line."""
    monkeypatch.setenv("FRAUDOPS_CARD_HASH_KEY", "ab" * 32)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["keys", "rotate-card-hash"])
    assert 2 == result.exit_code
    assert "--key-out" in result.output
