"""promtool checks the scrape configuration and the alert rules, and runs the rules' tests."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in deploy/prometheus (Debian's package, from `make deploy-tools`)."""
    binary = shutil.which("promtool")
    if binary is None:
        message = "promtool is not installed: run `make deploy-tools`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the rule tests must run, not skip)")
        pytest.skip(message)
    return subprocess.run(
        [binary, *arguments], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "rules.yml"),
        ("test", "rules", "rules_test.yml"),
    ],
    ids=["check config", "check rules", "test rules"],
)
def test_promtool_accepts_the_prometheus_files(arguments: tuple[str, ...]) -> None:
    """`promtool check config`, `check rules` and `test rules` pass."""
    result = promtool(*arguments)

    assert 0 == result.returncode, result.stdout + result.stderr


def test_every_alert_the_issue_asks_for_is_unit_tested() -> None:
    """Each alert rule has at least one case in rules_test.yml."""
    import yaml  # noqa: PLC0415

    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}

    assert set() == alerts - tested
