"""Model behaviour (Made-With-ML): invariance to identity, direction on amounts, quality floor."""

import numpy as np
import pandas as pd
import pytest

from fraudops.training.bundle import ModelBundle
from fraudops.training.trainer import TrainingResult


@pytest.fixture(scope="module")
def bundle(default_training: TrainingResult) -> ModelBundle:
    """The default recipe, untuned, trained on the simulated history."""
    return default_training.bundle


def test_renaming_the_cardholder_does_not_move_any_score(
    history: pd.DataFrame, bundle: ModelBundle
) -> None:
    """New names, street and job for every cardholder leave every score exactly as it was."""
    renamed = history.assign(first="Alex", last="Doe", street="1 Main St", job="Engineer")
    np.testing.assert_array_equal(bundle.score_frame(history), bundle.score_frame(renamed))


def test_twenty_times_the_usual_amount_on_a_quiet_card_raises_the_score(
    history: pd.DataFrame, bundle: ModelBundle
) -> None:
    """Legitimate purchases on quiet cards score higher when their amount is twenty times larger."""
    late = history[(history["event_time"] >= "2024-01-25") & (history["is_fraud"] == 0)]
    per_card = history.groupby("cc_num")["trans_num"].transform("size")
    quiet = late[per_card.loc[late.index] <= per_card.median()].sample(50, random_state=0)
    before = bundle.score_frame(history)
    inflated = history.copy()
    inflated.loc[quiet.index, "amt"] = inflated.loc[quiet.index, "amt"] * 20
    after = bundle.score_frame(inflated)
    rows = history.index.get_indexer(quiet.index)
    assert (after[rows] > before[rows]).mean() >= 0.9
    # Legitimate scores start near zero; the rise is best seen as a ratio.
    assert np.median(after[rows] / before[rows]) > 5
