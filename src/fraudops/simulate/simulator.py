"""Run a whole simulation: population, purchases, fraud, drift, then one Sparkov frame."""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import structlog

from fraudops.progress import ProgressCallback, silent_progress
from fraudops.simulate.arrays import SECONDS_PER_DAY, TransactionArrays, cents, stream
from fraudops.simulate.behaviour import generate_habits
from fraudops.simulate.catalogue import SCENARIOS
from fraudops.simulate.config import SimulationConfig
from fraudops.simulate.drift import amount_multipliers
from fraudops.simulate.frame import sparkov_frame
from fraudops.simulate.fraud import generate_fraud
from fraudops.simulate.labels import arrive_labels, label_columns
from fraudops.simulate.merchants import Marketplace, generate_merchants
from fraudops.simulate.population import generate_cardholders
from fraudops.simulate.scenarios import World
from fraudops.simulate.transactions import epoch_seconds, generate_legitimate

logger = structlog.get_logger(__name__)

"""Told the current stage and the overall fraction done, from 0 to 1."""


def simulate(config: SimulationConfig, *, progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Simulate card transactions with labelled fraud, sorted by time, in Sparkov columns."""
    report = progress or silent_progress
    log = logger.bind(seed=config.seed, cards=config.cards, days=config.days)
    began = time.perf_counter()
    report("cardholders and merchants", 0.0)
    cardholders = generate_cardholders(
        stream(config.seed, "cardholders"), count=config.cards, start=config.start
    )
    habits = generate_habits(stream(config.seed, "habits"), cards=config.cards)
    market = Marketplace(
        generate_merchants(
            stream(config.seed, "merchants"), count=config.merchant_count, cardholders=cardholders
        )
    )
    report("purchases", 0.1)
    legit = generate_legitimate(
        stream(config.seed, "purchases"),
        config=config,
        cardholders=cardholders,
        habits=habits,
        market=market,
    )
    report("fraud", 0.45)
    start = epoch_seconds(config.start)
    world = World(
        cardholders=cardholders,
        habits=habits,
        market=market,
        legit=legit,
        start=start,
        end=start + config.days * SECONDS_PER_DAY,
    )
    tx = TransactionArrays.concat([legit, generate_fraud(world=world, config=config)])
    report("drift", 0.6)
    day = (tx.time - start) // SECONDS_PER_DAY
    factor = amount_multipliers(config.drift, start=config.start, day=day, category=tx.category)
    if (factor != 1.0).any():
        tx = dataclasses.replace(tx, amount=cents(tx.amount * factor))
    report("assembling", 0.65)
    tx = tx.take(np.argsort(tx.time, kind="stable"))
    frame = sparkov_frame(
        tx,
        cardholders=cardholders,
        merchants=market.merchants,
        rng=stream(config.seed, "trans_num"),
    )
    if config.label_arrival is not None:
        arrived = arrive_labels(
            stream(config.seed, "labels"),
            time=tx.time,
            is_fraud=tx.scenario > 0,
            arrival=config.label_arrival,
        )
        frame = frame.assign(**label_columns(arrived))
    report("done", 1.0)
    log.info(
        "simulated",
        rows=len(frame),
        fraud_rows=int((tx.scenario > 0).sum()),
        seconds=round(time.perf_counter() - began, 2),
    )
    return frame


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulated frame holds, for a one-screen report."""

    rows: int
    fraud_rows: int
    by_scenario: dict[str, int]
    first: str
    last: str
    arrivals: "LabelArrivals | None" = None  # with label times: how the labels arrived

    @property
    def fraud_rate(self) -> float:
        """Share of transactions that are fraud."""
        return self.fraud_rows / self.rows if self.rows else 0.0

    def lines(self) -> list[str]:
        """The summary as a few lines of text for a terminal."""
        width = max(len(name) for name in self.by_scenario)
        lines = [
            f"transactions  {self.rows:,}  ({self.first} .. {self.last})",
            f"fraud         {self.fraud_rows:,}  ({self.fraud_rate:.3%})",
            *(f"  {name:<{width}}  {count:,}" for name, count in self.by_scenario.items()),
        ]
        if self.arrivals is not None:
            lines += self.arrivals.lines()
        return lines


def summarise(frame: pd.DataFrame) -> SimulationSummary:
    """Count rows and fraud by scenario, and find the time range of a simulated frame."""
    counts = frame["fraud_scenario"].value_counts()
    stamps = frame["trans_date_trans_time"]
    return SimulationSummary(
        rows=len(frame),
        fraud_rows=int(frame["is_fraud"].sum()),
        by_scenario={name: int(counts.get(name, 0)) for name in SCENARIOS},
        first=str(stamps.min()) if len(frame) else "",
        last=str(stamps.max()) if len(frame) else "",
        arrivals=label_arrivals(frame) if "label_time" in frame.columns else None,
    )


QUANTILES = (0.1, 0.5, 0.9, 0.99)


@dataclass(frozen=True)
class LabelArrivals:
    """How a frame's labels arrived: counts, and delay quantiles of reviews and chargebacks."""

    reviewed: int  # alerts labelled by an analyst (delay under a day)
    reviewed_fraud: int
    chargebacks: int  # disputes (delay of days), friendly fraud included
    friendly: int  # chargebacks of legitimate transactions
    frauds: int
    unreported: int  # frauds that never get a label
    review_hours: tuple[float, ...]  # at QUANTILES
    chargeback_days: tuple[float, ...]

    def lines(self) -> list[str]:
        """The arrival summary for a terminal."""
        share = (lambda n: n / self.frauds) if self.frauds else (lambda _n: 0.0)
        levels = "/".join(f"p{round(q * 100)}" for q in QUANTILES)
        hours = " / ".join(f"{h:.1f}" for h in self.review_hours)
        days = " / ".join(f"{d:.0f}" for d in self.chargeback_days)
        return [
            f"labels        reviewed {self.reviewed:,} ({self.reviewed_fraud:,} fraud), "
            f"delay {levels} {hours} h",
            f"              chargebacks {self.chargebacks:,} ({self.friendly:,} friendly fraud), "
            f"delay {levels} {days} d",
            f"              frauds: {share(self.reviewed_fraud):.0%} reviewed, "
            f"{share(self.chargebacks - self.friendly):.0%} charged back, "
            f"{share(self.unreported):.0%} never reported",
        ]


def label_arrivals(frame: pd.DataFrame) -> LabelArrivals:
    """Labels by how they arrived: reviews (within a day), chargebacks, friendly, never."""
    event = pd.to_datetime(frame["trans_date_trans_time"], format="%Y-%m-%d %H:%M:%S")
    delay = (frame["label_time"] - event).dt.total_seconds()
    review = delay < SECONDS_PER_DAY
    chargeback = delay >= SECONDS_PER_DAY
    fraud = frame["is_fraud"] == 1

    def quantiles(values: "pd.Series[float]", unit: float) -> tuple[float, ...]:
        if values.empty:
            return tuple(float("nan") for _ in QUANTILES)
        return tuple(float(v) / unit for v in values.quantile(list(QUANTILES)))

    return LabelArrivals(
        reviewed=int(review.sum()),
        reviewed_fraud=int((review & fraud).sum()),
        chargebacks=int(chargeback.sum()),
        friendly=int((chargeback & ~fraud).sum()),
        frauds=int(fraud.sum()),
        unreported=int((fraud & frame["label_time"].isna()).sum()),
        review_hours=quantiles(delay[review], 3_600.0),
        chargeback_days=quantiles(delay[chargeback], float(SECONDS_PER_DAY)),
    )
