"""Which trans_nums may have been stored: a Bloom filter that spares new ones a query.

Every request's trans_nums are looked up among the stored ones (a repeat answers the
stored result). Nearly all are new, and a warehouse query to learn so costs more CPU than
scoring them. When one process is the warehouse's only writer of scored transactions (the
embedded default: its online state is in process, so it must be), it knows every trans_num
stored: those in the warehouse when it started and those it has stored since. The filter
holds them all; a trans_num it has never seen is new for sure (a Bloom filter has no false
negatives), one it may have seen is looked up as before (about 1 % of new ones at the
filter's capacity, more beyond it: never wrong, only slower).
"""

import hashlib
import threading
from collections.abc import Iterable

BITS_PER_ENTRY = 10  # with HASHES = 7: about 1 % false positives at capacity
HASHES = 7
MIN_CAPACITY = 4_000_000


class SeenFilter:
    """A Bloom filter over trans_nums."""

    def __init__(self, capacity: int) -> None:
        self._bits = max(capacity, 1) * BITS_PER_ENTRY
        self._array = bytearray((self._bits + 7) // 8)
        self._lock = threading.Lock()  # setting bits is read-modify-write

    @classmethod
    def of(cls, trans_nums: Iterable[str], *, count: int) -> "SeenFilter":
        """A filter holding these, sized for twice as many (at least MIN_CAPACITY)."""
        seen = cls(max(MIN_CAPACITY, 2 * count))
        for trans_num in trans_nums:
            seen.add(trans_num)
        return seen

    def _positions(self, trans_num: str) -> list[int]:
        """The bits of a trans_num (double hashing of one 128-bit digest)."""
        digest = hashlib.blake2b(trans_num.encode(), digest_size=16).digest()
        first = int.from_bytes(digest[:8], "little")
        step = int.from_bytes(digest[8:], "little") | 1
        bits = self._bits
        return [(first + i * step) % bits for i in range(HASHES)]

    def add(self, trans_num: str) -> None:
        """Note a trans_num as stored."""
        positions = self._positions(trans_num)
        array = self._array
        with self._lock:
            for position in positions:
                array[position >> 3] |= 1 << (position & 7)

    def may_contain(self, trans_num: str) -> bool:
        """False only if the trans_num was never added."""
        array = self._array
        return all(array[p >> 3] & (1 << (p & 7)) for p in self._positions(trans_num))
