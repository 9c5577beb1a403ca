"""Turn transaction arrays into a Sparkov-format frame without a Python object per value."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudops.data.schema import SPARKOV_CATEGORIES, SPARKOV_COLUMNS
from fraudops.simulate.arrays import TransactionArrays
from fraudops.simulate.catalogue import CITIES, SCENARIOS
from fraudops.simulate.merchants import Merchants
from fraudops.simulate.population import CITY_POPULATION, Cardholders

TRANS_NUM_BYTES = 16
CITY_NAMES = pa.array([c.name for c in CITIES])
CITY_STATES = pa.array([c.state for c in CITIES])


def transaction_numbers(rng: np.random.Generator, count: int) -> pa.StringArray:
    """`count` random 32-character hexadecimal ids, as the Sparkov data's trans_num."""
    width = 2 * TRANS_NUM_BYTES
    text = rng.bytes(TRANS_NUM_BYTES * count).hex().encode("ascii")
    offsets = np.arange(0, width * (count + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text))


def sparkov_frame(
    tx: TransactionArrays,
    *,
    cardholders: Cardholders,
    merchants: Merchants,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The transactions in Sparkov column order, plus the ground-truth `fraud_scenario`."""
    card = pa.array(tx.card)
    merchant = pa.array(tx.merchant)
    city = pa.array(cardholders.city[tx.card])
    stamps = pa.array(tx.time.astype("datetime64[s]"))
    merch_lat, merch_long = merchants.location(tx.merchant, tx.place)
    columns: dict[str, pa.Array | np.ndarray] = {
        "trans_date_trans_time": pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S"),
        "cc_num": pa.array(cardholders.cc_num).take(card),
        "merchant": pa.array(merchants.name).take(merchant),
        "category": pa.array(SPARKOV_CATEGORIES).take(pa.array(tx.category)),
        "amt": tx.amount,
        "first": pa.array(cardholders.first).take(card),
        "last": pa.array(cardholders.last).take(card),
        "gender": pa.array(cardholders.gender).take(card),
        "street": pa.array(cardholders.street).take(card),
        "city": CITY_NAMES.take(city),
        "state": CITY_STATES.take(city),
        "zip": cardholders.zip[tx.card],
        "lat": cardholders.lat[tx.card],
        "long": cardholders.long[tx.card],
        "city_pop": CITY_POPULATION[cardholders.city[tx.card]],
        "job": pa.array(cardholders.job).take(card),
        "dob": pa.array(cardholders.dob).take(card),
        "trans_num": transaction_numbers(rng, len(tx)),
        "unix_time": tx.time,
        "merch_lat": merch_lat,
        "merch_long": merch_long,
        "is_fraud": (tx.scenario > 0).astype(np.int64),
        "fraud_scenario": pa.array(("", *SCENARIOS)).take(pa.array(tx.scenario)),
    }
    ordered = {name: columns[name] for name in (*SPARKOV_COLUMNS, "fraud_scenario")}
    frame: pd.DataFrame = pa.table(ordered).to_pandas()
    return frame
