"""Request bodies and tokens shared by the API tests."""

import secrets
from typing import Any

import pandas as pd

from transaction_bodies import request_body

SCORING_TOKEN = "score-" + secrets.token_urlsafe(24)
ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)


def transaction_json(frame: pd.DataFrame, index: int) -> dict[str, Any]:
    """A sample row as the JSON body of /v1/score (its timestamp as ISO text)."""
    return request_body(frame.iloc[index].to_dict())
