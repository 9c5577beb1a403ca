"""Weekly data-quality checks over the stored transactions of a window of event time.

Each check measures one thing with a query the warehouse answers (storage.quality) and
grades it against a warn and a fail limit: the volume of each day against
the same weekday of the previous weeks, missing values of the fields the models read,
impossible and extreme amounts, label coverage of matured transactions, labels of unknown
transactions, transactions without a champion score, the scoring latency's p99, and
near-duplicate and late arrivals. A check that cannot judge (no history, no latencies
recorded) is "ok" with no value and says why.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import median
from typing import Any, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from scipy import stats

from fraudops.data.profiles import SPARKOV, DatasetProfile
from fraudops.features.labels import DEFAULT_MATURITY_QUANTILE, LabelMaturity
from fraudops.monitoring.maturity import observed_label_maturity
from fraudops.storage.warehouse import Warehouse
from fraudops.times import utc_naive

Status = Literal["ok", "warn", "fail"]
Unit = Literal["share", "factor", "ms", "count"]
_SEVERITY: dict[Status, int] = {"ok": 0, "warn": 1, "fail": 2}
DAY = timedelta(days=1)

# Record fields the models read that a transaction may lack (the canonical schema requires
# the id, card, merchant, category and amount, so those are never missing).
_ALWAYS_PRESENT = {
    SPARKOV.transaction_id,
    SPARKOV.label,
    SPARKOV.card_id,
    SPARKOV.merchant_id,
    SPARKOV.amount,
    SPARKOV.category,
}
MODEL_FIELDS: tuple[str, ...] = tuple(
    c for c in SPARKOV.required_columns if c not in _ALWAYS_PRESENT
)


def model_fields(profile: DatasetProfile) -> tuple[str, ...]:
    """The stored (canonical) fields the models of `profile` read that a transaction may
    lack: Sparkov's MODEL_FIELDS; another profile's optional coordinates and birth date
    (its other columns are required by its request schema, or kept apart)."""
    if profile == SPARKOV:
        return MODEL_FIELDS
    roles = {"dob": profile.birth_date}
    if profile.geo is not None:
        roles |= profile.geo.model_dump()
    return tuple(field for field, column in roles.items() if column in profile.optional)


@dataclass(frozen=True)
class Threshold:
    """Limits of one measure: above `warn` is a warning, above `fail` a failure."""

    warn: float
    fail: float | None = None

    def grade(self, value: float) -> tuple[Status, float]:
        """The status of a value and the limit it was judged by (the one crossed, else warn)."""
        if self.fail is not None and value > self.fail:
            return "fail", self.fail
        if value > self.warn:
            return "warn", self.warn
        return "ok", self.warn


@dataclass(frozen=True, kw_only=True)
class QualityLimits:
    """Where each check warns and fails; shares are fractions of the transactions checked."""

    # A day off its usual volume by this factor (either way), and significantly so.
    volume_factor: Threshold = Threshold(warn=2.0, fail=5.0)
    volume_alpha: float = 0.001  # Poisson test: small days vary a lot by chance alone
    baseline_weeks: int = 4
    missing_share: Threshold = Threshold(warn=0.01, fail=0.05)
    non_positive_amount_share: Threshold = Threshold(warn=0.001, fail=0.01)
    extreme_amount: float = 50_000.0
    extreme_amount_share: Threshold = Threshold(warn=0.0, fail=0.001)
    unlabelled_share: Threshold = Threshold(warn=0.05, fail=0.2)
    unknown_label_share: Threshold = Threshold(warn=0.01, fail=0.1)
    unscored_share: Threshold = Threshold(warn=0.001, fail=0.01)
    latency_p99_ms: Threshold = Threshold(warn=20.0, fail=100.0)
    latency_quantile: float = 0.99
    duplicate_share: Threshold = Threshold(warn=0.001)
    late_after: timedelta = timedelta(hours=1)
    late_share: Threshold = Threshold(warn=0.01)
    # When nearly every transaction arrived late, history is being replayed: not judged.
    replay_share: float = 0.99


@dataclass(frozen=True, kw_only=True)
class Check:
    """One check's verdict: what it measured, against which limit, and in words."""

    name: str
    status: Status
    value: float | None
    limit: float | None
    detail: str
    unit: Unit = "share"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "status": self.status,
            "value": _finite(self.value),
            "limit": _finite(self.limit),
            "unit": self.unit,
            "detail": self.detail,
        }


