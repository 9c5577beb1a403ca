"""The Fraud Detection Handbook's simulated transactions, regenerated from its algorithm.

Source: Y.-A. Le Borgne, W. Siblini, B. Lebichot, G. Bontempi, "Reproducible Machine
Learning for Credit Card Fraud Detection - Practical Handbook" (Universite Libre de
Bruxelles, 2022), chapter 3.2 "Transaction data simulator",
https://github.com/Fraud-Detection-Handbook/fraud-detection-handbook
(Chapter_3_GettingStarted/SimulatedDataset.ipynb); the published data set is
https://github.com/Fraud-Detection-Handbook/simulated-data-raw. The Handbook's code is
GPL-3.0 and its prose CC BY-SA 4.0: this module copies none of that code. It is an
independent implementation of the published procedure and parameters, written to draw the
same random numbers in the same order:

- customers (numpy legacy seed 0): per customer, in turn, x and y uniform on [0, 100),
  mean amount uniform on [5, 100), standard deviation half the mean, mean transactions per
  day uniform on [0, 4);
- terminals (seed 1): x and y uniform on [0, 100); a customer uses the terminals closer
  than the radius r (strictly);
- transactions (numpy legacy seed and Python `random` seed both the customer id): per day
  a Poisson count; per transaction a time of day normal(43200 s, 20000 s) truncated to
  whole seconds and dropped unless strictly inside the day; an amount normal(mean, std),
  redrawn uniform on [0, 2 mean) when negative, rounded to cents; a terminal chosen
  uniformly (Python `random.choice`) among the customer's, the transaction dropped when
  there is none;
- all transactions sorted by time (pandas' default sort), numbered from 0;
- scenario 1: an amount above 220 is fraud; scenario 2: each day d (0 .. last day - 1)
  two terminals (pandas `sample(n=2, random_state=d)`) are compromised, every transaction
  on them in days [d, d + 28) is fraud; scenario 3: each day d three customers
  (`sample(n=3, random_state=d)`) leak their card, a third (rounded down) of their
  transactions in days [d, d + 14), drawn with Python `random.seed(d); random.sample`,
  have their amount multiplied by 5 and are fraud. A later scenario's code overwrites an
  earlier one's.

The Handbook's run (5,000 customers, 10,000 terminals, 183 days from 2018-04-01, r = 5)
reports 1,754,155 transactions and 978, 9,099 and 4,604 frauds from scenarios 1-3 (14,681
fraudulent transactions). `check_against_handbook` compares a generated frame with those
figures and with the first and last rows the Handbook prints; all match. Transactions in
the same second could still be numbered in another order than in the published file if
numpy's (unstable) quicksort broke ties differently when it was made.

    .venv/bin/python benchmarks/handbook_data.py --out handbook.parquet
"""

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.simulate.io import FDH_COLUMNS  # the Handbook's columns, as `--format fdh`

SECONDS_PER_DAY = 86_400
# What the Handbook prints for its run (SimulatedDataset.ipynb).
HANDBOOK_TRANSACTIONS = 1_754_155
HANDBOOK_SCENARIO_FRAUDS = (978, 9_099, 4_604)
HANDBOOK_FRAUDS = 14_681
HANDBOOK_FIRST_ROWS = (  # TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT
    ("2018-04-01 00:00:31", 596, 3156, 57.16),
    ("2018-04-01 00:02:10", 4961, 3412, 81.51),
    ("2018-04-01 00:07:56", 2, 1365, 146.00),
    ("2018-04-01 00:09:29", 4128, 8737, 64.49),
    ("2018-04-01 00:10:34", 927, 9906, 50.99),
)
HANDBOOK_LAST_ROWS = (
    ("2018-09-30 23:56:36", 161, 655, 54.24),
    ("2018-09-30 23:57:38", 4342, 6181, 1.23),
    ("2018-09-30 23:58:21", 618, 1502, 6.62),
    ("2018-09-30 23:59:52", 4056, 3067, 55.40),
    ("2018-09-30 23:59:57", 3542, 9849, 23.59),
)


