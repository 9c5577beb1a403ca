"""Long-running commands stop on an event set by SIGINT or SIGTERM, not on an exception."""

import os
import signal

import pytest

from fraudops.cli.options import stop_requested


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_sets_the_stop_event_and_the_handlers_come_back(signum: int) -> None:
    """Inside, the signal only sets the event (no KeyboardInterrupt lands mid-code); even a
    process started with SIGINT ignored hears it; outside, the previous handler is back."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a parent may leave it
    try:
        with stop_requested() as stop:
            assert not stop.is_set()
            os.kill(os.getpid(), signum)
            assert stop.wait(5.0)
        assert signal.SIG_IGN == signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, before)