@dataclass(frozen=True, kw_only=True)
class QualityReport:
    """Every check over the transactions of [start, as_of)."""

    as_of: datetime
    start: datetime
    label_delay_days: float
    transactions: int
    checks: tuple[Check, ...] = field(default_factory=tuple)
    maturity: LabelMaturity | None = None  # how old a transaction must be to need a label
    immature: int = 0  # transactions younger than that, left out of the label coverage

    @property
    def status(self) -> Status:
        """The worst status of any check."""
        return max((c.status for c in self.checks), key=_SEVERITY.__getitem__, default="ok")

    @property
    def failed(self) -> bool:
        """Whether any check failed."""
        return self.status == "fail"

    def check(self, name: str) -> Check:
        """The check of that name."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as `fraudops quality --json` prints it."""
        return {
            "as_of": self.as_of.isoformat(),
            "start": self.start.isoformat(),
            "days": (self.as_of - self.start) / DAY,
            "label_delay_days": self.label_delay_days,
            "maturity": None
            if self.maturity is None
            else self.maturity.to_dict() | {"immature": self.immature},
            "transactions": self.transactions,
            "status": self.status,
            "failed": self.failed,
            "checks": [c.to_dict() for c in self.checks],
        }


def run_quality(
    warehouse: Warehouse,
    *,
    as_of: datetime | None = None,
    days: float = 7.0,
    label_delay_days: float = 7.0,
    maturity_quantile: float = DEFAULT_MATURITY_QUANTILE,
    limits: QualityLimits | None = None,
    profile: DatasetProfile = SPARKOV,
) -> QualityReport:
    """Check the stored transactions of [as_of - days, as_of) (event time, UTC), of the
    profile in service.

    `as_of` defaults to the second after the warehouse's event clock, so that the
    transaction at the clock (the latest, unless outliers are dated beyond it) is among
    those checked. Label coverage looks at the `days`
    before as_of minus the maturity age (label_delay_days, or longer where the fraud labels
    known by as_of show they take longer: monitoring.maturity): only transactions that old
    should have a label; the younger ones are counted as immature.
    """
    limits = limits or QualityLimits()
    if days <= 0:
        msg = f"days must be positive, not {days}"
        raise ValueError(msg)
    if as_of is None:
        clock = warehouse.event_clock()
        if clock is None:
            msg = "the warehouse holds no transactions: nothing to check"
            raise ValueError(msg)
        as_of = clock.replace(microsecond=0) + timedelta(seconds=1)
    end = utc_naive(as_of)
    start = end - timedelta(days=days)
    maturity = observed_label_maturity(
        warehouse, as_of=end, delay=timedelta(days=label_delay_days), quantile=maturity_quantile
    )
    age = maturity.age
    immature = warehouse.count_between(end - age, end)
    window = _Window(warehouse, start, end)
    total = window.count()
    checks = [
        volume_check(warehouse, start=start, end=end, total=total, limits=limits),
        *window.missing_checks(total, limits, model_fields(profile)),
        *window.amount_checks(total, limits),
        label_coverage_check(
            warehouse,
            start=start - age,
            end=end - age,
            known_by=end,
            limits=limits,
            immature=immature,
        ),
        unknown_labels_check(warehouse, start=start, end=end, limits=limits),
        window.unscored_check(total, limits),
        window.latency_check(limits),
        window.duplicate_check(total, limits),
        window.late_check(total, limits),
    ]
    return QualityReport(
        as_of=end,
        start=start,
        label_delay_days=label_delay_days,
        transactions=total,
        checks=tuple(checks),
        maturity=maturity,
        immature=immature,
    )


# --- volume ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DayVolume:
    """One day of the window: its count and the same weekday's counts in earlier weeks."""

    start: datetime
    count: int
    baseline: tuple[int, ...]


def judge_volume(days: Sequence[DayVolume], limits: QualityLimits) -> Check:
    """The volume check: the day furthest off its usual count, if significantly off."""
    worst: tuple[float, DayVolume, float] | None = None  # factor, day, usual
    judged = 0
    for day in days:
        if not day.baseline or median(day.baseline) <= 0:
            continue
        judged += 1
        usual = float(median(day.baseline))
        factor = _deviation_factor(day.count, usual)
        if _poisson_p_value(day.count, usual) >= limits.volume_alpha:
            factor = 1.0  # within chance for this volume
        if worst is None or factor > worst[0]:
            worst = (factor, day, usual)
    if worst is None:
        return Check(
            name="volume",
            status="ok",
            value=None,
            limit=limits.volume_factor.warn,
            unit="factor",
            detail="no earlier weeks stored to compare the daily volume with",
        )
    factor, day, usual = worst
    status, limit = limits.volume_factor.grade(factor)
    direction = "below" if day.count < usual else "above"
    detail = (
        f"{judged} days judged; furthest off: {day.start:%Y-%m-%d %H:%M} +24h, "
        f"{day.count} transactions, {direction} the usual {usual:g}"
        if factor > 1.0
        else f"{judged} days judged, each within chance of its usual volume"
    )
    return Check(
        name="volume", status=status, value=factor, limit=limit, unit="factor", detail=detail
    )


