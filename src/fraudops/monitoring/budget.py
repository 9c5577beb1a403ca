"""The alert budget: served alerts per day against the analysts' review capacity.

An alert is a review or a decline of the champion (every transaction at or above the review
threshold). Training fits the review threshold so that the validation days give
`review_capacity` alerts a day; the score distribution moves, so monitoring counts the
alerts of the last full event days and the policy retrains when each of the latest
`alert_budget_days` days is over capacity by more than `alert_budget_tolerance`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any


@dataclass(frozen=True, kw_only=True)
class AlertBudget:
    """Alerts of each checked day against the capacity, and whether the budget is overrun."""

    capacity: float
    tolerance: float
    required_days: int  # consecutive latest days over the limit that overrun the budget
    days: tuple[tuple[date, int], ...]  # oldest first

    @property
    def limit(self) -> float:
        """Alerts per day above which a day counts as over capacity."""
        return self.capacity * (1.0 + self.tolerance)

    @property
    def alerts_per_day(self) -> float:
        """Mean alerts per day over the checked days."""
        return sum(count for _, count in self.days) / len(self.days) if self.days else 0.0

    @property
    def over_days(self) -> int:
        """How many of the latest days in a row were over the limit."""
        run = 0
        for _, count in reversed(self.days):
            if count <= self.limit:
                break
            run += 1
        return run

    @property
    def overrun(self) -> bool:
        """Whether the latest `required_days` days were all over the limit."""
        return self.over_days >= self.required_days

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "capacity": self.capacity,
            "tolerance": self.tolerance,
            "limit": self.limit,
            "required_days": self.required_days,
            "alerts_per_day": self.alerts_per_day,
            "over_days": self.over_days,
            "overrun": self.overrun,
            "days": [{"day": day.isoformat(), "alerts": count} for day, count in self.days],
        }


def checked_days(as_of: datetime, count: int) -> tuple[datetime, datetime]:
    """[start, end) of the `count` full event days before the day of as_of."""
    end = datetime.combine(as_of.date(), datetime.min.time())
    return end - timedelta(days=count), end


def alert_budget(
    *,
    capacity: float,
    alerts: Mapping[date, int],
    start: datetime,
    end: datetime,
    tolerance: float,
    required_days: int,
) -> AlertBudget:
    """The budget of the days in [start, end); a day missing from `alerts` had none."""
    days = []
    day = start.date()
    while day < end.date():
        days.append((day, int(alerts.get(day, 0))))
        day += timedelta(days=1)
    return AlertBudget(
        capacity=capacity, tolerance=tolerance, required_days=required_days, days=tuple(days)
    )
