"""The stack's live feed: labels a fixed delay after, or at the stream's own label times."""

from datetime import timedelta
from pathlib import Path

from fraudops.stack import StackConfig, feed_arguments


def test_the_feed_sends_labels_after_the_delay_or_at_their_own_times() -> None:
    """By default --label-delay in hours; with label_times, --label-times and no delay."""
    fixed = StackConfig(stream=Path("s.parquet"), speed=3600.0, label_delay=timedelta(days=2))
    assert [
        "feed", "--port", "9000", "--data", "s.parquet", "--speed", "3600",
        "--label-delay", "48h", "--max-wait", "0.5",
    ] == feed_arguments(fixed, port=9000)  # fmt: skip
    arriving = StackConfig(
        stream=Path("s.parquet"), speed=3600.0, label_delay=timedelta(days=2), label_times=True
    )
    arguments = feed_arguments(arriving, port=9000)
    assert "--label-times" in arguments
    assert "--label-delay" not in arguments
