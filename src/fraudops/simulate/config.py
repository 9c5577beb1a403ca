"""What to simulate: population size, period, fraud rate and mix, and drift events."""

from dataclasses import dataclass, field
from datetime import date

from fraudops.data.schema import SPARKOV_CATEGORIES
from fraudops.simulate.catalogue import SCENARIOS
from fraudops.simulate.drift import DriftEvent
from fraudops.simulate.labels import LabelArrival

DEFAULT_START = date(2024, 1, 1)
DEFAULT_FRAUD_RATE = 0.005
MAX_DAYS = 3_660


class SimulationConfigError(ValueError):
    """A simulation setting out of range, with a one-line reason."""


@dataclass(frozen=True, kw_only=True)
class ScenarioMix:
    """Relative weights of the fraud scenarios (the share of fraud transactions from each)."""

    card_testing: float = 0.4
    compromised_merchant: float = 0.3
    stolen_credentials: float = 0.3

    def __post_init__(self) -> None:
        """Reject negative weights and an all-zero mix."""
        weights = self.weights()
        if any(w < 0.0 for w in weights) or sum(weights) <= 0.0:
            msg = f"scenario mix weights must be >= 0 and not all zero, got {weights}"
            raise SimulationConfigError(msg)

    def weights(self) -> tuple[float, float, float]:
        """The raw weights in SCENARIOS order."""
        return (self.card_testing, self.compromised_merchant, self.stolen_credentials)

    def fractions(self) -> dict[str, float]:
        """Each scenario's share of fraud transactions; the shares sum to one."""
        total = sum(self.weights())
        return {name: w / total for name, w in zip(SCENARIOS, self.weights(), strict=True)}


def parse_scenario_mix(text: str) -> ScenarioMix:
    """Parse `card_testing=0.5,stolen_credentials=0.5` (scenarios left out weigh zero)."""
    weights: dict[str, float] = dict.fromkeys(SCENARIOS, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in weights:
            msg = f"scenario mix {text!r}: {part!r} is not SCENARIO=WEIGHT ({', '.join(SCENARIOS)})"
            raise SimulationConfigError(msg)
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            msg = f"scenario mix {text!r}: weight {value!r} is not a number"
            raise SimulationConfigError(msg) from None
    return ScenarioMix(**weights)


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """Everything that determines a simulated data set; equal configs give equal frames."""

    days: int
    cards: int
    seed: int = 42
    merchants: int | None = None
    start: date = DEFAULT_START
    fraud_rate: float = DEFAULT_FRAUD_RATE
    scenario_mix: ScenarioMix = field(default_factory=ScenarioMix)
    drift: tuple[DriftEvent, ...] = ()
    label_arrival: LabelArrival | None = None
    """Realistic label arrival (label_time, reported_fraud columns); None: the fixed delay
    applied downstream, as for Sparkov files."""

    def __post_init__(self) -> None:
        """Check ranges so a bad setting fails here with a reason, not deep in numpy."""
        problems = [
            (not 1 <= self.days <= MAX_DAYS, f"days must be between 1 and {MAX_DAYS}"),
            (self.cards < 1, "cards must be at least 1"),
            (self.seed < 0, "seed must not be negative"),
            (not 0.0 <= self.fraud_rate <= 0.5, "fraud rate must be between 0 and 0.5"),
            (
                self.merchants is not None and self.merchants < len(SPARKOV_CATEGORIES),
                f"merchants must be at least {len(SPARKOV_CATEGORIES)} (one per category)",
            ),
        ]
        for failed, message in problems:
            if failed:
                raise SimulationConfigError(message)
        for event in self.drift:
            day = event.day_offset(self.start)
            if not 0 <= day < self.days:
                msg = (
                    f"drift {event.spec}: day {day} is outside the simulated days "
                    f"0..{self.days - 1} (starting {self.start.isoformat()})"
                )
                raise SimulationConfigError(msg)

    @property
    def merchant_count(self) -> int:
        """Merchants to create: as configured, else one per 20 cards and at least 50."""
        return self.merchants if self.merchants is not None else max(50, self.cards // 20)
