"""Wire models of the merchant API (pydantic at the edge)."""

from __future__ import annotations

from typing import Annotated, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from core.errors import InvalidRequest, MalformedBody
from core.money import MAX_AMOUNT_MINOR

ModelT = TypeVar("ModelT", bound=BaseModel)

# Text without control characters: they have no place in these fields, and PostgreSQL
# cannot even store a NUL.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=PRINTABLE)]
MetadataValue = Annotated[str, StringConstraints(max_length=500, pattern=PRINTABLE)]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int = Field(gt=0, le=MAX_AMOUNT_MINOR, description="Integer minor units (fen)")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    merchant_order_no: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
    ]
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)]
    method: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)]
    description: Annotated[str, StringConstraints(min_length=1, max_length=127, pattern=PRINTABLE)]
    expires_in: int = Field(default=900, ge=60, le=7 * 86400, description="Seconds")
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=20)


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT_MINOR,
        description="Integer minor units; omitted: all that is left to refund",
    )
    reason: (
        Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=PRINTABLE)] | None
    ) = None
    merchant_refund_no: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
        ]
        | None
    ) = None
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=20)


def parse_body(model: type[ModelT], body: bytes) -> ModelT:
    """Parse JSON bytes into ``model``; errors become ``MalformedBody``/``InvalidRequest``."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedBody("request body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(
            f"{param}: {first['msg']}", code="parameter_invalid", param=param
        ) from None


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: Annotated[
        str,
        StringConstraints(min_length=8, max_length=1024, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$"),
    ]
