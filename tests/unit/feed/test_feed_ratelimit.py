"""The per-client sliding-window rate limiter, driven by a manual clock."""

from fraudops.feed import ManualClock, RateLimit, SlidingWindowRateLimiter


def test_sixth_request_in_a_minute_is_refused_at_five_per_minute() -> None:
    """Five requests in a minute pass; the sixth is refused with the seconds until a slot frees."""
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(RateLimit(requests=5, period_s=60.0), clock=clock)
    for _ in range(5):
        assert limiter.check("10.0.0.1").allowed
        clock.advance(1.0)
    decision = limiter.check("10.0.0.1")
    assert not decision.allowed
    assert 55 == decision.retry_after_s


def test_window_slides_so_requests_pass_again_once_old_ones_expire() -> None:
    """After the oldest request leaves the window exactly one more request fits."""
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(RateLimit(requests=2, period_s=10.0), clock=clock)
    assert limiter.check("a").allowed
    clock.advance(5.0)
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed
    clock.advance(5.0)
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed


def test_clients_are_limited_independently() -> None:
    """One client's requests do not use up another's allowance."""
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(RateLimit(requests=1, period_s=60.0), clock=clock)
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed
    assert limiter.check("b").allowed


def test_refused_requests_do_not_extend_the_wait() -> None:
    """Retrying while refused does not push the next allowed time further out."""
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(RateLimit(requests=1, period_s=60.0), clock=clock)
    limiter.check("a")
    for _ in range(10):
        clock.advance(5.0)
        limiter.check("a")
    clock.advance(10.0)
    assert limiter.check("a").allowed


def test_retry_after_is_at_least_one_second() -> None:
    """A fraction of a second to wait is reported as 1, never 0."""
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(RateLimit(requests=1, period_s=1.0), clock=clock)
    limiter.check("a")
    clock.advance(0.9)
    assert 1 == limiter.check("a").retry_after_s
