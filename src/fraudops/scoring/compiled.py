"""The tree walk of one row compiled with numba: leaf sum and contributions in one call.

The same walk as `model._Forest` in numpy, step for step, so the results are bit-identical:
all trees advance one level at a time (level-major order), each split's change of node
value is added to its feature's contribution in that order in double precision (as
`np.bincount` adds them), and the leaf values are added tree by tree, from zero, in the
leaf array's own precision (as `np.cumsum` does; float32 for XGBoost). No fastmath.
`walk_many` walks each row of a batch in turn, as `walk_one` does alone; `reason_orders`
then picks each row's reason columns from its contributions.

Compiled functions are cached on disk (`cache=True`): the first process on a machine pays
the compile (about a second or two), later ones load it in milliseconds. numba keeps the
cache in `__pycache__` beside this file when it may write there, else in the user's cache
folder (`~/.cache/numba`); NUMBA_CACHE_DIR overrides both (the container image sets it).
This module imports numba, so it is imported only where a tree model is loaded.
"""

import math
from typing import Any

import numba
import numpy as np

__all__ = ["reason_order", "reason_orders", "walk_many", "walk_one", "xgboost_sigmoid"]


@numba.njit(cache=True, nogil=True)
def walk_one(  # noqa: PLR0917 - positional: the cheapest numba dispatch
    row: Any,
    forest: Any,
    threshold: Any,
    change: Any,
    leaf_value: Any,
    roots: Any,
    depth: int,
    inclusive: bool,
    total: Any,
    contributions: Any,
) -> None:
    """Walk one row (float64) down every tree: leaf sum into total[0], changes per feature.

    `forest` holds one row per slot array: the next slot, the column read (the split
    feature, plus the width where a missing value goes left) and the split feature.
    Contributions are skipped when `contributions` is empty. When `total` has a second
    cell, it receives XGBoost's probability of the sum (`xgboost_sigmoid`).
    """
    width = row.shape[0]
    explain = contributions.shape[0] > 0
    slots = roots.copy()
    for _ in range(depth):
        for tree in range(slots.shape[0]):
            slot = slots[tree]
            column = forest[1, slot]
            if column < width:
                value = np.float32(row[column])
            else:
                value = np.float32(row[column - width])
                if np.isnan(value):
                    value = np.float32(-np.inf)
            goes_left = value <= threshold[slot] if inclusive else value < threshold[slot]
            taken = slot + 1 if goes_left else slot
            if explain:
                contributions[forest[2, taken]] += change[taken]
            slots[tree] = forest[0, taken]
    total[0] = 0
    for tree in range(slots.shape[0]):
        total[0] += leaf_value[slots[tree]]
    if total.shape[0] > 1:
        total[1] = xgboost_sigmoid(total[0])


@numba.njit(cache=True, nogil=True)
def xgboost_sigmoid(margin: Any) -> Any:
    """XGBoost's sigmoid in single precision: 1 / (expf(min(-x, 88.7)) + 1).

    numba compiles `math.exp` of a float32 to a call of the C library's expf, the function
    XGBoost calls, so the probability is XGBoost's to the bit (as model._c_float_function).
    """
    exponential = np.float32(math.exp(np.float32(min(-np.float64(margin), 88.7))))
    return np.float32(1.0) / (exponential + np.float32(1.0))


@numba.njit(cache=True, nogil=True)
def walk_many(  # noqa: PLR0917
    rows: Any,
    forest: Any,
    threshold: Any,
    change: Any,
    leaf_value: Any,
    roots: Any,
    depth: int,
    inclusive: bool,
    cells: Any,
    contributions: Any,
) -> None:
    """`walk_one` of each row: its total into `cells` (rows x 1), and XGBoost's probability
    of it too if `cells` has a second column; contributions (rows x width, or 0 x 0)."""
    explain = contributions.shape[0] > 0
    nothing = np.zeros(0)
    for index in range(rows.shape[0]):
        out = contributions[index] if explain else nothing
        walk_one(
            rows[index],
            forest,
            threshold,
            change,
            leaf_value,
            roots,
            depth,
            inclusive,
            cells[index],
            out,
        )


@numba.njit(cache=True, nogil=True)
def reason_order(contributions: Any, order: Any) -> int:
    """The columns of the largest positive contributions into `order`, largest first (of
    equal ones the lower column first); how many. The same columns, in the same order, as
    the positive ones at the head of a stable argsort of the negated contributions."""
    size = order.shape[0]
    count = 0
    for column in range(contributions.shape[0]):
        value = contributions[column]
        if not value > 0.0:
            continue
        position = count
        while position > 0 and contributions[order[position - 1]] < value:
            position -= 1
        if position >= size:
            continue
        for at in range(min(count, size - 1), position, -1):
            order[at] = order[at - 1]
        order[position] = column
        count = min(count + 1, size)
    return count


@numba.njit(cache=True, nogil=True)
def reason_orders(contributions: Any, orders: Any, counts: Any) -> None:
    """`reason_order` of each row of `contributions` into the rows of `orders`; the counts."""
    for index in range(contributions.shape[0]):
        counts[index] = reason_order(contributions[index], orders[index])
