"""Cardholders: who holds each card, where they live, and the places they live in."""

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from fraudops.data.schema import SPARKOV_CATEGORIES
from fraudops.simulate.arrays import FloatArray, IntArray
from fraudops.simulate.catalogue import (
    CATEGORY_PROFILES,
    CITIES,
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    JOBS,
    LAST_NAMES,
    STREET_NAMES,
    STREET_SUFFIXES,
)

StrArray = npt.NDArray[np.str_]

EARTH_RADIUS_KM = 6_371.0
CITY_LAT = np.array([c.lat for c in CITIES])
CITY_LONG = np.array([c.long for c in CITIES])
CITY_POPULATION = np.array([c.population for c in CITIES], dtype=np.int64)
CATEGORY_SHARE = np.array([CATEGORY_PROFILES[c].share for c in SPARKOV_CATEGORIES])
N_CATEGORIES = len(SPARKOV_CATEGORIES)
N_CITIES = len(CITIES)


Coordinates = tuple[FloatArray | float, FloatArray | float]


def haversine_km(origin: Coordinates, destination: Coordinates) -> FloatArray:
    """Great-circle distance in kilometres between (latitude, longitude) points in degrees."""
    (lat1, long1), (lat2, long2) = origin, destination
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi, dlam = phi2 - phi1, np.radians(np.subtract(long2, long1))
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a)), dtype=np.float64)


CITY_KM = haversine_km(
    (CITY_LAT[:, None], CITY_LONG[:, None]), (CITY_LAT[None, :], CITY_LONG[None, :])
)


@dataclass(frozen=True)
class Cardholders:
    """One entry per card: the person holding it and where they live."""

    cc_num: StrArray
    first: StrArray
    last: StrArray
    gender: StrArray
    street: StrArray
    city: IntArray
    zip: IntArray
    lat: FloatArray
    long: FloatArray
    job: StrArray
    dob: StrArray

    def __len__(self) -> int:
        """The number of cards."""
        return int(self.city.shape[0])


def _card_numbers(rng: np.random.Generator, count: int) -> StrArray:
    """Unique 16-digit Visa/Mastercard-like numbers with a valid Luhn check digit."""
    numbers: set[str] = set()
    result: list[str] = []
    while len(result) < count:
        need = count - len(result)
        digits = rng.integers(0, 10, size=(need, 16))
        digits[:, 0] = np.where(rng.random(need) < 0.6, 4, 5)
        digits[:, 1] = np.where(digits[:, 0] == 5, rng.integers(1, 6, size=need), digits[:, 1])
        # Luhn: double every second digit from the right, excluding the check digit.
        body = digits[:, :15]
        doubled = body[:, 0::2] * 2
        total = (doubled - 9 * (doubled > 9)).sum(axis=1) + body[:, 1::2].sum(axis=1)
        digits[:, 15] = (10 - total % 10) % 10
        for row in digits:
            number = "".join(map(str, row))
            if number not in numbers:
                numbers.add(number)
                result.append(number)
    return np.array(result)


def _birth_dates(rng: np.random.Generator, *, count: int, start: date) -> StrArray:
    """Birth dates of adults (18 to 92 on the start date, mean about 46)."""
    age_days = np.clip(rng.normal(46.0, 17.0, count), 18.0, 92.0) * 365.25
    born = np.datetime64(start, "D") - age_days.astype(np.int64)
    return np.datetime_as_string(born, unit="D")


def generate_cardholders(rng: np.random.Generator, *, count: int, start: date) -> Cardholders:
    """Draw `count` cardholders living in the built-in cities (more in bigger ones)."""
    weights = np.sqrt(CITY_POPULATION.astype(np.float64))
    city = rng.choice(len(CITIES), size=count, p=weights / weights.sum())
    female = rng.random(count) < 0.55
    first = np.where(
        female,
        np.array(FIRST_NAMES_F)[rng.integers(0, len(FIRST_NAMES_F), count)],
        np.array(FIRST_NAMES_M)[rng.integers(0, len(FIRST_NAMES_M), count)],
    )
    apartment = np.array(["", " Apt. ", " Suite "])[rng.choice(3, size=count, p=[0.7, 0.2, 0.1])]
    unit = np.where(apartment == "", "", rng.integers(1, 999, count).astype(str))
    street = np.strings.add(
        np.strings.add(rng.integers(1, 99_999, count).astype(str), " "),
        np.strings.add(
            np.strings.add(np.array(STREET_NAMES)[rng.integers(0, len(STREET_NAMES), count)], " "),
            np.array(STREET_SUFFIXES)[rng.integers(0, len(STREET_SUFFIXES), count)],
        ),
    )
    zips = np.array([c.zip for c in CITIES], dtype=np.int64)[city] + rng.integers(0, 20, count)
    return Cardholders(
        cc_num=_card_numbers(rng, count),
        first=first,
        last=np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), count)],
        gender=np.where(female, "F", "M"),
        street=np.strings.add(street, np.strings.add(apartment, unit)),
        city=city.astype(np.int64),
        zip=zips,
        lat=np.round(CITY_LAT[city] + rng.normal(0.0, 0.06, count), 4),
        long=np.round(CITY_LONG[city] + rng.normal(0.0, 0.06, count), 4),
        job=np.array(JOBS)[rng.integers(0, len(JOBS), count)],
        dob=_birth_dates(rng, count=count, start=start),
    )
