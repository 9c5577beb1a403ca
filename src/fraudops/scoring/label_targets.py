"""What a label needs of the transactions scored most recently, kept to spare a warehouse read.

A label reaches the online state through `OnlineFeatureEngine.add_label`, which reads a
transaction's card and merchant keys, time and id. Labels mostly come for transactions
this service scored a while ago; remembering those few values of the latest ones (a
bounded number, oldest forgotten first) spares reading and decoding their stored records.
Targets belong to the engine that made them: another engine's spec may read other keys.
"""

import threading
from collections import OrderedDict

from fraudops.features.online import LabelTarget, OnlineFeatureEngine

# The most transactions remembered: a few days of a busy card portfolio, ~20 MB at most.
RECENT_TARGETS = 50_000


class RecentLabelTargets:
    """The label targets of the transactions scored last by one engine, by trans_num."""

    def __init__(self, size: int = RECENT_TARGETS) -> None:
        self._size = size
        self._engine: OnlineFeatureEngine | None = None
        self._targets: OrderedDict[str, LabelTarget] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, engine: OnlineFeatureEngine, trans_num: str, target: LabelTarget) -> None:
        """Remember a scored transaction's target (forgetting another engine's, the oldest)."""
        with self._lock:
            if engine is not self._engine:
                self._targets.clear()
                self._engine = engine
            self._targets[trans_num] = target
            if len(self._targets) > self._size:
                self._targets.popitem(last=False)

    def get(self, engine: OnlineFeatureEngine, trans_num: str) -> LabelTarget | None:
        """The target this engine made of the transaction, if still remembered."""
        if engine is not self._engine:
            return None
        return self._targets.get(trans_num)

    def __len__(self) -> int:
        return len(self._targets)
