"""When a label is known: the one rule every feature engine, training and monitoring use.

A label counts at time t once its label time is strictly before t, as every feature at t
sees only events strictly before t. A frame may say when each label arrived (the label
contract: `label_time`, naive = UTC, NaT where no label ever arrives, and `reported_fraud`,
the value that arrived); without `label_time` the fixed rule holds: a label is known from
its transaction's time plus the label delay, with the profile's label as its value. Times
are epoch milliseconds; a label that never arrives has the label time NEVER_MS.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.data.profiles import DatasetProfile
from fraudops.features import columns
from fraudops.features.formulas import IntArray

LABEL_TIME = "label_time"
REPORTED_FRAUD = "reported_fraud"
NEVER_MS = int(np.iinfo(np.int64).max)
"""The label time of a label that never arrives: known at no time."""
DEFAULT_MATURITY_QUANTILE = 0.95
MIN_FRAUDS_FOR_MATURITY = 30
"""Labelled frauds needed before their label waits say how long labels take."""
EARLY_LABEL_SHARE = 0.05
"""Share of the fraud labels that must arrive before the label delay for the label windows
to end at t (`label_window_lag_ms`)."""


@overload
def label_known(label_time_ms: int, at_ms: int) -> bool: ...


@overload
def label_known(label_time_ms: IntArray, at_ms: "IntArray | int") -> npt.NDArray[np.bool_]: ...


@overload
def label_known(label_time_ms: "IntArray | int", at_ms: IntArray) -> npt.NDArray[np.bool_]: ...


def label_known(label_time_ms: Any, at_ms: Any) -> Any:
    """Whether a label that arrives at `label_time_ms` is known at `at_ms` (arrays too)."""
    return label_time_ms < at_ms


def fixed_label_time_ms(event_time_ms: Any, label_delay_ms: int) -> Any:
    """When a label is known under the fixed rule: its transaction's time plus the delay."""
    return event_time_ms + label_delay_ms


@dataclass(frozen=True)
class LabelArrival:
    """A frame's labels as they arrive: the value (0/1) and its label time, per row."""

    fraud: IntArray  # 0 where no label arrives
    times_ms: IntArray  # NEVER_MS where no label arrives

    def known_at(self, at_ms: "IntArray | int") -> IntArray:
        """The labels known at `at_ms` (one instant, or one per row), 0 where none is."""
        known: IntArray = np.where(label_known(self.times_ms, at_ms), self.fraud, 0)
        return known

    def known_by(self, by_ms: int) -> IntArray:
        """The labels known by `by_ms` inclusive (a label arrived at or before it), 0 elsewhere:
        what a warehouse read with `labels_known_by` holds."""
        return self.known_at(by_ms + 1)


def has_label_times(frame: pd.DataFrame) -> bool:
    """Whether a frame says when its labels arrived (else the fixed delay rule holds)."""
    return LABEL_TIME in frame.columns


def label_arrival(
    frame: pd.DataFrame, profile: DatasetProfile, *, label_delay_ms: int
) -> LabelArrival:
    """The frame's labels and when each is known: its `label_time` and `reported_fraud` where
    it has them, else the profile's label, known `label_delay_ms` after the transaction.

    A frame without a label column (scoring time) has no label known, ever.
    """
    if not has_label_times(frame):
        fraud = columns.labels(frame, profile.label)
        if profile.label is None or profile.label not in frame.columns:
            return LabelArrival(fraud=fraud, times_ms=np.full(len(frame), NEVER_MS))
        events = columns.event_times_ms(frame)
        return LabelArrival(fraud=fraud, times_ms=fixed_label_time_ms(events, label_delay_ms))
    times, arrives = label_times_ms(frame)
    source = REPORTED_FRAUD if REPORTED_FRAUD in frame.columns else profile.label
    fraud = np.where(arrives, columns.labels(frame, source), 0).astype(np.int64)
    return LabelArrival(fraud=fraud, times_ms=times)


