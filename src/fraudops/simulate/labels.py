"""When each label becomes known: analysts review alerts within hours, chargebacks come weeks later.

The simulator has no model, so the bank's existing detection is a documented proxy: it
alerts on a share `alert_recall` of the frauds and a share `alert_rate` of the legitimate
transactions, at random. An analyst reviews each alert within hours and labels it with the
truth. A fraud no alert caught is disputed by its cardholder (a chargeback) after a
long-tailed delay, unless it is never reported; some disputes are friendly fraud, a
legitimate purchase the cardholder calls fraud. Everything else never gets a label.
"""

import math
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from fraudops.simulate.arrays import SECONDS_PER_DAY, BoolArray, FloatArray, IntArray

SECONDS_PER_HOUR = 3_600
NO_LABEL = np.iinfo(np.int64).min
"""label_seconds of a transaction whose label never arrives."""
REVIEW_SIGMA = 1.0
"""Log-scale spread of review delays (95 % within about 5x the median)."""
CHARGEBACK_SIGMA = 0.8
"""Log-scale spread of chargeback delays before truncation (a long right tail)."""


class LabelArrivalError(ValueError):
    """A label-arrival setting out of range, with a one-line reason."""


@dataclass(frozen=True, kw_only=True)
class LabelArrival:
    """How labels arrive: alert reviews within hours, chargebacks after days to months."""

    alert_recall: float = 0.5
    """Share of frauds the bank's detection alerts on (reviewed, labelled fraud)."""
    alert_rate: float = 0.005
    """Share of legitimate transactions it alerts on (reviewed, labelled legitimate)."""
    review_median_hours: float = 2.0
    review_max_hours: float = 24.0
    chargeback_median_days: float = 20.0
    chargeback_min_days: float = 7.0
    chargeback_max_days: float = 120.0
    unreported_share: float = 0.1
    """Share of the frauds no alert caught that their cardholder never reports."""
    friendly_fraud_share: float = 0.1
    """Share of chargebacks that are friendly fraud: legitimate, reported as fraud."""

    def __post_init__(self) -> None:
        """Check ranges so a bad setting fails here with a reason, not in the sampler."""
        problems = [
            (not 0.0 <= self.alert_recall <= 1.0, "alert recall must be between 0 and 1"),
            (not 0.0 <= self.alert_rate <= 1.0, "alert rate must be between 0 and 1"),
            (
                not 0.0 < self.review_median_hours <= self.review_max_hours,
                "review hours: need 0 < median <= max",
            ),
            (
                not 0.0 < self.chargeback_min_days < self.chargeback_max_days,
                "chargeback days: need 0 < min < max",
            ),
            (self.chargeback_median_days <= 0.0, "chargeback median days must be positive"),
            (not 0.0 <= self.unreported_share <= 1.0, "unreported share must be between 0 and 1"),
            (
                not 0.0 <= self.friendly_fraud_share < 1.0,
                "friendly fraud share must be at least 0 and below 1",
            ),
        ]
        for failed, message in problems:
            if failed:
                raise LabelArrivalError(message)


FIXED = "fixed"
REALISTIC = "realistic"


def parse_label_arrival(text: str) -> LabelArrival | None:
    """`fixed` (None: no label times), `realistic` (defaults) or `key=value,...` over them."""
    spec = text.strip()
    if spec == FIXED:
        return None
    if spec == REALISTIC:
        return LabelArrival()
    names = [f.name for f in fields(LabelArrival)]
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in names:
            msg = (
                f"labels {text!r}: {part!r} is not fixed, realistic or KEY=VALUE "
                f"({', '.join(names)})"
            )
            raise LabelArrivalError(msg)
        try:
            values[name.strip()] = float(value)
        except ValueError:
            msg = f"labels {text!r}: {name.strip()}={value!r} is not a number"
            raise LabelArrivalError(msg) from None
    if not values:
        msg = f"labels {text!r}: give fixed, realistic or KEY=VALUE,... ({', '.join(names)})"
        raise LabelArrivalError(msg)
    return LabelArrival(**values)


@dataclass(frozen=True)
class ArrivedLabels:
    """Per transaction: when its label arrives (epoch seconds, NO_LABEL: never) and its value."""

    label_seconds: IntArray
    reported: FloatArray  # 1.0 fraud, 0.0 legitimate, NaN no label


def truncated_lognormal(
    rng: np.random.Generator, size: int, *, median: float, sigma: float, low: float, high: float
) -> FloatArray:
    """Draws of a log-normal(log median, sigma) restricted to [low, high] (exact, by inversion)."""
    mu = math.log(median)
    lo, hi = ndtr((math.log(low) - mu) / sigma), ndtr((math.log(high) - mu) / sigma)
    u = rng.uniform(lo, hi, size)
    draws: FloatArray = np.clip(np.exp(mu + sigma * ndtri(u)), low, high)
    return draws


def arrive_labels(
    rng: np.random.Generator, *, time: IntArray, is_fraud: BoolArray, arrival: LabelArrival
) -> ArrivedLabels:
    """Draw who is alerted, reviewed, disputed or never labelled, and when each label arrives."""
    n = time.shape[0]
    alerted = rng.random(n) < np.where(is_fraud, arrival.alert_recall, arrival.alert_rate)
    disputed_fraud = is_fraud & ~alerted & (rng.random(n) >= arrival.unreported_share)
    quiet_legit = np.flatnonzero(~is_fraud & ~alerted)
    share = arrival.friendly_fraud_share
    friendly_count = min(len(quiet_legit), round(share / (1.0 - share) * int(disputed_fraud.sum())))
    friendly = np.zeros(n, dtype=np.bool_)
    friendly[rng.choice(quiet_legit, size=friendly_count, replace=False)] = True
    disputed = disputed_fraud | friendly

    delay = np.zeros(n, dtype=np.float64)
    delay[alerted] = SECONDS_PER_HOUR * truncated_lognormal(
        rng,
        int(alerted.sum()),
        median=arrival.review_median_hours,
        sigma=REVIEW_SIGMA,
        low=1.0 / 60.0,
        high=arrival.review_max_hours,
    )
    delay[disputed] = SECONDS_PER_DAY * truncated_lognormal(
        rng,
        int(disputed.sum()),
        median=arrival.chargeback_median_days,
        sigma=CHARGEBACK_SIGMA,
        low=arrival.chargeback_min_days,
        high=arrival.chargeback_max_days,
    )
    labelled = alerted | disputed
    label_seconds = np.where(labelled, time + np.round(delay).astype(np.int64), NO_LABEL)
    reported = np.full(n, np.nan)
    reported[alerted] = is_fraud[alerted]
    reported[disputed] = 1.0
    return ArrivedLabels(label_seconds=label_seconds, reported=reported)


def label_columns(labels: ArrivedLabels) -> dict[str, npt.NDArray[np.generic]]:
    """The contract's `label_time` (datetime64, NaT: never) and `reported_fraud` columns."""
    stamps = labels.label_seconds.astype("datetime64[s]").astype("datetime64[ns]")
    stamps[labels.label_seconds == NO_LABEL] = np.datetime64("NaT")
    return {"label_time": stamps, "reported_fraud": labels.reported}
