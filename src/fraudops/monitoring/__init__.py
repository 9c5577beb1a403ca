"""Monitoring: data drift against the champion's training reference, performance with intervals.

The names below load with their module on first use: importing one light module of the
package (the Prometheus collector the service exports) must not load SciPy, scikit-learn
and matplotlib for the drift tests, metrics and plots.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudops.monitoring.drift import FeatureDrift, drift_report
    from fraudops.monitoring.metrics import MonitorCollector, write_textfile
    from fraudops.monitoring.monitor import (
        DriftResult,
        MonitorResult,
        NoChampionError,
        run_monitor,
    )
    from fraudops.monitoring.performance import (
        Estimate,
        WindowPerformance,
        daily_performance,
        wilson_interval,
        window_performance,
    )
    from fraudops.monitoring.policy import (
        REASONS,
        Policy,
        PolicyError,
        Verdict,
        decide,
        load_policy,
        policy_from_file,
    )
    from fraudops.monitoring.report import render_monitor, write_report
    from fraudops.monitoring.timeline import performance_timeline, plot_timeline

# Name -> the module of this package defining it.
_MODULES = {
    "FeatureDrift": "drift",
    "drift_report": "drift",
    "MonitorCollector": "metrics",
    "write_textfile": "metrics",
    "DriftResult": "monitor",
    "MonitorResult": "monitor",
    "NoChampionError": "monitor",
    "run_monitor": "monitor",
    "Estimate": "performance",
    "WindowPerformance": "performance",
    "daily_performance": "performance",
    "wilson_interval": "performance",
    "window_performance": "performance",
    "REASONS": "policy",
    "Policy": "policy",
    "PolicyError": "policy",
    "Verdict": "policy",
    "decide": "policy",
    "load_policy": "policy",
    "policy_from_file": "policy",
    "render_monitor": "report",
    "write_report": "report",
    "performance_timeline": "timeline",
    "plot_timeline": "timeline",
}

__all__ = [
    "REASONS",
    "DriftResult",
    "Estimate",
    "FeatureDrift",
    "MonitorCollector",
    "MonitorResult",
    "NoChampionError",
    "Policy",
    "PolicyError",
    "Verdict",
    "WindowPerformance",
    "daily_performance",
    "decide",
    "drift_report",
    "load_policy",
    "performance_timeline",
    "plot_timeline",
    "policy_from_file",
    "render_monitor",
    "run_monitor",
    "wilson_interval",
    "window_performance",
    "write_report",
    "write_textfile",
]


def __getattr__(name: str) -> Any:
    """Import a name's module on first use."""
    module = _MODULES.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
