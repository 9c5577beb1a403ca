"""How old a stored transaction must be for a missing label to mean legitimate.

Monitoring's labelled window and retraining's labelled data both end this long before
as_of: the configured label delay, or longer where the warehouse's fraud labels show they
take longer to arrive (features.labels.label_maturity, one rule for both).
"""

from datetime import datetime, timedelta
from typing import Protocol

from fraudops.features.labels import DEFAULT_MATURITY_QUANTILE, LabelMaturity, label_maturity

# How far back the fraud labels' waits are read: long enough to see chargebacks that take
# months, which a shorter look-back would cut off and so underestimate.
LABEL_ARRIVAL_LOOKBACK = timedelta(days=180)


class FraudLabelWaits(Protocol):
    """The warehouse read the maturity needs."""

    def fraud_label_waits(
        self, start: datetime, end: datetime, *, labels_known_by: datetime
    ) -> list[float]:
        """Seconds from transaction to fraud label, of frauds labelled by then."""
        ...


def observed_label_maturity(
    warehouse: FraudLabelWaits,
    *,
    as_of: datetime,
    delay: timedelta,
    quantile: float = DEFAULT_MATURITY_QUANTILE,
) -> LabelMaturity:
    """The maturity age as of a moment, from the fraud labels known by then."""
    waits = warehouse.fraud_label_waits(
        as_of - LABEL_ARRIVAL_LOOKBACK, as_of, labels_known_by=as_of
    )
    return label_maturity(waits, delay=delay, quantile=quantile)