def label_window_lag_ms(
    frame: pd.DataFrame, profile: DatasetProfile, *, label_delay_ms: int
) -> int:
    """Where the label windows of merchant risk and the card's fraud history end, before t,
    for data like `frame`: at t (0) when at least EARLY_LABEL_SHARE of its fraud labels
    arrived sooner than the delay (an analyst's verdict minutes after the alert counts from
    then), else the delay before t. A frame without label times, or whose labels all came
    the delay after (a fixed-delay replay stored in the warehouse), keeps the fixed rule:
    nothing younger than the delay is known there, and windows reaching t would only dilute.
    """
    if not has_label_times(frame):
        return label_delay_ms
    arrival = label_arrival(frame, profile, label_delay_ms=label_delay_ms)
    frauds = (arrival.fraud == 1) & (arrival.times_ms != NEVER_MS)
    if not frauds.any():
        return label_delay_ms
    waits = arrival.times_ms[frauds] - columns.event_times_ms(frame)[frauds]
    early = float(np.mean(waits < label_delay_ms))
    return 0 if early >= EARLY_LABEL_SHARE else label_delay_ms


def label_times_ms(frame: pd.DataFrame) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """The `label_time` column as epoch ms (NEVER_MS where NaT), and where a label arrives."""
    ms, arrives = columns.datetimes_ms(frame[LABEL_TIME])
    return np.where(arrives, ms, NEVER_MS), arrives


@dataclass(frozen=True, kw_only=True)
class LabelMaturity:
    """How old an unlabelled transaction must be to count as legitimate, and from what."""

    age: timedelta
    delay: timedelta  # the configured label delay, the least age
    quantile: float
    frauds: int  # labelled frauds whose label wait was observed
    observed: timedelta | None  # their waits' quantile; None when too few frauds

    @property
    def source(self) -> str:
        """Where the age comes from: the observed label waits, or the configured delay."""
        return "observed" if self.observed is not None and self.observed > self.delay else "delay"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, ages in days."""
        return {
            "age_days": self.age / timedelta(days=1),
            "delay_days": self.delay / timedelta(days=1),
            "quantile": self.quantile,
            "frauds": self.frauds,
            "observed_days": None if self.observed is None else self.observed / timedelta(days=1),
            "source": self.source,
        }

    def __str__(self) -> str:
        """One line for people."""
        days = self.age / timedelta(days=1)
        if self.observed is None:
            why = f"the configured delay ({self.frauds} labelled frauds, too few to estimate)"
        else:
            waited = self.observed / timedelta(days=1)
            why = (
                f"{self.quantile:.0%} of {self.frauds} fraud labels arrived within "
                f"{waited:.2f} days; configured delay {self.delay / timedelta(days=1):g} days"
            )
        return f"matured at {days:.2f} days: {why}"


def label_maturity(
    fraud_waits: "Sequence[float] | npt.NDArray[np.floating[Any]]",
    *,
    delay: timedelta,
    quantile: float = DEFAULT_MATURITY_QUANTILE,
    min_frauds: int = MIN_FRAUDS_FOR_MATURITY,
) -> LabelMaturity:
    """The age from which an unlabelled transaction counts as legitimate: the `quantile` of
    the label waits (label time minus transaction time, seconds) of labelled frauds, so that
    a fraud's label would have arrived by then with that probability; never less than the
    configured delay, which also stands alone with fewer than `min_frauds` frauds.

    Only labels already arrived are seen, the quick ones first (an analyst's verdict beats
    a chargeback by weeks), so the quantile can only underestimate the wait: it lengthens
    the delay where labels are slower, and never shortens it.
    """
    if not 0.0 < quantile < 1.0:
        msg = f"the label maturity quantile must lie strictly between 0 and 1, got {quantile}"
        raise ValueError(msg)
    waits = np.asarray(fraud_waits, dtype=np.float64)
    waits = waits[np.isfinite(waits)]
    if len(waits) < min_frauds:
        return LabelMaturity(
            age=delay, delay=delay, quantile=quantile, frauds=len(waits), observed=None
        )
    observed = timedelta(seconds=float(np.quantile(np.maximum(waits, 0.0), quantile)))
    return LabelMaturity(
        age=max(delay, observed),
        delay=delay,
        quantile=quantile,
        frauds=len(waits),
        observed=observed,
    )
