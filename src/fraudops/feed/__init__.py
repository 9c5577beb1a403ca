"""The live feed: transactions one request at a time, like the public real-time payments API.

`TransactionFeed` holds the time-ordered rows, the cursor, the virtual clock and the
delayed labels (pure, injectable clock); `create_feed_app` is its HTTP adapter; the
`fraudops feed` command wires them to a file or the simulator and runs uvicorn.
"""

from fraudops.feed.app import create_feed_app
from fraudops.feed.clock import ManualClock
from fraudops.feed.options import RateLimit, parse_duration, parse_rate
from fraudops.feed.ratelimit import RateDecision, SlidingWindowRateLimiter
from fraudops.feed.records import FeedError, check_profile_can_feed, prepare_feed_records
from fraudops.feed.state import (
    FeedBatch,
    FeedExhaustedError,
    Label,
    LabelPage,
    LabelsDisabledError,
    TransactionFeed,
)

__all__ = [
    "FeedBatch",
    "FeedError",
    "FeedExhaustedError",
    "Label",
    "LabelPage",
    "LabelsDisabledError",
    "ManualClock",
    "RateDecision",
    "RateLimit",
    "SlidingWindowRateLimiter",
    "TransactionFeed",
    "check_profile_can_feed",
    "create_feed_app",
    "parse_duration",
    "parse_rate",
    "prepare_feed_records",
]
