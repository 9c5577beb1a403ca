"""A clock that moves only when told to, so feed timing is tested without sleeping."""


class ManualClock:
    """Seconds on a hand-driven clock; `sleep` advances it instead of waiting."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        if seconds < 0:
            msg = f"a clock does not go back ({seconds} s)"
            raise ValueError(msg)
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Stand-in for asyncio.sleep: the time passes at once."""
        self.advance(seconds)
