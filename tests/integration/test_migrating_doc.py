"""docs/migrating.md runs: its Python blocks, in order, against a real `fraudops serve` and a
real `fraudops feed`; each HTTP request it shows gets a response of the shape it shows."""

import json
import re
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from champion_registry import champion_env, register_champion

from fraudops.training.bundle import ModelBundle
from ports import free_port
from service_process import FRAUDOPS, TOKEN, running_service, wait_answering

pytestmark = pytest.mark.integration

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Fields whose documented values hold whatever the model: the rest (probabilities, reasons,
# latencies) only keep their type.
EXACT = {"trans_num", "duplicate", "loc", "msg", "type"}


def snippets() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the page, in order."""
    return FENCE.findall(DOCUMENT.read_text(encoding="utf-8"))


def exchanges(blocks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each HTTP request block paired with the response block that follows it."""
    http = [text for language, text in blocks if language == "http"]
    requests = [text for text in http if not text.startswith("HTTP/")]
    responses = [text for text in http if text.startswith("HTTP/")]
    assert len(requests) == len(responses), "each request needs its response"
    return list(zip(requests, responses, strict=True))


def parsed(message: str) -> tuple[str, dict[str, str], Any]:
    """The first line, headers and JSON body of an HTTP message as the page writes it."""
    head, _, body = message.partition("\n\n")
    first, *lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in lines)
    return first, headers, json.loads(body) if body.strip() else None


def assert_shaped(documented: Any, actual: Any, where: str = "body") -> None:
    """Same keys and types all the way down; EXACT fields equal; lists by their items."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), where
        assert sorted(documented) == sorted(actual), where
        for key, value in documented.items():
            if key in EXACT:
                assert value == actual[key], f"{where}.{key}"
            else:
                assert_shaped(value, actual[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), where
        if documented and actual and where.endswith("reasons"):
            assert_shaped(documented[0], actual[0], f"{where}[0]")
        else:
            assert len(documented) == len(actual), where
            for number, (one, other) in enumerate(zip(documented, actual, strict=True)):
                assert_shaped(one, other, f"{where}[{number}]")
    elif isinstance(documented, bool) or documented is None:
        assert documented == actual or type(documented) is type(actual), where
    elif isinstance(documented, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), where
    else:
        assert type(documented) is type(actual), where


@contextmanager
def running_feed(home: Path, data: Path) -> Iterator[str]:
    """`fraudops feed` serving a file on a free port, until the block ends."""
    port = free_port()
    log = home / "feed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FRAUDOPS), "feed", "--port", str(port), "--data", str(data)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(process, f"{url}/healthz", log)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_the_page_shows_each_kind_of_client() -> None:
    """Python blocks and request/response pairs for the feed poller, the split date parts,
    the bare array and the wrong shape."""
    blocks = snippets()
    text = DOCUMENT.read_text(encoding="utf-8")
    for heading in (
        "## A feed poller that decodes the split document",
        "## A client that posts one record with its date split into fields",
        "## A client that posts a bare array",
    ):
        assert heading in text
    assert sum(language == "python" for language, _ in blocks) >= 4
    assert len(exchanges(blocks)) >= 5


def test_every_snippet_of_the_page_runs_against_a_real_service(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    train_bundle: Callable[..., ModelBundle],
    sample_frame: pd.DataFrame,
    sample_path: Path,
) -> None:
    """In page order: each Python block runs without error; each request is answered with
    the documented status and a body of the documented shape."""
    registry_home = register_champion(tmp_path / "registry", train_bundle, sample_frame)
    env = champion_env(tmp_path / "home", registry_home)
    with (
        running_service(tmp_path / "home", env=env) as service,
        running_feed(tmp_path, sample_path) as feed_url,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        monkeypatch.setenv("FRAUDOPS_URL", service.url)
        monkeypatch.setenv("FRAUDOPS_TOKEN", TOKEN)
        monkeypatch.setenv("FEED_URL", feed_url)
        namespace: dict[str, Any] = {}
        pairs = iter(exchanges(snippets()))
        for language, text in snippets():
            if language == "python":
                with warnings.catch_warnings():
                    # The page shows to_json as clients call it; pandas 3 warns that its
                    # default date format will change (both formats are accepted).
                    warnings.simplefilter("ignore", pd.errors.Pandas4Warning)
                    exec(compile(text, str(DOCUMENT), "exec"), namespace)  # noqa: S102
            elif language == "http" and not text.startswith("HTTP/"):
                request, response = next(pairs)
                first, headers, body = parsed(request.replace("$FRAUDOPS_TOKEN", TOKEN))
                method, path, _ = first.split(" ")
                answer = http.request(method, path, headers=headers, json=body)
                status, _, documented = parsed(response)
                assert int(status.split(" ")[1]) == answer.status_code, answer.text
                assert_shaped(documented, answer.json())