@dataclass(frozen=True, kw_only=True)
class Customers:
    """Customer profiles: home, spending and the terminals within reach."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    mean_amount: npt.NDArray[np.float64]
    std_amount: npt.NDArray[np.float64]
    mean_per_day: npt.NDArray[np.float64]


def customer_profiles(count: int, *, seed: int = 0) -> Customers:
    """Customers' homes, amounts and daily rates, drawn customer by customer."""
    # Four uniforms per customer in the order x, y, mean amount, rate: the same doubles,
    # scaled the same way, as one legacy `np.random.uniform` call per value.
    draws = np.random.RandomState(seed).uniform(
        low=(0.0, 0.0, 5.0, 0.0), high=(100.0, 100.0, 100.0, 4.0), size=(count, 4)
    )
    return Customers(
        x=draws[:, 0],
        y=draws[:, 1],
        mean_amount=draws[:, 2],
        std_amount=draws[:, 2] / 2,
        mean_per_day=draws[:, 3],
    )


def terminal_locations(count: int, *, seed: int = 1) -> npt.NDArray[np.float64]:
    """Terminals' (x, y), drawn terminal by terminal."""
    return np.random.RandomState(seed).uniform(0.0, 100.0, size=(count, 2))


def terminals_within(
    customers: Customers, terminals: npt.NDArray[np.float64], radius: float
) -> list[list[int]]:
    """Each customer's terminals strictly closer than the radius, in terminal order."""
    reach = []
    for x, y in zip(customers.x, customers.y, strict=True):
        distance = np.sqrt(np.sum(np.square(np.array([x, y]) - terminals), axis=1))
        reach.append(np.flatnonzero(distance < radius).tolist())
    return reach


def customer_transactions(
    customer_id: int,
    *,
    mean_amount: float,
    std_amount: float,
    mean_per_day: float,
    terminals: list[int],
    days: int,
) -> tuple[list[int], list[float], list[int]]:
    """One customer's transactions: seconds from the start, raw amounts, terminals."""
    draw = np.random.RandomState(customer_id)
    pick = random.Random(customer_id)
    seconds: list[int] = []
    amounts: list[float] = []
    chosen: list[int] = []
    for day in range(days):
        for _ in range(draw.poisson(mean_per_day)):
            moment = int(draw.normal(SECONDS_PER_DAY / 2, 20_000))
            if not 0 < moment < SECONDS_PER_DAY:
                continue
            amount = draw.normal(mean_amount, std_amount)
            if amount < 0:
                amount = draw.uniform(0, mean_amount * 2)
            if terminals:
                chosen.append(pick.choice(terminals))
                seconds.append(moment + day * SECONDS_PER_DAY)
                amounts.append(float(amount))
    return seconds, amounts, chosen


def legitimate_transactions(
    customers: Customers, reach: list[list[int]], *, days: int, start: str
) -> pd.DataFrame:
    """Every customer's transactions, sorted by time and numbered from 0."""
    seconds: list[int] = []
    amounts: list[float] = []
    chosen: list[int] = []
    owners: list[int] = []
    for customer_id, terminals in enumerate(reach):
        times, spent, used = customer_transactions(
            customer_id,
            mean_amount=float(customers.mean_amount[customer_id]),
            std_amount=float(customers.std_amount[customer_id]),
            mean_per_day=float(customers.mean_per_day[customer_id]),
            terminals=terminals,
            days=days,
        )
        seconds += times
        amounts += spent
        chosen += used
        owners += [customer_id] * len(times)
    offsets = np.asarray(seconds, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "TX_DATETIME": pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s"),
            "CUSTOMER_ID": np.asarray(owners, dtype=np.int64),
            "TERMINAL_ID": np.asarray(chosen, dtype=np.int64),
            "TX_AMOUNT": np.round(np.asarray(amounts, dtype=np.float64), decimals=2),
            "TX_TIME_SECONDS": offsets,
            "TX_TIME_DAYS": offsets // SECONDS_PER_DAY,
        }
    )
    frame = frame.sort_values("TX_DATETIME").reset_index(drop=True)
    frame.insert(0, "TRANSACTION_ID", np.arange(len(frame), dtype=np.int64))
    return frame


