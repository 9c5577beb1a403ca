"""Transaction simulator: realistic card spending with labelled fraud scenarios and drift.

Cardholders live in real US places and have their own habits (activity, category mix,
amount level per category, preferred hours, favourite shops); merchants sit near them, one
category each. Three fraud scenarios add ground-truth fraud (`fraud_scenario`): card
testing, compromised merchant and stolen credentials. Drift events change amounts, the
category mix or the fraud from a given day. Optionally each label gets the time it became
known (alert reviews, chargebacks, unreported and friendly fraud). Same config, same
frame. See docs/simulator.md.
"""

from fraudops.progress import ProgressCallback
from fraudops.simulate.catalogue import SCENARIOS
from fraudops.simulate.config import (
    ScenarioMix,
    SimulationConfig,
    SimulationConfigError,
    parse_scenario_mix,
)
from fraudops.simulate.drift import (
    AmountDrift,
    CategoryDrift,
    DriftEvent,
    DriftSpecError,
    ScenarioDrift,
    parse_drift,
)
from fraudops.simulate.io import OutputPathError, output_kind, to_fdh, write_transactions
from fraudops.simulate.labels import LabelArrival, LabelArrivalError, parse_label_arrival
from fraudops.simulate.simulator import SimulationSummary, simulate, summarise

__all__ = [
    "SCENARIOS",
    "AmountDrift",
    "CategoryDrift",
    "DriftEvent",
    "DriftSpecError",
    "LabelArrival",
    "LabelArrivalError",
    "OutputPathError",
    "ProgressCallback",
    "ScenarioDrift",
    "ScenarioMix",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationSummary",
    "output_kind",
    "parse_drift",
    "parse_label_arrival",
    "parse_scenario_mix",
    "simulate",
    "summarise",
    "to_fdh",
    "write_transactions",
]
