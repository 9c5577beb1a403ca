"""What a request's transactions are before any state changes: new, repeats, or refused.

Checked for every transaction of a request, before the online state or the warehouse is
touched, so that a refused request changes nothing:
- an event time too far ahead of the service's clock is refused (it would define "now");
- a stored card id sent as the card number is refused (protection would be skipped);
- a trans_num already stored, or sent earlier in the same request, is a repeat when the
  content is identical (answered with the stored result, nothing written, no label) and a
  conflict when it differs (refused, naming the fields that differ).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fraudops.data.personal import PersonalData, PersonalDataError, ProtectedTransaction
from fraudops.data.schema import CanonicalTransaction, ProfileTransaction
from fraudops.storage.base import KnownTransaction

# Fields a differing record is compared on, in the order a conflict names them.
_COMPARED = tuple(ProfileTransaction.model_fields)  # of every profile


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one transaction of a request is refused: where it is, which field, what is wrong."""

    index: int
    field: str
    message: str
    trans_num: str


class TransactionsRefusedError(ValueError):
    """Some transactions of a request are invalid (422) or conflict with stored ones (409).

    Nothing of the request was scored or stored.
    """

    def __init__(self, problems: Sequence[Problem], *, conflict: bool) -> None:
        super().__init__("; ".join(f"{p.trans_num}: {p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)
        self.conflict = conflict


@dataclass(frozen=True, kw_only=True)
class Admitted:
    """A request's transactions sorted out: what to score, and what repeats what."""

    new: list[tuple[int, ProtectedTransaction]] = field(default_factory=list)
    # index -> the index earlier in the request it repeats
    repeats_in_request: dict[int, int] = field(default_factory=dict)
    # index -> the stored transaction it repeats
    repeats_stored: dict[int, KnownTransaction] = field(default_factory=dict)
    # index -> why it is refused (only when admitted `each` on its own; else all are refused)
    refused: dict[int, "TransactionsRefusedError"] = field(default_factory=dict)


def admit(
    transactions: Sequence[CanonicalTransaction],
    *,
    personal: PersonalData,
    now: datetime,
    max_ahead_seconds: float,
    known: Callable[[Sequence[str]], Mapping[str, KnownTransaction]],
    each: bool = False,
) -> Admitted:
    """Sort a request's transactions out; TransactionsRefusedError if any is refused.

    `now` is the wall clock (naive UTC); `known` looks trans_nums up in the warehouse. With
    `each`, the transactions are of separate requests taken together: one refused is refused
    alone (in `refused`), and one repeating an earlier one is its repeat, as if sent after it.
    """
    protected, invalid = _protected(
        transactions, personal=personal, now=now, max_ahead_seconds=max_ahead_seconds
    )
    if invalid and not each:
        raise TransactionsRefusedError(invalid, conflict=False)
    admitted = Admitted(
        refused={p.index: TransactionsRefusedError([p], conflict=False) for p in invalid}
    )
    conflicts: list[Problem] = []
    first: dict[str, int] = {}
    for index, item in protected.items():
        earlier = first.setdefault(item.trans_num, index)
        if earlier == index:
            continue
        previous = protected[earlier]
        if previous.fingerprint == item.fingerprint:
            admitted.repeats_in_request[index] = earlier
        else:
            fields = differing_fields(previous.transaction.model_dump(mode="json"), item)
            conflicts.append(
                Problem(
                    index,
                    item.transaction.field_name("trans_num"),
                    f"sent earlier in this request with different content ({fields})",
                    item.trans_num,
                )
            )
    stored = known(list(first)) if first else {}
    for trans_num, index in first.items():
        item = protected[index]
        found = stored.get(trans_num)
        if found is None:
            admitted.new.append((index, item))
        elif found.fingerprint == item.fingerprint:
            admitted.repeats_stored[index] = found
        else:
            conflicts.append(conflict_with(found, item, index=index))
    if conflicts and not each:
        raise TransactionsRefusedError(sorted(conflicts, key=_index), conflict=True)
    for problem in conflicts:
        admitted.refused[problem.index] = TransactionsRefusedError([problem], conflict=True)
    admitted.new.sort(key=_first)
    return admitted


def _protected(
    transactions: Sequence[CanonicalTransaction],
    *,
    personal: PersonalData,
    now: datetime,
    max_ahead_seconds: float,
) -> tuple[dict[int, ProtectedTransaction], list[Problem]]:
    """Every transaction that can be protected, by index, and the problems of those that
    cannot."""
    invalid: list[Problem] = []
    protected: dict[int, ProtectedTransaction] = {}
    for index, transaction in enumerate(transactions):
        ahead = (transaction.event_time - now).total_seconds()
        if ahead > max_ahead_seconds:
            message = (
                f"{transaction.event_time:%Y-%m-%d %H:%M:%S} is {ahead:,.0f} s ahead of the "
                f"service's clock, more than the {max_ahead_seconds:,.0f} s allowed "
                "(FRAUDOPS_MAX_EVENT_AHEAD_SECONDS)"
            )
            field = transaction.field_name(transaction.time_field)
            invalid.append(Problem(index, field, message, transaction.trans_num))
            continue
        try:
            protected[index] = personal.protect(transaction)
        except PersonalDataError:
            message = "must be the card number, not a stored card id"
            field = transaction.field_name("cc_num")
            invalid.append(Problem(index, field, message, transaction.trans_num))
    return protected, invalid


def conflict_with(stored: KnownTransaction, item: ProtectedTransaction, *, index: int) -> Problem:
    """The problem of a transaction reusing a stored trans_num with other content."""
    fields = differing_fields(stored.record, item)
    return Problem(
        index,
        item.transaction.field_name("trans_num"),
        f"already stored with different content ({fields}); a trans_num names one "
        "transaction: send a new one, or the same content again",
        item.trans_num,
    )


def differing_fields(stored: Mapping[str, object], item: ProtectedTransaction) -> str:
    """The stored fields a transaction differs in, in words."""
    mine = item.transaction.model_dump(mode="json", exclude_none=True)
    differ = [
        item.transaction.field_name(name)
        for name in _COMPARED
        if name != "is_fraud" and _same_text(stored.get(name)) != _same_text(mine.get(name))
    ]
    if not differ:
        return "fields not stored in clear differ"
    return "fields differ: " + ", ".join(differ)


def _same_text(value: object) -> object:
    """A value compared as stored JSON would compare it (numbers and digits alike)."""
    return None if value is None else str(value)


def _index(problem: Problem) -> int:
    return problem.index


def _first(entry: tuple[int, ProtectedTransaction]) -> int:
    return entry[0]
