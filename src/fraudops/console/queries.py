"""The console's query strings and forms, validated: a bad value is a 422 naming the field."""

import math
import re
from datetime import datetime
from typing import Literal, Self
from urllib.parse import urlencode

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fraudops.storage.console import QueueFilter
from fraudops.times import utc_naive

PAGE_SIZE = 25
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
TRANS_NUM = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


def is_trans_num(text: str) -> bool:
    """Whether the text could be a stored trans_num (PostgreSQL refuses NUL in text)."""
    return TRANS_NUM.fullmatch(text) is not None


class QueueQuery(BaseModel):
    """The queue's filters, order and page, as the form in /queue sends them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["review", "decline"] | None = None
    min_amount: float | None = Field(default=None, ge=0.0)
    max_amount: float | None = Field(default=None, ge=0.0)
    category: str | None = Field(default=None, max_length=64, pattern=NO_CONTROL)
    merchant: str | None = Field(default=None, max_length=256, pattern=NO_CONTROL)
    model_version: str | None = Field(default=None, max_length=64, pattern=NO_CONTROL)
    start: datetime | None = None
    end: datetime | None = None
    order: Literal["newest", "riskiest"] = "newest"
    page: int = Field(default=1, ge=1, le=10_000)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """An empty field of the form means no filter."""
        return None if value == "" else value

    @field_validator("min_amount", "max_amount")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            msg = "must be a finite number"
            raise ValueError(msg)
        return value

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Event times are naive UTC: a time with a zone is converted, one without taken as
        UTC."""
        if value is None:
            return None
        try:
            return utc_naive(value)
        except OverflowError:
            msg = "is out of range once converted to UTC"
            raise ValueError(msg) from None

    @model_validator(mode="after")
    def _ranges_in_order(self) -> Self:
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            msg = "max_amount: must not be below min_amount"
            raise ValueError(msg)
        if self.start is not None and self.end is not None and self.start > self.end:
            msg = "end: must not be before start"
            raise ValueError(msg)
        return self

    @classmethod
    def parse(cls, values: dict[str, str]) -> "QueueQuery":
        """The query of a request's parameters, or 422 naming each bad field."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problems(error)
            ) from error

    def to_filter(self) -> QueueFilter:
        """The warehouse's filter."""
        return QueueFilter(
            decision=self.decision,
            min_amount=self.min_amount,
            max_amount=self.max_amount,
            category=self.category,
            merchant=self.merchant,
            model_version=self.model_version,
            start=self.start,
            end=self.end,
        )

    def query_string(self, **changes: object) -> str:
        """The query string of these filters (with changes), leaving out empty and default
        values."""
        values = self.model_dump() | changes
        defaults = type(self).model_fields
        kept = {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in values.items()
            if value is not None and value != defaults[name].default
        }
        return urlencode(kept)


def problems(error: ValidationError) -> str:
    """One line per bad field: `field: problem`."""
    lines = []
    for item in error.errors()[:10]:
        where = ".".join(str(part) for part in item.get("loc", ())) or "query"
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(message if ":" in message.split(" ")[0] else f"{where}: {message}")
    return "; ".join(lines)