def add_fraud_scenarios(
    frame: pd.DataFrame, *, customers: int, terminals: int
) -> tuple[pd.DataFrame, tuple[int, int, int]]:
    """The transactions labelled by the three scenarios, and each scenario's new frauds.

    A scenario's count is, as the Handbook prints it, the frauds it adds to those before it.
    """
    days = frame["TX_TIME_DAYS"].to_numpy()
    amount = frame["TX_AMOUNT"].to_numpy(dtype=np.float64).copy()
    fraud = np.zeros(len(frame), dtype=np.int64)
    scenario = np.zeros(len(frame), dtype=np.int64)

    fraud[amount > 220] = 1
    scenario[amount > 220] = 1
    counts = [int(fraud.sum())]

    terminal = frame["TERMINAL_ID"].to_numpy()
    terminal_ids = pd.Series(np.arange(terminals, dtype=np.int64))
    last_day = int(days.max())
    for day in range(last_day):
        compromised = terminal_ids.sample(n=2, random_state=day).to_numpy()
        rows = (days >= day) & (days < day + 28) & np.isin(terminal, compromised)
        fraud[rows] = 1
        scenario[rows] = 2
    counts.append(int(fraud.sum()) - counts[0])

    customer = frame["CUSTOMER_ID"].to_numpy()
    customer_ids = pd.Series(np.arange(customers, dtype=np.int64))
    for day in range(last_day):
        leaked = customer_ids.sample(n=3, random_state=day).to_numpy()
        rows = np.flatnonzero((days >= day) & (days < day + 14) & np.isin(customer, leaked))
        stolen = random.Random(day).sample(rows.tolist(), k=int(len(rows) / 3))
        amount[stolen] = amount[stolen] * 5
        fraud[stolen] = 1
        scenario[stolen] = 3

    counts.append(int(fraud.sum()) - counts[0] - counts[1])
    labelled = frame.assign(TX_AMOUNT=amount, TX_FRAUD=fraud, TX_FRAUD_SCENARIO=scenario)
    return labelled, (counts[0], counts[1], counts[2])


def handbook_transactions(
    *,
    customers: int = 5_000,
    terminals: int = 10_000,
    days: int = 183,
    start: str = "2018-04-01",
    radius: float = 5.0,
) -> pd.DataFrame:
    """The Handbook's labelled transactions in its nine columns (its defaults: its data set)."""
    profiles = customer_profiles(customers)
    locations = terminal_locations(terminals)
    reach = terminals_within(profiles, locations, radius)
    frame = legitimate_transactions(profiles, reach, days=days, start=start)
    labelled, counts = add_fraud_scenarios(frame, customers=customers, terminals=terminals)
    labelled = labelled.loc[:, list(FDH_COLUMNS)]
    labelled.attrs["scenario_frauds"] = counts
    return labelled


def check_against_handbook(frame: pd.DataFrame) -> dict[str, object]:
    """How a full-size frame compares with the figures the Handbook prints."""

    def rows(part: pd.DataFrame) -> list[tuple[str, int, int, float]]:
        """The printed columns of some rows: time, customer, terminal, amount."""
        return list(
            zip(
                part["TX_DATETIME"].dt.strftime("%Y-%m-%d %H:%M:%S").tolist(),
                part["CUSTOMER_ID"].tolist(),
                part["TERMINAL_ID"].tolist(),
                part["TX_AMOUNT"].tolist(),
                strict=True,
            )
        )

    return {
        "transactions": [len(frame), HANDBOOK_TRANSACTIONS],
        "frauds": [int(frame["TX_FRAUD"].sum()), HANDBOOK_FRAUDS],
        "scenario_frauds": [
            list(frame.attrs.get("scenario_frauds", ())),
            list(HANDBOOK_SCENARIO_FRAUDS),
        ],
        "first_rows_match": rows(frame.head(5)) == list(HANDBOOK_FIRST_ROWS),
        "last_rows_match": rows(frame.tail(5)) == list(HANDBOOK_LAST_ROWS),
    }


def main() -> None:
    """Generate the data set, write it and compare it with the Handbook's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help=".parquet or .csv")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=183)
    args = parser.parse_args()
    started = time.perf_counter()
    frame = handbook_transactions(
        customers=args.customers, terminals=args.terminals, days=args.days
    )
    if args.out.suffix == ".parquet":
        frame.to_parquet(args.out, index=False)
    else:
        frame.to_csv(args.out, index=False)
    print(f"{len(frame):,} transactions, {int(frame['TX_FRAUD'].sum()):,} frauds "
          f"in {time.perf_counter() - started:.0f} s -> {args.out}")  # fmt: skip
    print(check_against_handbook(frame))


if __name__ == "__main__":
    sys.exit(main())
