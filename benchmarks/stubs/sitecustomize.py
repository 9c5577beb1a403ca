"""Benchmark only: a service whose online features and/or model cost nothing, to measure the
ceiling of the rest of the scoring path (`bench_serve.py --stub features,model`).

Python imports `sitecustomize` at start from any folder on its path; bench_serve puts this
folder on the servers' PYTHONPATH with BENCH_STUB naming what to stub:

- `features`: each engine reads (and adds to its state) the first transaction it is given,
  then answers every later one with a copy of those features, touching no state;
- `model`: each model scores the first row it is given, then answers every later one with
  that score and those reasons.

Everything else runs as in service: parsing, admission and protection (repeats are still
found in the journal and the warehouse; the stubbed features claim no trans_num in the
state), the journal with its fdatasync, the drain into the warehouse, the answer. The
stored scores are wrong by design: a run with a stub measures speed only.
"""

import os
from typing import Any

STUBS = frozenset(filter(None, os.environ.get("BENCH_STUB", "").split(",")))


def _stub_features() -> None:
    from fraudops.features.online import OnlineFeatureEngine  # noqa: PLC0415

    first = OnlineFeatureEngine.features_then_update_each
    read: dict[int, Any] = {}

    def features_then_update_each(self: OnlineFeatureEngine, transactions: Any) -> list[Any]:
        if id(self) not in read:
            outcome = first(self, transactions[:1])[0]
            if isinstance(outcome, Exception):
                return [outcome, *first(self, transactions[1:])]
            read[id(self)] = outcome
        row = read[id(self)]
        return [row.copy() for _ in transactions]

    OnlineFeatureEngine.features_then_update_each = features_then_update_each  # type: ignore[method-assign]


def _stub_model() -> None:
    from fraudops.scoring.model import FastModel  # noqa: PLC0415

    first = FastModel.score
    scored: dict[int, Any] = {}

    def score(self: FastModel, row: Any, *, top: int = 3) -> Any:
        if id(self) not in scored:
            scored[id(self)] = first(self, row, top=top)
        return scored[id(self)]

    def score_batch(self: FastModel, rows: Any, *, top: int = 3) -> list[Any]:
        return [score(self, row, top=top) for row in rows]

    FastModel.score = score  # type: ignore[method-assign]
    FastModel.score_batch = score_batch  # type: ignore[method-assign]


if "features" in STUBS:
    _stub_features()
if "model" in STUBS:
    _stub_model()
