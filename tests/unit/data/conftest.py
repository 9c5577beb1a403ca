"""Data test fixtures: small frames shaped like each built-in profile, and the real sample."""

import numpy as np
import pandas as pd
import pytest

# Three rows in the shape of the public Sparkov files, as text (the way a CSV is read).
SPARKOV_ROWS: dict[str, list[str]] = {
    "trans_date_trans_time": ["2019-01-01 00:00:18", "2019-01-01 00:00:44", "2019-01-01 00:00:51"],
    "cc_num": ["2703186189652095", "630423337322", "4613314721966"],
    "merchant": ["fraud_Rippin, Kub and Mann", "fraud_Heller, Gutmann and Zieme", "fraud_Lind"],
    "category": ["misc_net", "grocery_pos", "entertainment"],
    "amt": ["4.97", "107.23", "220.11"],
    "first": ["Jennifer", "Stephanie", "Edward"],
    "last": ["Banks", "Gill", "Sanchez"],
    "gender": ["F", "F", "M"],
    "street": ["561 Perry Cove", "43039 Riley Greens Suite 393", "594 White Dale Suite 530"],
    "city": ["Moravian Falls", "Orient", "Malad City"],
    "state": ["NC", "WA", "ID"],
    "zip": ["28654", "01160", "83252"],
    "lat": ["36.0788", "48.8878", "42.1808"],
    "long": ["-81.1781", "-118.2105", "-112.262"],
    "city_pop": ["3495", "149", "4154"],
    "job": ["Psychologist, counselling", "Special educational needs teacher", "Nature warden"],
    "dob": ["1988-03-09", "1978-06-21", "1962-01-19"],
    "trans_num": ["0b242abb623afc578575680df30655b9", "1f76529f857473494", "a1a22d70485983eac1"],
    "unix_time": ["1325376018", "1325376044", "1325376051"],
    "merch_lat": ["36.011293", "49.159047", "43.150704"],
    "merch_long": ["-82.048315", "-118.186462", "-112.154481"],
    "is_fraud": ["0", "0", "1"],
}


@pytest.fixture
def sparkov_frame() -> pd.DataFrame:
    """Three valid Sparkov rows as text, the way a CSV reader hands them over."""
    return pd.DataFrame(SPARKOV_ROWS, dtype="str")


@pytest.fixture
def sparkov_typed_frame() -> pd.DataFrame:
    """The same three rows with numbers as numbers, the way a pandas user builds them."""
    frame = pd.DataFrame(SPARKOV_ROWS)
    for column in ("cc_num", "unix_time", "city_pop", "is_fraud"):
        frame[column] = frame[column].astype("int64")
    for column in ("amt", "lat", "long", "merch_lat", "merch_long"):
        frame[column] = frame[column].astype("float64")
    return frame


@pytest.fixture
def fdh_frame() -> pd.DataFrame:
    """Three Fraud Detection Handbook rows, typed as the handbook's own files load."""
    return pd.DataFrame(
        {
            "TRANSACTION_ID": [0, 1, 2],
            "TX_DATETIME": pd.to_datetime(
                ["2018-04-01 00:00:31", "2018-04-01 00:02:10", "2018-04-01 00:07:56"]
            ),
            "CUSTOMER_ID": [596, 4961, 2],
            "TERMINAL_ID": [3156, 3412, 1365],
            "TX_AMOUNT": [57.16, 81.51, 146.00],
            "TX_TIME_SECONDS": [31, 130, 476],
            "TX_TIME_DAYS": [0, 0, 0],
            "TX_FRAUD": [0, 0, 1],
            "TX_FRAUD_SCENARIO": [0, 0, 1],
        }
    )


@pytest.fixture
def ulb_frame() -> pd.DataFrame:
    """Three creditcard.csv rows: Time, V1..V28, Amount, Class."""
    components = {f"V{i}": np.linspace(-1.0, 1.0, 3) * i for i in range(1, 29)}
    return pd.DataFrame(
        {"Time": [0.0, 0.0, 406.0], **components, "Amount": [149.62, 2.69, 0.0], "Class": [0, 0, 1]}
    )