def volume_check(
    warehouse: Warehouse, *, start: datetime, end: datetime, total: int, limits: QualityLimits
) -> Check:
    """Daily volume of the window against the same 24 hours in each of the previous weeks."""
    days = int((end - start) / DAY)
    if days < 1:
        return Check(
            name="volume",
            status="ok",
            value=None,
            limit=limits.volume_factor.warn,
            unit="factor",
            detail="the window is shorter than a day",
        )
    if total == 0:
        return Check(
            name="volume",
            status="fail",
            value=None,
            limit=limits.volume_factor.fail,
            unit="factor",
            detail=f"no transactions stored in [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})",
        )
    earliest = warehouse.first_event_time()
    # Day j of week w (w = 0 is the window) covers [end - (j+1) - 7w days, end - j - 7w days).
    bins = {
        (w, j): end - timedelta(days=j + 1 + 7 * w)
        for w in range(limits.baseline_weeks + 1)
        for j in range(days)
        if w == 0 or (earliest is not None and end - timedelta(days=j + 1 + 7 * w) >= earliest)
    }
    counts = warehouse.counts_per_day(list(bins.values()))
    by_bin = dict(zip(bins, counts, strict=True))
    volumes = [
        DayVolume(
            start=bins[(0, j)],
            count=by_bin[(0, j)],
            baseline=tuple(
                by_bin[(w, j)] for w in range(1, limits.baseline_weeks + 1) if (w, j) in by_bin
            ),
        )
        for j in reversed(range(days))
    ]
    return judge_volume(volumes, limits)


def _deviation_factor(count: int, usual: float) -> float:
    """How many times above or below its usual volume a day is (1 when equal)."""
    if count >= usual:
        return count / usual
    return max(usual / max(count, 1), 1.0)  # an empty day counts as one transaction


def _poisson_p_value(count: int, usual: float) -> float:
    """Two-sided p-value of a day's count if it were Poisson around the usual volume."""
    if count < usual:
        tail = float(stats.poisson.cdf(count, usual))
    else:
        tail = float(stats.poisson.sf(count - 1, usual))
    return min(1.0, 2.0 * tail)


# --- checks over the window's transactions ---------------------------------------------------


class _Window:
    """The transactions stored with event_time in [start, end), and the checks over them."""

    def __init__(self, warehouse: Warehouse, start: datetime, end: datetime) -> None:
        self.warehouse = warehouse
        self.start, self.end = start, end

    def count(self) -> int:
        """How many transactions the window holds."""
        return self.warehouse.count_between(self.start, self.end)

    def missing_checks(
        self, total: int, limits: QualityLimits, fields: tuple[str, ...]
    ) -> list[Check]:
        """Per field the models read: the share of records without it (absent or blank)."""
        if not fields:
            return []
        counts = self.warehouse.missing_counts(self.start, self.end, fields)
        return [
            _share_check(
                f"missing_{name}",
                missing,
                total,
                limits.missing_share,
                what=f"transactions without {name}",
            )
            for name, missing in zip(fields, counts, strict=True)
        ]

    def amount_checks(self, total: int, limits: QualityLimits) -> list[Check]:
        """Shares of amounts that are not positive and that are implausibly large."""
        non_positive, extreme = self.warehouse.amount_counts(
            self.start, self.end, extreme=limits.extreme_amount
        )
        return [
            _share_check(
                "amount_non_positive",
                non_positive,
                total,
                limits.non_positive_amount_share,
                what="amounts of zero or less",
            ),
            _share_check(
                "amount_extreme",
                extreme,
                total,
                limits.extreme_amount_share,
                what=f"amounts above {limits.extreme_amount:g}",
            ),
        ]

    def unscored_check(self, total: int, limits: QualityLimits) -> Check:
        """Share of transactions without a champion score."""
        return _share_check(
            "unscored",
            self.warehouse.unscored_count(self.start, self.end),
            total,
            limits.unscored_share,
            what="transactions without a champion score",
        )

    def latency_check(self, limits: QualityLimits) -> Check:
        """The champion's scoring latency at the quantile (p99), by nearest rank."""
        recorded, value = self.warehouse.champion_latency_quantile(
            self.start, self.end, quantile=limits.latency_quantile
        )
        name = f"latency_p{limits.latency_quantile * 100:g}"
        if value is None:
            return Check(
                name=name,
                status="ok",
                value=None,
                limit=limits.latency_p99_ms.warn,
                unit="ms",
                detail="no scoring latencies recorded",
            )
        status, limit = limits.latency_p99_ms.grade(value)
        return Check(
            name=name,
            status=status,
            value=value,
            limit=limit,
            unit="ms",
            detail=f"over {recorded} champion scores",
        )

    def duplicate_check(self, total: int, limits: QualityLimits) -> Check:
        """Transactions repeating another's card, merchant, amount and time under a new id."""
        return _share_check(
            "duplicates",
            self.warehouse.duplicate_count(self.start, self.end),
            total,
            limits.duplicate_share,
            what="repeats of another transaction's card, merchant, amount and time",
        )

    def late_check(self, total: int, limits: QualityLimits) -> Check:
        """Share arriving long after their event time; not judged when replaying history."""
        late = self.warehouse.late_count(self.start, self.end, after=limits.late_after)
        hours = limits.late_after / timedelta(hours=1)
        if total and late / total >= limits.replay_share:
            return Check(
                name="late_arrivals",
                status="ok",
                value=late / total,
                limit=limits.late_share.warn,
                detail=f"{late} of {total} arrived over {hours:g} h after their event time: "
                "history replayed, lateness not judged",
            )
        return _share_check(
            "late_arrivals",
            late,
            total,
            limits.late_share,
            what=f"arrivals over {hours:g} h after their event time",
        )


