"""`fraudops feed`: options are checked up front, and the app it would serve is wired right."""

import asyncio
import io
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI
from feed_frames import build_sparkov_frame
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.feed import server

MINUTES = [f"2024-03-01 10:{m:02d}:00" for m in range(6)]


@pytest.fixture
def sparkov_csv(tmp_path: Path) -> Path:
    """A small Sparkov-shaped CSV file."""
    path = tmp_path / "transactions.csv"
    build_sparkov_frame(MINUTES).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "give exactly one of --data FILE or --simulate"),
        (["--simulate", "--data", "x.csv"], "give exactly one of --data FILE or --simulate"),
        (["--simulate", "--rate-limit", "5/fortnight"], "invalid rate limit '5/fortnight'"),
        (["--simulate", "--label-delay", "soon"], "invalid duration 'soon'"),
        (["--simulate", "--speed", "0"], "--speed must be > 0"),
        (["--simulate", "--max-batch", "0"], "--max-batch must be between 1 and"),
        (["--simulate", "--days", "0"], "days must be between"),
        (["--simulate", "--drift", "bogus"], "drift 'bogus'"),
        (["--data", "missing.csv"], "missing.csv"),
    ],
)
def test_bad_options_exit_2_with_one_line_error(options: list[str], message: str) -> None:
    """Each bad option gives exit code 2 and a single `error:` line, no traceback."""
    result = CliRunner().invoke(app, ["feed", "--port", "8765", *options])
    assert 2 == result.exit_code
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines)
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_profile_without_sparkov_columns_is_refused(sparkov_csv: Path) -> None:
    """A profile that is not Sparkov-shaped cannot feed: exit 2 naming the profile."""
    result = CliRunner().invoke(
        app, ["feed", "--port", "8765", "--data", str(sparkov_csv), "--profile", "fdh"]
    )
    assert 2 == result.exit_code
    assert "profile 'fdh' cannot feed" in result.stderr


def test_command_serves_the_file_with_its_options(
    sparkov_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app handed to uvicorn serves the file, with delayed labels and the rate limit set."""
    started: list[tuple[FastAPI, str, int]] = []
    monkeypatch.setattr(
        server,
        "run_feed_server",
        lambda app, *, host, port: started.append((app, host, port)),
    )
    options = ["--data", str(sparkov_csv), "--label-delay", "2m", "--rate-limit", "2/hour"]
    result = CliRunner().invoke(app, ["feed", "--port", "8765", *options])
    assert 0 == result.exit_code, result.output
    [(feed_app, host, port)] = started
    assert ("127.0.0.1", 8765) == (host, port)

    async def poll() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=feed_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://feed") as client:
            return [await client.get("/current-transactions", params={"n": 3}) for _ in range(3)]

    first, second, third = asyncio.run(poll())
    rows = pd.read_json(io.StringIO(first.json()), orient="split")
    assert ["t0", "t1", "t2"] == rows["trans_num"].tolist()
    assert rows["is_fraud"].isna().all()
    assert (200, 429) == (second.status_code, third.status_code)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--simulate", "--labels", "realistic"], "--labels needs --simulate and --label-times"),
        (["--simulate", "--label-times", "--labels", "fixed"], "--labels fixed gives none"),
        (["--simulate", "--label-times", "--label-delay", "1h"], "not both"),
    ],
)
def test_label_time_options_must_agree(options: list[str], message: str) -> None:
    """--labels needs --label-times, which needs label times and no fixed delay."""
    result = CliRunner().invoke(
        app, ["feed", "--port", "8765", "--days", "2", "--cards", "20", *options]
    )
    assert 2 == result.exit_code
    assert message in result.stderr


def test_simulated_label_times_are_served_on_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """--simulate --label-times: no label in the stream; reviewed alerts' labels on /labels."""
    started: list[tuple[FastAPI, str, int]] = []
    monkeypatch.setattr(
        server,
        "run_feed_server",
        lambda app, *, host, port: started.append((app, host, port)),
    )
    options = ["--simulate", "--days", "3", "--cards", "30", "--label-times"]
    labels = ["--labels", "alert_rate=0.5,review_median_hours=0.5,review_max_hours=1"]
    result = CliRunner().invoke(app, ["feed", "--port", "8765", *options, *labels])
    assert 0 == result.exit_code, result.output
    [(feed_app, _, _)] = started

    async def poll() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=feed_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://feed") as client:
            rows = await client.get("/current-transactions", params={"n": 1000})
            return rows, await client.get("/labels")

    rows, labels_page = asyncio.run(poll())
    assert pd.read_json(io.StringIO(rows.json()), orient="split")["is_fraud"].isna().all()
    served = labels_page.json()["labels"]
    assert served
    assert all(0 < x["label_time"] - x["event_time"] <= 3_600_000 for x in served)


def test_a_file_with_label_times_is_served_by_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--data FILE --label-times reads label_time and reported_fraud through the readers."""
    started: list[tuple[FastAPI, str, int]] = []
    monkeypatch.setattr(
        server,
        "run_feed_server",
        lambda app, *, host, port: started.append((app, host, port)),
    )
    path = tmp_path / "labelled.csv"
    frame = build_sparkov_frame(MINUTES).assign(
        label_time=["2024-03-01 10:02:00", "", "", "", "", ""],
        reported_fraud=["1", "", "", "", "", ""],
    )
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["feed", "--port", "8765", "--data", str(path), "--label-times"]
    )
    assert 0 == result.exit_code, result.output
    [(feed_app, _, _)] = started

    async def poll() -> httpx.Response:
        transport = httpx.ASGITransport(app=feed_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://feed") as client:
            await client.get("/current-transactions", params={"n": 6})
            return await client.get("/labels")

    labels = asyncio.run(poll()).json()["labels"]
    assert [("t0", 1)] == [(x["trans_num"], x["is_fraud"]) for x in labels]
