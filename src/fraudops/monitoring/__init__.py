"""Monitoring: data drift against the champion's training reference, performance with intervals."""

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