def label_coverage_check(
    warehouse: Warehouse,
    *,
    start: datetime,
    end: datetime,
    known_by: datetime,
    limits: QualityLimits,
    immature: int = 0,
) -> Check:
    """Share of matured transactions (event time in [start, end)) with no label by `known_by`;
    the `immature` ones, younger than `end`, are not expected to have one yet."""
    matured, unlabelled = warehouse.unlabelled_count(start, end, known_by=known_by)
    check = _share_check(
        "unlabelled",
        unlabelled,
        matured,
        limits.unlabelled_share,
        what=f"matured transactions ([{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})) "
        "without a label",
    )
    return replace(check, detail=f"{check.detail}; {immature} younger left out as immature")


def unknown_labels_check(
    warehouse: Warehouse, *, start: datetime, end: datetime, limits: QualityLimits
) -> Check:
    """Share of the window's labels (by label time) whose transaction is not stored."""
    labels, unknown = warehouse.unknown_label_count(start, end)
    return _share_check(
        "unknown_labels",
        unknown,
        labels,
        limits.unknown_label_share,
        what="labels of transactions not stored",
    )


def _share_check(name: str, count: int, total: int, threshold: Threshold, *, what: str) -> Check:
    """A check of the share of `total` that `count` is."""
    if total == 0:
        return Check(
            name=name,
            status="ok",
            value=None,
            limit=threshold.warn,
            detail=f"nothing to check for {what}",
        )
    share = count / total
    status, limit = threshold.grade(share)
    return Check(
        name=name,
        status=status,
        value=share,
        limit=limit,
        detail=f"{count} of {total} {what}",
    )


def _finite(value: float | None) -> float | None:
    """JSON has no infinity or NaN: those become null."""
    return value if value is not None and math.isfinite(value) else None


# --- rendering ------------------------------------------------------------------------------

_STYLE: dict[Status, str] = {"ok": "green", "warn": "yellow", "fail": "bold red"}
_FORMAT: dict[Unit, Callable[[float], str]] = {
    "share": lambda v: f"{v:.2%}",
    "factor": lambda v: f"x{v:.2f}",
    "ms": lambda v: f"{v:.1f} ms",
    "count": lambda v: f"{v:g}",
}


def render_quality(report: QualityReport) -> RenderableType:
    """A terminal view of the report: a heading and one row per check."""
    heading = Text.assemble(
        ("Data quality ", "bold"),
        f"[{report.start:%Y-%m-%d %H:%M}, {report.as_of:%Y-%m-%d %H:%M}) ",
        f"{report.transactions} transactions: ",
        (report.status.upper(), _STYLE[report.status]),
    )
    if report.maturity is not None:
        heading.append(
            f"\nlabel coverage: {report.immature} younger transactions left out as immature, "
            f"{report.maturity}"
        )
    table = Table(show_lines=False)
    for column in ("check", "status", "value", "limit", "detail"):
        table.add_column(column, justify="right" if column in ("value", "limit") else "left")
    for check in report.checks:
        fmt = _FORMAT[check.unit]
        table.add_row(
            check.name,
            Text(check.status, style=_STYLE[check.status]),
            "-" if check.value is None else fmt(check.value),
            "-" if check.limit is None else fmt(check.limit),
            check.detail,
        )
    return Group(heading, table)
