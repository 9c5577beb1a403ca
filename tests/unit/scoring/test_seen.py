"""The filter of stored trans_nums: never says new of one it holds, rarely holds a new one."""

from fraudops.scoring.seen import SeenFilter


def test_every_trans_num_added_may_be_contained() -> None:
    """No false negatives: a repeat is always looked up."""
    stored = [f"stored-{n}" for n in range(20_000)]
    seen = SeenFilter.of(stored[:10_000], count=10_000)
    for trans_num in stored[10_000:]:
        seen.add(trans_num)
    assert [] == [t for t in stored if not seen.may_contain(t)]


def test_new_trans_nums_are_rarely_taken_for_stored_ones() -> None:
    """At capacity about 1 % of new trans_nums are looked up for nothing."""
    seen = SeenFilter(capacity=5_000)
    for n in range(5_000):
        seen.add(f"stored-{n}")
    false_positives = sum(seen.may_contain(f"new-{n}") for n in range(5_000))
    assert false_positives < 150  # 3 %
