"""The feature formulas, written once for scalars (online) and once for arrays (batch).

Each pair does the same IEEE operations in the same order, so the two engines agree to the
last bit on everything but the transcendental functions (log1p, sin, cos, asin), where the
libraries may differ by an ulp.
"""

import hashlib
import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.features.spec import MS_PER_DAY, MS_PER_HOUR, NIGHT_HOURS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EARTH_RADIUS_KM = 6371.0088
MS_PER_YEAR = 365.25 * MS_PER_DAY
DEGREES_TO_RADIANS = math.pi / 180.0
# A window variance below this share of its mean square is prefix-sum rounding, not spread:
# both engines read it as zero, so a card with constant amounts gets no z-score.
VARIANCE_FLOOR = 1e-9
# 1970-01-01 was a Thursday; shifting by 3 days makes Monday 0.
_EPOCH_WEEKDAY_SHIFT = 3
_NIGHT = tuple(sorted(NIGHT_HOURS))
# Each hour of the day as a point on the unit circle: the card's usual hours are summed
# as these, and a table (not a cos per event) keeps both engines on the very same floats.
HOUR_COS: FloatArray = np.cos(np.arange(24) * (2.0 * math.pi / 24.0))
HOUR_SIN: FloatArray = np.sin(np.arange(24) * (2.0 * math.pi / 24.0))
HOUR_COS_LIST: tuple[float, ...] = tuple(HOUR_COS.tolist())
HOUR_SIN_LIST: tuple[float, ...] = tuple(HOUR_SIN.tolist())
# Distinct value codes a process remembers (merchants and categories of recent scoring).
_VALUE_CODE_CACHE = 1 << 16


