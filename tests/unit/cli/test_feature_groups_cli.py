"""`--feature-groups` of `fraudops train` and `backtest`: groups named, 'none', or refused."""

import pytest
import typer

from fraudops.cli.options import feature_groups


def test_named_groups_and_none_are_read() -> None:
    """Comma-separated names (spaces allowed) become the set; 'none' is the empty set."""
    expected = frozenset({"card_diversity", "card_hour_profile"})
    assert expected == feature_groups("card_diversity, card_hour_profile")
    assert frozenset() == feature_groups("none")


def test_an_unknown_group_exits_2_naming_the_option_and_the_known_groups(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A misspelt group is a one-line error, not a traceback."""
    with pytest.raises(typer.Exit) as exit_info:
        feature_groups("card_divers")
    assert 2 == exit_info.value.exit_code
    error = capsys.readouterr().err
    assert "--feature-groups: unknown card_divers" in error
    assert "card_fraud_history" in error
