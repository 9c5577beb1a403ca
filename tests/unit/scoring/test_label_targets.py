"""What labels of recently scored transactions need, remembered per engine."""

from fraudops.data.profiles import SPARKOV
from fraudops.features.online import EVENT_TIME_MS, OnlineFeatureEngine
from fraudops.features.spec import FeatureSpec
from fraudops.scoring.label_targets import RecentLabelTargets


def _engine() -> OnlineFeatureEngine:
    return OnlineFeatureEngine(FeatureSpec(profile=SPARKOV, label_delay_ms=0))


def test_the_oldest_target_is_forgotten_beyond_the_size() -> None:
    """Past its size, the transaction scored first is forgotten, the latest are kept."""
    engine = _engine()
    targets = RecentLabelTargets(size=2)
    for number in range(3):
        targets.add(engine, f"t{number}", ("card", "merchant", number, f"t{number}"))
    assert None is targets.get(engine, "t0")
    assert ("card", "merchant", 2, "t2") == targets.get(engine, "t2")
    assert 2 == len(targets)


def test_targets_belong_to_the_engine_that_made_them() -> None:
    """Another engine finds nothing, and its first target forgets the previous engine's."""
    first, second = _engine(), _engine()
    targets = RecentLabelTargets()
    targets.add(first, "t1", ("card", None, 1, "t1"))
    assert None is targets.get(second, "t1")
    targets.add(second, "t2", ("card", None, 2, "t2"))
    assert None is targets.get(first, "t1")
    assert ("card", None, 2, "t2") == targets.get(second, "t2")


def test_a_target_holds_what_add_label_reads() -> None:
    """The card and merchant keys, time and id; none for a record without card or merchant."""
    engine = _engine()
    record = {"trans_num": "t1", "cc_num": "h1:abc", "merchant": "m", EVENT_TIME_MS: 5}
    assert ("h1:abc", "m", 5, "t1") == engine.label_target(record)
    assert None is engine.label_target({"trans_num": "t2", EVENT_TIME_MS: 5})