def calendar(t_ms: int) -> tuple[int, int, bool, bool]:
    """Hour of day, weekday (Monday 0), night and weekend flags of an epoch-ms time (UTC)."""
    hour = (t_ms // MS_PER_HOUR) % 24
    weekday = (t_ms // MS_PER_DAY + _EPOCH_WEEKDAY_SHIFT) % 7
    return hour, weekday, hour in NIGHT_HOURS, weekday >= 5


def calendar_array(t_ms: IntArray) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """`calendar` over an array of epoch-ms times."""
    hour = (t_ms // MS_PER_HOUR) % 24
    weekday = (t_ms // MS_PER_DAY + _EPOCH_WEEKDAY_SHIFT) % 7
    night = np.isin(hour, _NIGHT).astype(np.float64)
    return hour, weekday, night, (weekday >= 5).astype(np.float64)


def log_amount(amount: float) -> float:
    """log1p of the amount, NaN where it is undefined, bit-equal to `log_amount_array`.

    numpy's log1p, not math.log1p: the C library's differs from numpy's in the last bit for
    about 4% of amounts (22.3 among them), and training uses numpy's.
    """
    return float(np.log1p(amount)) if amount > -1.0 else math.nan


def log_amount_array(amount: FloatArray) -> FloatArray:
    """`log_amount` over an array."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(amount > -1.0, np.log1p(amount), np.nan)


def haversine_km(*, lat: float, long: float, merch_lat: float, merch_long: float) -> float:
    """Great-circle distance between home and merchant; NaN if a coordinate is missing.

    The steps of `haversine_km_array` one float at a time: sine, cosine and arc sine are
    numpy's (math's trigonometry differs from numpy's in the last bit now and then, and this
    must be the very float training saw); the arithmetic and the square root are exactly
    rounded either way, so plain floats give the same bits at a tenth of the cost of arrays.
    """
    if math.isnan(lat + long + merch_lat + merch_long):
        return math.nan
    phi1 = lat * DEGREES_TO_RADIANS
    phi2 = merch_lat * DEGREES_TO_RADIANS
    half_dphi = (phi2 - phi1) / 2.0
    half_dlambda = (merch_long - long) * DEGREES_TO_RADIANS / 2.0
    sin_dphi = float(np.sin(half_dphi))
    sin_dlambda = float(np.sin(half_dlambda))
    a = sin_dphi * sin_dphi + float(np.cos(phi1)) * float(np.cos(phi2)) * (
        sin_dlambda * sin_dlambda
    )
    clipped = 0.0 if a < 0.0 else (1.0 if a > 1.0 else a)
    return 2.0 * EARTH_RADIUS_KM * float(np.arcsin(math.sqrt(clipped)))


def haversine_km_array(
    *, lat: FloatArray, long: FloatArray, merch_lat: FloatArray, merch_long: FloatArray
) -> FloatArray:
    """`haversine_km` over arrays."""
    phi1 = lat * DEGREES_TO_RADIANS
    phi2 = merch_lat * DEGREES_TO_RADIANS
    half_dphi = (phi2 - phi1) / 2.0
    half_dlambda = (merch_long - long) * DEGREES_TO_RADIANS / 2.0
    a = np.sin(half_dphi) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(half_dlambda) ** 2
    distance: FloatArray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distance


def age_years(t_ms: int, birth_ms: int | None) -> float:
    """Age in years at transaction time; NaN without a birth date."""
    return math.nan if birth_ms is None else (t_ms - birth_ms) / MS_PER_YEAR


def age_years_array(
    t_ms: IntArray, birth_ms: IntArray, *, known: npt.NDArray[np.bool_]
) -> FloatArray:
    """`age_years` over arrays; `known` marks the rows that have a birth date."""
    return np.where(known, (t_ms - birth_ms) / MS_PER_YEAR, np.nan)


def amount_vs_history(*, amount: float, count: int, s1: float, s2: float) -> tuple[float, float]:
    """Ratio of the amount to the window mean, and its z-score (sample std from the sums)."""
    if count == 0:
        return math.nan, math.nan
    mean = s1 / count
    ratio = amount / mean if mean != 0.0 else math.nan
    if count < 2:
        return ratio, math.nan
    variance = (s2 - s1 * s1 / count) / (count - 1)
    if variance <= VARIANCE_FLOOR * (s2 / count):
        return ratio, math.nan
    return ratio, (amount - mean) / math.sqrt(variance)


def amount_vs_history_array(
    *, amount: FloatArray, count: IntArray, s1: FloatArray, s2: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """`amount_vs_history` over arrays."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / count
        ratio = np.where((count > 0) & (mean != 0.0), amount / mean, np.nan)
        variance = (s2 - s1 * s1 / count) / (count - 1)
        spread = (count >= 2) & (variance > VARIANCE_FLOOR * (s2 / count))
        zscore = np.where(spread, (amount - mean) / np.sqrt(variance), np.nan)
    return ratio, zscore


@lru_cache(maxsize=_VALUE_CODE_CACHE)
def value_code(text: str | None) -> int:
    """A stable 64-bit code of a merchant or category id (0: missing), the same in every
    process: what a card's state keeps of its merchants and categories."""
    if text is None:
        return 0
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1


def value_codes(texts: "pd.Series[str]") -> IntArray:
    """`value_code` of each value (NaN: missing, 0), computed once per distinct value."""
    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    table = np.array([value_code(str(u)) for u in uniques] + [0], dtype=np.int64)
    found: IntArray = table[codes]  # -1 (missing) picks the trailing 0
    return found


def hour_similarity(*, hour: int, count: int, cos_sum: float, sin_sum: float) -> float:
    """Mean cosine of the angle between this hour and the card's past hours; NaN if none."""
    if count == 0:
        return math.nan
    return (HOUR_COS_LIST[hour] * cos_sum + HOUR_SIN_LIST[hour] * sin_sum) / count


def hour_similarity_array(
    *, hour: IntArray, count: IntArray, cos_sum: FloatArray, sin_sum: FloatArray
) -> FloatArray:
    """`hour_similarity` over arrays."""
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (HOUR_COS[hour] * cos_sum + HOUR_SIN[hour] * sin_sum) / count
    return np.where(count > 0, value, np.nan)


def amount_ratio(*, amount: float, count: int, total: float) -> float:
    """Amount over the mean of `count` amounts summing to `total`; NaN if none or mean 0."""
    if count == 0:
        return math.nan
    mean = total / count
    return amount / mean if mean != 0.0 else math.nan


def amount_ratio_array(*, amount: FloatArray, count: IntArray, total: FloatArray) -> FloatArray:
    """`amount_ratio` over arrays."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        return np.where((count > 0) & (mean != 0.0), amount / mean, np.nan)
