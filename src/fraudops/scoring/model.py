"""One transaction's fraud probability in microseconds, and the features that pushed it up.

`FastModel(bundle)` turns the bundle's fitted estimator, once, into plain numpy arrays and
scores a single feature vector without pandas, sklearn validation or xgboost's per-call
set-up (about 140 µs of fixed cost even for a one-tree booster on the reference machine):

- XGBoost (gbtree, binary:logistic): every tree of the prediction's iteration range (the
  early-stopped best iteration, as XGBClassifier.predict_proba uses) walked level by level
  for all trees at once, leaves summed in single precision in XGBoost's order and squashed
  with the C library's expf as XGBoost does, so `predict_one` equals `predict_proba`
  bit for bit. `predict_many` calls `Booster.inplace_predict` as predict_proba does.
- Logistic regression pipeline: imputer statistics, scaler and coefficients in numpy.
- Random forest pipeline: the same level-by-level walk over the fitted sklearn trees.
- Anything else: `bundle.score_features`, and no reasons.

The tree walk runs in a numba kernel (`fraudops.scoring.compiled`: one call gives the leaf
sum, XGBoost's probability and the contributions, a few µs for 300 trees) doing the numpy
walk's operations in the same order, so both give the same bits; the numpy walk remains
where numba cannot load.
`tree_walk` chooses: "compiled" loads the kernel before the constructor returns (numba's
import and its disk cache, a few hundred ms in a fresh process; the first compile on a
machine about a second), "background" loads it in a thread and walks with numpy until it is
ready (the service, so a start is not delayed), "numpy" never loads it.

Contributions are in log-odds towards fraud, one per feature in `spec.names` order, and
add up with `bias` to the log-odds of the prediction:

- logistic regression: coefficient x standardised value (relative to the training mean);
- trees: the Saabas path decomposition (each split's change of the node mean is given
  to the split feature; XGBoost's `approx_contribs`). Exact TreeSHAP
  (`pred_contribs=True`) costs about 1.8 ms per row for the default 300-tree model, too
  slow for the request path;
- random forest: the path decomposition of the probability, rescaled so it adds up to the
  log-odds of the (clipped) probability.

Thread safety: a FastModel is immutable after construction and every method only reads its
arrays, so any number of threads may share one. `predict_many` on XGBoost calls
`inplace_predict`, documented as safe and lock-free when only predictions run on the
booster (no training or `set_param` meanwhile); this class never changes the booster.
"""

import contextlib
import ctypes
import ctypes.util
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt
import structlog

from fraudops.kernel_load import load_kernel
from fraudops.scoring.reasons import TOPIC_SHARERS, Reason, describe, topic
from fraudops.training.bundle import ModelBundle

if TYPE_CHECKING:  # imported where a model is loaded: importing scoring stays quick
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBClassifier

__all__ = ["FastModel", "Reason", "Scored"]

log = structlog.get_logger(__name__)

FloatArray = npt.NDArray[np.float64]
# How trees are walked: numba kernel loaded now, loaded by a thread (numpy until then), numpy.
TreeWalk = Literal["compiled", "background", "numpy"]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

# Random-forest probabilities are clipped this far from 0 and 1 before taking log-odds.
PROBABILITY_FLOOR = 1e-6
# Rows per chunk of the vectorised tree walk: bounds the (rows x trees) index arrays.
_CHUNK_ROWS = 1024
# XGBoost batches up to this size are scored row by row, each row's own walk (all in one pass
# of the kernel where it is compiled; `score` equals the batch bit for bit): the booster's
# batch prediction costs some 240 us a call. µs a row, 293 trees (benchmarks/bench_scoring.py,
# 2026-12-06): row by row 23 at any size; vectorised 241 in batches of 2, 54 of 16, 32 of 64,
# 23 of 256. Logistic regression's vectorised path is faster at any size.
XGBOOST_ROW_BY_ROW = 256
_LEAF = -1


@dataclass(frozen=True)
class Scored:
    """One transaction's fraud probability and its top reasons."""

    probability: float
    reasons: tuple[Reason, ...]


class _Engine(Protocol):
    """Scores and contributions of one estimator family."""

    @property
    def name(self) -> str: ...

    @property
    def bias(self) -> float: ...

    @property
    def explains(self) -> bool: ...

    @property
    def row_by_row(self) -> int:
        """Batches up to this size are scored one row at a time (their batch call costs more)."""
        ...

    @property
    def compiled(self) -> bool: ...

    def wait_compiled(self, timeout: float | None) -> bool: ...

    def probability(self, row: FloatArray) -> float: ...

    def explain(self, row: FloatArray) -> tuple[float, FloatArray]: ...

    def probabilities(self, rows: FloatArray) -> FloatArray: ...

    def contributions(self, rows: FloatArray) -> FloatArray: ...

    def ranked(self, rows: FloatArray, size: int) -> "Ranked | None":
        """Each row's probability and contributions with the columns of its `size` largest
        positive ones, in one compiled pass, equal to `explain` of each row; None where
        there is no such pass (then rows go through `explain` one by one)."""
        ...


