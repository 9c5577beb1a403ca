"""All fraud of a simulation: the base rate split by the scenario mix, plus scenario drift."""

import structlog

from fraudops.simulate.arrays import SECONDS_PER_DAY, TransactionArrays, stream
from fraudops.simulate.config import SimulationConfig
from fraudops.simulate.drift import ScenarioDrift
from fraudops.simulate.scenarios import GENERATORS, CardPool, World

logger = structlog.get_logger(__name__)

# Compromised merchant runs first: it needs cards no other scenario has touched yet.
RUN_ORDER: tuple[str, ...] = ("compromised_merchant", "card_testing", "stolen_credentials")


def fraud_count(rate: float, legitimate: int) -> int:
    """Fraud transactions to add so they make up `rate` of all transactions."""
    return round(rate * legitimate / (1.0 - rate))


def allocate(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Split `total` by `fractions` into whole counts that add up (largest remainder)."""
    exact = {name: total * share for name, share in fractions.items()}
    counts = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: counts[name] - exact[name])
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def generate_fraud(*, world: World, config: SimulationConfig) -> TransactionArrays:
    """All fraud: the base rate split by the scenario mix, plus scenario drift from its day."""
    pool = CardPool(stream(config.seed, "card_pool"), len(world.cardholders))
    fractions = config.scenario_mix.fractions()
    targets = allocate(fraud_count(config.fraud_rate, len(world.legit)), fractions)
    parts: list[TransactionArrays] = []
    shortfall = 0
    for name in (n for n in RUN_ORDER if fractions[n] > 0):
        want = targets[name] + shortfall
        part = GENERATORS[name](
            stream(config.seed, name),
            world=world,
            pool=pool,
            target=want,
            window=(world.start, world.end),
        )
        parts.append(part)
        # A scenario short of cards or visits hands the rest to the next one.
        shortfall = want - len(part)
    if shortfall > 0:
        logger.warning("fraud_target_missed", missing=shortfall, fraud_rate=config.fraud_rate)
    for number, event in enumerate(config.drift):
        if not isinstance(event, ScenarioDrift):
            continue
        begin = world.start + event.day_offset(config.start) * SECONDS_PER_DAY
        target = fraud_count(event.rate, int((world.legit.time >= begin).sum()))
        part = GENERATORS[event.scenario](
            stream(config.seed, f"drift-{number}"),
            world=world,
            pool=pool,
            target=target,
            window=(begin, world.end),
        )
        # A drift near the end leaves some scenarios no room (breach victims need days).
        log = logger.warning if len(part) < target else logger.debug
        log("scenario_drift", drift=event.spec, target=target, produced=len(part))
        parts.append(part)
    return TransactionArrays.concat(parts)