@dataclass(frozen=True)
class Ranked:
    """Rows explained at once: probabilities, contributions (rows x width) and, per row, the
    columns of its largest positive contributions (`orders[i, :counts[i]]`, largest first)."""

    probabilities: list[float]
    contributions: FloatArray
    orders: IntArray
    counts: list[int]


class FastModel:
    """A ModelBundle's estimator as numpy arrays: single-row scoring and its reasons.

    Immutable once built: share one instance between the event loop and other threads.
    `score` gives the probability and the reasons from one pass over the trees;
    `predict_one` followed by `reasons` walks them twice.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        *,
        tree_walk: TreeWalk = "compiled",
        row_by_row: int | None = None,
    ) -> None:
        self.bundle = bundle
        self.names = bundle.feature_names
        self._width = len(self.names)
        self._engine = _engine_for(bundle, tree_walk=tree_walk)
        # Batches up to this size go row by row (None: as suits the model's family).
        self._row_by_row = self._engine.row_by_row if row_by_row is None else row_by_row

    @property
    def method(self) -> str:
        """How rows are scored: "xgboost", "logreg", "random_forest" or "generic"."""
        return self._engine.name

    @property
    def compiled(self) -> bool:
        """Whether the tree walk runs in the numba kernel (False: numpy, or not a tree model)."""
        return self._engine.compiled

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait until a background load of the compiled walk has ended; whether it is in use."""
        return self._engine.wait_compiled(timeout)

    @property
    def explains(self) -> bool:
        """Whether contributions and reasons are available (not for the generic fallback)."""
        return self._engine.explains

    @property
    def bias(self) -> float:
        """Log-odds of a transaction with no contributions; add the contributions to it."""
        return self._engine.bias

    def predict_one(self, row: FloatArray) -> float:
        """Fraud probability of one feature vector (columns in `spec.names` order)."""
        return self._engine.probability(self._one(row))

    def predict_many(self, rows: FloatArray) -> FloatArray:
        """Fraud probability of each row of a feature matrix."""
        return self._engine.probabilities(self._many(rows))

    def contributions(self, row: FloatArray) -> FloatArray:
        """Log-odds contribution of each feature towards fraud, bias excluded."""
        return self._engine.explain(self._one(row))[1]

    def contributions_many(self, rows: FloatArray) -> FloatArray:
        """`contributions` of each row of a feature matrix, one row each."""
        return self._engine.contributions(self._many(rows))

    def reasons(self, row: FloatArray, *, top: int = 3) -> tuple[Reason, ...]:
        """The features pushing most towards fraud, largest first (none if nothing does)."""
        return self.score(row, top=top).reasons

    def score(self, row: FloatArray, *, top: int = 3) -> Scored:
        """Probability and reasons of one feature vector from a single pass over the model."""
        values = self._one(row)
        if not self._engine.explains:
            return Scored(probability=self._engine.probability(values), reasons=())
        probability, contributions = self._engine.explain(values)
        order = np.argsort(-contributions, kind="stable")[: top + TOPIC_SHARERS]
        reasons = self._reasons(values, contributions, order, top=top)
        return Scored(probability=probability, reasons=reasons)

    def score_batch(self, rows: FloatArray, *, top: int = 3) -> list[Scored]:
        """`score` of each row of a feature matrix, vectorised over the rows (a few rows are
        scored one by one)."""
        if len(rows) <= self._row_by_row:
            return self._score_each(rows, top=top)
        values = self._many(rows)
        probabilities = self._engine.probabilities(values).tolist()
        if not self._engine.explains:
            return [Scored(probability=p, reasons=()) for p in probabilities]
        contributions = self._engine.contributions(values)
        orders = np.argsort(-contributions, axis=1, kind="stable")[:, : top + TOPIC_SHARERS]
        return [
            Scored(
                probability=p,
                reasons=self._reasons(values[i], contributions[i], orders[i], top=top),
            )
            for i, p in enumerate(probabilities)
        ]

    def _score_each(self, rows: FloatArray, *, top: int) -> list[Scored]:
        """`score` of each row: in one compiled pass where the engine has one."""
        if not len(rows):
            return []
        values = self._many(rows)
        ranked = self._engine.ranked(values, top + TOPIC_SHARERS)
        if ranked is None:
            return [self.score(row, top=top) for row in values]
        orders, counts = ranked.orders, ranked.counts
        return [
            Scored(
                probability=probability,
                reasons=self._reasons(
                    values[i], ranked.contributions[i], orders[i, : counts[i]], top=top
                ),
            )
            for i, probability in enumerate(ranked.probabilities)
        ]

    def _reasons(
        self, row: FloatArray, contributions: FloatArray, order: IntArray, *, top: int
    ) -> tuple[Reason, ...]:
        """Up to `top` reasons for the features in `order` (largest contribution first) that
        are positive, one per topic (the hour, or whether it is night: not both)."""
        reasons: list[Reason] = []
        topics: set[str] = set()
        for column in order.tolist():
            if len(reasons) >= top:
                break
            contribution = float(contributions[column])
            if not contribution > 0.0:
                break
            feature = self.names[column]
            subject = topic(feature)
            if subject in topics:
                continue
            topics.add(subject)
            value = float(row[column])
            known = None if math.isnan(value) else value
            reasons.append(Reason(feature, known, contribution, describe(feature, known)))
        return tuple(reasons)

    def _one(self, row: FloatArray) -> FloatArray:
        values = np.asarray(row, dtype=np.float64)
        if values.shape != (self._width,):
            msg = f"expected one row of {self._width} features, got shape {values.shape}"
            raise ValueError(msg)
        return values

    def _many(self, rows: FloatArray) -> FloatArray:
        values = np.asarray(rows, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self._width:
            msg = f"expected rows of {self._width} features, got shape {values.shape}"
            raise ValueError(msg)
        return values


def _engine_for(bundle: ModelBundle, *, tree_walk: TreeWalk) -> _Engine:
    """The fastest engine that reproduces the bundle's estimator exactly, else the generic one."""
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415 - loaded with a model
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from xgboost import XGBClassifier  # noqa: PLC0415

    estimator: Any = bundle.estimator
    width = len(bundle.feature_names)
    if isinstance(estimator, XGBClassifier):
        engine = _XGBoostEngine.build(estimator, width=width, tree_walk=tree_walk)
        return engine if engine is not None else _GenericEngine(bundle)
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    preprocess = _Preprocess.build([step for _, step in steps[:-1]], width=width)
    final = steps[-1][1]
    if preprocess is None or not _is_binary(final):
        return _GenericEngine(bundle)
    if isinstance(final, LogisticRegression) and final.coef_.shape == (1, width):
        return _LogisticEngine(preprocess, final)
    if isinstance(final, RandomForestClassifier):
        return _ForestEngine(preprocess, final, width=width, tree_walk=tree_walk)
    return _GenericEngine(bundle)


def _is_binary(estimator: Any) -> bool:
    """A fitted classifier of the labels 0 and 1, fraud second."""
    classes = getattr(estimator, "classes_", None)
    return classes is not None and np.asarray(classes).tolist() == [0, 1]


@dataclass(frozen=True)
class _Preprocess:
    """Median imputation and standard scaling as the fitted sklearn steps do them."""

    fill: FloatArray | None
    shift: FloatArray | None
    scale: FloatArray | None

    @classmethod
    def build(cls, steps: Sequence[Any], *, width: int) -> "_Preprocess | None":
        """The steps as arrays, or None if one is not a plain imputer or scaler."""
        from sklearn.impute import SimpleImputer  # noqa: PLC0415 - loaded with a model
        from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

        kinds = [type(step) for step in steps]
        if kinds not in ([], [SimpleImputer], [StandardScaler], [SimpleImputer, StandardScaler]):
            return None
        fill = shift = scale = None
        for step in steps:
            if isinstance(step, SimpleImputer):
                fill = np.asarray(step.statistics_, dtype=np.float64)
                plain = not step.add_indicator and _is_nan(step.missing_values)
                if not plain or fill.shape != (width,) or np.isnan(fill).any():
                    return None
            else:
                shift = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
                scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
        return cls(fill=fill, shift=shift, scale=scale)

    def apply(self, rows: FloatArray) -> FloatArray:
        """One row or a matrix, imputed then standardised (same operations as sklearn)."""
        values = np.where(np.isnan(rows), self.fill, rows) if self.fill is not None else rows
        if self.shift is not None:
            values = values - self.shift
        if self.scale is not None:
            values = values / self.scale
        return values


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


class _LogisticEngine:
    """Logistic regression: log-odds = intercept + coefficients . standardised values."""

    name = "logreg"
    explains = True
    row_by_row = 0
    compiled = False

    def wait_compiled(self, timeout: float | None) -> bool:  # noqa: ARG002 - nothing to wait for
        return False

    def __init__(self, preprocess: _Preprocess, model: "LogisticRegression") -> None:
        from scipy.special import expit  # noqa: PLC0415 - what sklearn's predict_proba uses

        self._expit = expit
        self._preprocess = preprocess
        self._coef: FloatArray = np.asarray(model.coef_, dtype=np.float64)
        self._weights: FloatArray = self._coef.ravel()
        self._intercept = float(model.intercept_[0])

    @property
    def bias(self) -> float:
        return self._intercept

    def probability(self, row: FloatArray) -> float:
        return float(self.probabilities(row[None, :])[0])

    def explain(self, row: FloatArray) -> tuple[float, FloatArray]:
        standardised = self._preprocess.apply(row)
        log_odds = (standardised[None, :] @ self._coef.T)[0, 0] + self._intercept
        return float(self._expit(log_odds)), self._weights * standardised

    def probabilities(self, rows: FloatArray) -> FloatArray:
        # The same operations, in the same shapes, as Pipeline.predict_proba: bit-identical.
        log_odds = (self._preprocess.apply(rows) @ self._coef.T)[:, 0] + self._intercept
        return np.asarray(self._expit(log_odds), dtype=np.float64)

    def contributions(self, rows: FloatArray) -> FloatArray:
        return self._weights * self._preprocess.apply(rows)

    def ranked(self, rows: FloatArray, size: int) -> Ranked | None:  # noqa: ARG002 - none here
        return None


@dataclass(frozen=True)
class _Tree:
    """One fitted tree's node arrays (children are -1 at leaves)."""

    left: IntArray
    right: IntArray
    feature: IntArray
    threshold: npt.NDArray[np.floating[Any]]
    default_left: BoolArray
    value: FloatArray  # a leaf's output; elsewhere the mean of the leaves below it


class _Forest:
    """Many trees flattened into one set of arrays, walked level by level all at once.

    Node n has two slots, 2n (the right branch) and 2n + 1 (the left one), and every array
    is indexed by slot, so a step is `slot + goes_left` and one lookup. A leaf's slots lead
    back to it, so after `depth` steps every tree's walk rests on its leaf. Values are
    compared in single precision, as both libraries do: XGBoost goes left on
    `x < threshold` (float32 threshold), sklearn on `x <= threshold` (float64).

    A missing value takes the node's default branch. Rather than test for it at every
    level, each row is read twice: as it is (NaN fails every comparison, so goes right)
    and with NaN as -inf (goes left), and each node reads its split feature from the copy
    that sends a missing value its default way. (+inf would not do for the right: sklearn
    splits missing from present values with an infinite threshold.)
    """

    def __init__(
        self,
        trees: Sequence[_Tree],
        *,
        width: int,
        inclusive: bool,
        leaf_dtype: type[np.floating[Any]],
        tree_walk: TreeWalk,
    ) -> None:
        offsets = np.cumsum([0, *(len(tree.left) for tree in trees)])
        nodes = np.arange(offsets[-1], dtype=np.intp)
        left = np.concatenate([_global(t.left, o) for t, o in zip(trees, offsets, strict=False)])
        right = np.concatenate([_global(t.right, o) for t, o in zip(trees, offsets, strict=False)])
        leaf = left < 0
        value = np.concatenate([t.value for t in trees])
        # Per slot: the next slot, the split feature and the change of node value it brings.
        child = np.stack([np.where(leaf, nodes, right), np.where(leaf, nodes, left)], 1).ravel()
        self.next_slot = 2 * child
        self.feature = np.repeat(
            np.where(leaf, 0, np.concatenate([t.feature for t in trees])).astype(np.intp), 2
        )
        self.threshold = np.repeat(np.concatenate([t.threshold for t in trees]), 2)
        default_left = np.repeat(np.concatenate([t.default_left for t in trees]), 2)
        self.column = self.feature + width * default_left
        self.fill = np.repeat(np.array([np.nan, -np.inf], dtype=np.float32), width)
        self.value = np.repeat(value, 2)
        self.change = value[child] - self.value
        self.roots = 2 * offsets[:-1].astype(np.intp)
        self.width = width
        self.depth = _depth(offsets[:-1].astype(np.intp), left, right)
        self.leaf_value = self.value.astype(leaf_dtype)
        self._inclusive = inclusive
        self._goes_left: Callable[..., BoolArray] = np.less_equal if inclusive else np.less
        # One array per slot for the kernel: next slot, column read, split feature.
        self._slots = np.ascontiguousarray(
            np.stack([self.next_slot, self.column, self.feature]), dtype=np.intp
        )
        self._threshold = np.ascontiguousarray(self.threshold)
        self._change = np.ascontiguousarray(self.change, dtype=np.float64)
        self._kernels: ModuleType | None = None
        self._kernels_settled = load_kernel(
            self._load_kernels, when=tree_walk, thread_name="tree-walk-compile"
        )

    @property
    def compiled(self) -> bool:
        """Whether single rows and batches go through the numba kernel now."""
        return self._kernels is not None

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait for a background load of the kernel to end; whether rows now go through it."""
        self._kernels_settled.wait(timeout)
        return self.compiled

    def _load_kernels(self) -> None:
        """Load (or compile) the kernel, run it once, then switch the walk over to it."""
        began = time.perf_counter()
        try:
            kernels = _compiled_kernels()
            if kernels is not None:
                self._compiled(kernels, np.zeros(self.width), explain=True)
                self._compiled_many(kernels, np.zeros((1, self.width)), explain=True)
                self._compiled_many(kernels, np.zeros((1, self.width)), explain=False)
                self._ranked(kernels, np.zeros((1, self.width)), 1)
                self._kernels = kernels  # one assignment: each call reads it once
                log.debug(
                    "tree_walk_compiled", trees=len(self.roots), seconds=time.perf_counter() - began
                )
        except Exception as error:  # numba failing leaves the (identical) numpy walk in place
            log.warning("tree_walk_not_compiled", error=str(error), fallback="numpy")

    def total(self, row: FloatArray) -> np.floating[Any]:
        """The leaf values of one row added tree by tree in their own precision."""
        kernels = self._kernels
        if kernels is not None:
            return self._compiled(kernels, row, explain=False)[0]
        return self._sum(self.leaf_value[self._walk(row, None)])

    def explain(self, row: FloatArray) -> tuple[np.floating[Any], FloatArray]:
        """`total` of one row, and the value changes along its paths per feature."""
        kernels = self._kernels
        if kernels is not None:
            return self._compiled(kernels, row, explain=True)
        path: list[IntArray] = []
        leaves = self._walk(row, path)
        total = self._sum(self.leaf_value[leaves])
        if not path:
            return total, np.zeros(self.width)
        taken = np.concatenate(path)
        changes = np.bincount(self.feature[taken], self.change[taken], minlength=self.width)
        return total, cast(FloatArray, changes)

    def logistic(self, row: FloatArray, *, explain: bool) -> tuple[float | None, Any, FloatArray]:
        """XGBoost's probability of the total where the kernel gives it (else None), the total,
        and the changes per feature if `explain` (else an empty array)."""
        kernels = self._kernels
        if kernels is not None:
            cells = np.empty(2, dtype=self.leaf_value.dtype)
            changes = self._run(kernels, row, cells, explain=explain)
            return float(cells[1]), cells[0], changes
        if explain:
            return None, *self.explain(row)
        return None, self.total(row), np.zeros(0)

    def totals_many(self, rows: FloatArray) -> npt.NDArray[np.floating[Any]]:
        """`total` of each row of a matrix."""
        kernels = self._kernels
        if kernels is not None:
            return self._compiled_many(kernels, rows, explain=False)[0]
        return self._sums(self.leaf_value[self._walk_many(rows, None)])

    def explain_many(self, rows: FloatArray) -> tuple[npt.NDArray[np.floating[Any]], FloatArray]:
        """`explain` of each row of a matrix: totals (rows), changes (rows x width)."""
        kernels = self._kernels
        if kernels is not None:
            return self._compiled_many(kernels, rows, explain=True)
        path: list[IntArray] = []
        leaves = self._walk_many(rows, path)
        totals = self._sums(self.leaf_value[leaves])
        count = len(rows)
        if not path:
            return totals, np.zeros((count, self.width))
        taken = np.stack(path)
        cells = np.arange(count, dtype=np.intp)[:, None] * self.width + self.feature[taken]
        changes = np.bincount(
            cells.ravel(), self.change[taken].ravel(), minlength=count * self.width
        )
        return totals, cast(FloatArray, changes.reshape(count, self.width))

    @staticmethod
    def _sum(values: npt.NDArray[np.floating[Any]]) -> np.floating[Any]:
        """Added one by one from the first, in the array's precision (np.sum pairs them)."""
        return cast(np.floating[Any], np.cumsum(values)[-1])

    @staticmethod
    def _sums(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
        return np.cumsum(values, axis=1)[:, -1]

    def _compiled(
        self, kernels: Any, row: FloatArray, *, explain: bool
    ) -> tuple[np.floating[Any], FloatArray]:
        total = np.empty(1, dtype=self.leaf_value.dtype)
        changes = self._run(kernels, row, total, explain=explain)
        return cast(np.floating[Any], total[0]), changes

    def _run(self, kernels: Any, row: FloatArray, cells: Any, *, explain: bool) -> FloatArray:
        """The kernel on one row, its total (and probability) into `cells`; the changes."""
        changes = np.zeros(self.width if explain else 0)
        kernels.walk_one(
            np.ascontiguousarray(row), self._slots, self._threshold, self._change,
            self.leaf_value, self.roots, self.depth, self._inclusive, cells, changes,
        )  # fmt: skip
        return changes

    def _compiled_many(
        self, kernels: Any, rows: FloatArray, *, explain: bool
    ) -> tuple[npt.NDArray[np.floating[Any]], FloatArray]:
        cells = np.empty((len(rows), 1), dtype=self.leaf_value.dtype)  # the totals
        changes = self._walk_compiled(kernels, rows, cells, explain=explain)
        return cells[:, 0], changes

    def _walk_compiled(
        self, kernels: Any, rows: FloatArray, cells: Any, *, explain: bool
    ) -> FloatArray:
        """The kernel on each row, its total (and probability) into its row of `cells`; the
        changes (rows x width, or 0 x 0 without `explain`)."""
        changes = np.zeros((len(rows), self.width) if explain else (0, 0))
        kernels.walk_many(
            np.ascontiguousarray(rows), self._slots, self._threshold, self._change,
            self.leaf_value, self.roots, self.depth, self._inclusive, cells, changes,
        )  # fmt: skip
        return changes

    def ranked(self, rows: FloatArray, size: int) -> Ranked | None:
        """XGBoost's probability of each row's total, its changes per feature and the columns
        of its `size` largest positive ones, through the kernel; None if not compiled."""
        kernels = self._kernels
        return None if kernels is None else self._ranked(kernels, rows, size)

    def _ranked(self, kernels: Any, rows: FloatArray, size: int) -> "Ranked":
        count = len(rows)
        cells = np.empty((count, 2), dtype=self.leaf_value.dtype)  # total, probability
        changes = self._walk_compiled(kernels, rows, cells, explain=True)
        orders = np.empty((count, size), dtype=np.intp)
        counts = np.empty(count, dtype=np.intp)
        kernels.reason_orders(changes, orders, counts)
        return Ranked(cells[:, 1].tolist(), changes, orders, counts.tolist())

    def _walk(self, row: FloatArray, path: list[IntArray] | None) -> IntArray:
        """Walk one row down every tree, noting the slots taken at each level."""
        twice = np.concatenate((row, row)).astype(np.float32)
        values = np.where(np.isnan(twice), self.fill, twice)
        slots = self.roots
        for _ in range(self.depth):
            goes_left = self._goes_left(values[self.column[slots]], self.threshold[slots])
            taken = slots + goes_left
            if path is not None:
                path.append(taken)
            slots = self.next_slot[taken]
        return slots

    def _walk_many(self, rows: FloatArray, path: list[IntArray] | None) -> IntArray:
        """`_walk` for each row of a matrix at once."""
        twice = np.concatenate((rows, rows), axis=1).astype(np.float32)
        values = np.where(np.isnan(twice), self.fill, twice)
        line = np.arange(len(rows), dtype=np.intp)[:, None]
        slots = np.broadcast_to(self.roots, (len(rows), len(self.roots)))
        for _ in range(self.depth):
            goes_left = self._goes_left(values[line, self.column[slots]], self.threshold[slots])
            taken = slots + goes_left
            if path is not None:
                path.append(taken)
            slots = self.next_slot[taken]
        return slots


def _global(children: IntArray, offset: int) -> IntArray:
    """A tree's child ids as ids in the flattened forest (leaves stay -1)."""
    return np.where(children < 0, _LEAF, children + offset).astype(np.intp)


def _depth(roots: IntArray, left: IntArray, right: IntArray) -> int:
    """Steps from the roots to the deepest leaf."""
    depth, frontier = 0, roots
    while True:
        inner = frontier[left[frontier] >= 0]
        if inner.size == 0:
            return depth
        frontier = np.concatenate([left[inner], right[inner]])
        depth += 1


@functools.cache
def _compiled_kernels() -> ModuleType | None:
    """The numba kernels, imported once a tree model is built; None where numba cannot load."""
    try:
        from fraudops.scoring import compiled  # noqa: PLC0415 - numba loads in a few 100 ms
    except (ImportError, RuntimeError) as error:  # no wheel; no folder numba may cache in
        log.warning("compiled_tree_walk_unavailable", error=str(error), fallback="numpy")
        return None
    return compiled


def _chunks(rows: FloatArray) -> list[FloatArray]:
    return [rows[start : start + _CHUNK_ROWS] for start in range(0, len(rows), _CHUNK_ROWS)]


class _XGBoostEngine:
    """A binary:logistic gbtree booster, walked in numpy; batches go to inplace_predict."""

    name = "xgboost"
    explains = True
    row_by_row = XGBOOST_ROW_BY_ROW

    @property
    def compiled(self) -> bool:
        return self._forest.compiled

    def wait_compiled(self, timeout: float | None) -> bool:
        return self._forest.wait_compiled(timeout)

    def __init__(
        self,
        *,
        estimator: "XGBClassifier",
        trees: Sequence[_Tree],
        width: int,
        iteration_range: tuple[int, int],
        tree_walk: TreeWalk,
    ) -> None:
        self._booster = estimator.get_booster()
        self._missing = float(estimator.missing)
        self._iteration_range = iteration_range
        self._forest = _Forest(
            trees, width=width, inclusive=False, leaf_dtype=np.float32, tree_walk=tree_walk
        )
        self._expf = _c_float_function("expf", math.exp)
        self.bias = float(self._forest.value[self._forest.roots].sum())

    @classmethod
    def build(
        cls, estimator: "XGBClassifier", *, width: int, tree_walk: TreeWalk
    ) -> "_XGBoostEngine | None":
        """The engine, or None for a booster this walk does not reproduce (dart, categories...)."""
        learner = json.loads(estimator.get_booster().save_raw(raw_format="json"))["learner"]
        booster = learner["gradient_booster"]
        params = learner["learner_model_param"]
        supported = (
            booster["name"] == "gbtree"
            and learner["objective"]["name"] == "binary:logistic"
            and params.get("num_target", "1") == "1"
            and _is_nan(float(estimator.missing))
            and int(params["num_feature"]) == width
        )
        if not supported:
            return None
        model = booster["model"]
        iteration_range = _iteration_range(estimator)
        indptr = model["iteration_indptr"]
        end = iteration_range[1] or len(indptr) - 1
        chosen = model["trees"][indptr[iteration_range[0]] : indptr[end]]
        if any(any(tree["split_type"]) for tree in chosen):
            return None
        # The base score goes first, as a one-leaf tree: XGBoost adds the trees to it in order.
        base = _Tree(
            left=np.array([_LEAF], dtype=np.intp),
            right=np.array([_LEAF], dtype=np.intp),
            feature=np.zeros(1, dtype=np.intp),
            threshold=np.zeros(1, dtype=np.float32),
            default_left=np.zeros(1, dtype=bool),
            value=np.array([_base_margin(params["base_score"])]),
        )
        trees = [base, *(_xgboost_tree(tree) for tree in chosen)]
        return cls(
            estimator=estimator,
            trees=trees,
            width=width,
            iteration_range=iteration_range,
            tree_walk=tree_walk,
        )

    def probability(self, row: FloatArray) -> float:
        return self._walk(row, explain=False)[0]

    def explain(self, row: FloatArray) -> tuple[float, FloatArray]:
        return self._walk(row, explain=True)

    def _walk(self, row: FloatArray, *, explain: bool) -> tuple[float, FloatArray]:
        """The probability (the kernel's, else `_sigmoid` of the margin) and contributions."""
        probability, margin, contributions = self._forest.logistic(row, explain=explain)
        if probability is None:
            probability = self._sigmoid(np.float32(margin))
        return probability, contributions

    def probabilities(self, rows: FloatArray) -> FloatArray:
        if len(rows) == 0:
            return np.empty(0)
        predicted = self._booster.inplace_predict(
            rows, iteration_range=self._iteration_range, missing=self._missing
        )
        return np.asarray(predicted, dtype=np.float64)

    def contributions(self, rows: FloatArray) -> FloatArray:
        parts = [self._forest.explain_many(chunk)[1] for chunk in _chunks(rows)]
        return np.concatenate(parts) if parts else np.empty((0, self._forest.width))

    def ranked(self, rows: FloatArray, size: int) -> Ranked | None:
        return self._forest.ranked(rows, size)

    def _sigmoid(self, margin: np.float32) -> float:
        """XGBoost's sigmoid in single precision: 1 / (expf(min(-x, 88.7)) + 1)."""
        exponential = np.float32(self._expf(min(-float(margin), 88.7)))
        return float(np.float32(1.0) / (exponential + np.float32(1.0)))


def _iteration_range(estimator: "XGBClassifier") -> tuple[int, int]:
    """The trees predict_proba uses: up to the early-stopped best iteration, else all (0, 0)."""
    try:
        return 0, int(estimator.best_iteration) + 1
    except AttributeError:
        return 0, 0


def _base_margin(base_score: str) -> float:
    """XGBoost's logistic base score as a margin, -logf(1 / p - 1) in single precision."""
    probability = np.float32(float(base_score.strip("[]").split(",")[0]))
    logf = _c_float_function("logf", math.log)
    return float(np.float32(-np.float32(logf(float(np.float32(1.0) / probability - 1)))))


def _xgboost_tree(tree: dict[str, Any]) -> _Tree:
    """One tree of an XGBoost JSON model, with the cover-weighted node means of Saabas."""
    left = np.asarray(tree["left_children"], dtype=np.intp)
    right = np.asarray(tree["right_children"], dtype=np.intp)
    conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
    return _Tree(
        left=left,
        right=right,
        feature=np.asarray(tree["split_indices"], dtype=np.intp),
        threshold=conditions,
        default_left=np.asarray(tree["default_left"], dtype=bool),
        value=_node_means(
            left.tolist(), right.tolist(), conditions.astype(np.float64).tolist(),
            [float(cover) for cover in tree["sum_hessian"]],
        ),
    )  # fmt: skip


def _node_means(
    left: list[int], right: list[int], leaf_value: list[float], cover: list[float]
) -> FloatArray:
    """Each node's cover-weighted mean of its leaves (XGBoost's FillNodeMeanValues)."""
    order = [0]
    for node in order:
        if left[node] >= 0:
            order += [left[node], right[node]]
    means = list(leaf_value)
    for node in reversed(order):
        if left[node] >= 0:
            low, high = left[node], right[node]
            total = cover[low] + cover[high]
            weighted = means[low] * cover[low] + means[high] * cover[high]
            means[node] = weighted / total if total > 0.0 else (means[low] + means[high]) / 2
    return np.asarray(means, dtype=np.float64)


def _c_float_function(name: str, fallback: Callable[[float], float]) -> Callable[[float], float]:
    """The C maths library's single-precision function, as XGBoost calls it.

    Python's double functions rounded to float32 differ from glibc's expf in about one
    probability in a thousand (by one unit in the last place); they are the fallback
    where no C maths library is found.
    """
    library = _libm()
    if library is not None:
        with contextlib.suppress(AttributeError):
            function = getattr(library, name)
            function.restype = ctypes.c_float
            function.argtypes = (ctypes.c_float,)
            return cast(Callable[[float], float], function)
    return lambda value: float(np.float32(fallback(value)))


@functools.cache
def _libm() -> ctypes.CDLL | None:
    """The C maths library, loaded once per process."""
    for name in ("libm.so.6", ctypes.util.find_library("m")):
        if name is not None:
            with contextlib.suppress(OSError):
                return ctypes.CDLL(name)
    return None


class _ForestEngine:
    """A random forest: mean of the trees' leaf fractions of fraud, as predict_proba."""

    name = "random_forest"
    explains = True
    row_by_row = 0

    @property
    def compiled(self) -> bool:
        return self._forest.compiled

    def wait_compiled(self, timeout: float | None) -> bool:
        return self._forest.wait_compiled(timeout)

    def __init__(
        self,
        preprocess: _Preprocess,
        model: "RandomForestClassifier",
        *,
        width: int,
        tree_walk: TreeWalk,
    ) -> None:
        self._preprocess = preprocess
        trees = [_sklearn_tree(tree.tree_) for tree in model.estimators_]
        self._forest = _Forest(
            trees, width=width, inclusive=True, leaf_dtype=np.float64, tree_walk=tree_walk
        )
        self._trees = len(trees)
        self._root = float(self._forest.value[self._forest.roots].sum()) / self._trees
        self.bias = _log_odds(self._root)

    def probability(self, row: FloatArray) -> float:
        return float(self._forest.total(self._preprocess.apply(row))) / self._trees

    def explain(self, row: FloatArray) -> tuple[float, FloatArray]:
        total, changes = self._forest.explain(self._preprocess.apply(row))
        probability = float(total) / self._trees
        scale = self._log_odds_scale(np.array([probability]))[0] / self._trees
        return probability, changes * scale

    def probabilities(self, rows: FloatArray) -> FloatArray:
        parts = [self._forest.totals_many(chunk) for chunk in _chunks(self._preprocess.apply(rows))]
        return np.concatenate(parts) / self._trees if parts else np.empty(0)

    def contributions(self, rows: FloatArray) -> FloatArray:
        parts = [
            self._forest.explain_many(chunk) for chunk in _chunks(self._preprocess.apply(rows))
        ]
        if not parts:
            return np.empty((0, self._forest.width))
        probabilities = np.concatenate([totals for totals, _ in parts]) / self._trees
        changes = np.concatenate([changes for _, changes in parts])
        return changes * (self._log_odds_scale(probabilities) / self._trees)[:, None]

    def ranked(self, rows: FloatArray, size: int) -> Ranked | None:  # noqa: ARG002 - none here
        return None

    def _log_odds_scale(self, probabilities: FloatArray) -> FloatArray:
        """Factor taking probability contributions to log-odds ones with the same total."""
        clipped = np.clip(probabilities, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        gap = probabilities - self._root
        slope = 1.0 / (clipped * (1.0 - clipped))
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = (_log_odds_array(clipped) - self.bias) / gap
        return np.where(np.abs(gap) > 1e-12, secant, slope)


def _sklearn_tree(tree: Any) -> _Tree:
    """One fitted sklearn classification tree; its node values are fractions of fraud."""
    # Since sklearn 1.4 `value` holds class fractions, which predict_proba returns as they are.
    fractions = np.asarray(tree.value, dtype=np.float64)[:, 0, 1]
    default_left = getattr(tree, "missing_go_to_left", None)
    return _Tree(
        left=np.asarray(tree.children_left, dtype=np.intp),
        right=np.asarray(tree.children_right, dtype=np.intp),
        feature=np.asarray(tree.feature, dtype=np.intp),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        default_left=(
            np.zeros(len(fractions), dtype=bool)
            if default_left is None
            else np.asarray(default_left, dtype=bool)
        ),
        value=fractions,
    )


def _log_odds(probability: float) -> float:
    clipped = min(max(probability, PROBABILITY_FLOOR), 1.0 - PROBABILITY_FLOOR)
    return math.log(clipped / (1.0 - clipped))


def _log_odds_array(probabilities: FloatArray) -> FloatArray:
    return np.log(probabilities / (1.0 - probabilities))


class _GenericEngine:
    """Any other estimator: the bundle's own scoring, without contributions."""

    name = "generic"
    explains = False
    row_by_row = 0
    compiled = False

    def wait_compiled(self, timeout: float | None) -> bool:  # noqa: ARG002 - nothing to wait for
        return False

    bias = 0.0

    def __init__(self, bundle: ModelBundle) -> None:
        self._bundle = bundle

    def probability(self, row: FloatArray) -> float:
        return float(self._bundle.score_features(row[None, :])[0])

    def explain(self, row: FloatArray) -> tuple[float, FloatArray]:
        return self.probability(row), np.zeros(len(row))

    def probabilities(self, rows: FloatArray) -> FloatArray:
        return self._bundle.score_features(rows)

    def contributions(self, rows: FloatArray) -> FloatArray:
        return np.zeros(rows.shape)

    def ranked(self, rows: FloatArray, size: int) -> Ranked | None:  # noqa: ARG002 - none here
        return None
