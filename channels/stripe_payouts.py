"""Stripe payouts for payfront's adapter: a Connect transfer (``POST /v1/transfers``) from the
platform's balance to a connected account (``destination=acct_…``), its query, and the
``transfer.created`` event, mapped to payfront's ``PayoutStatus``.

Facts (docs.stripe.com/api/transfers, docs.stripe.com/connect/separate-charges-and-transfers):

- a transfer is synchronous: the answer is the transfer object, the money is in the connected
  account's balance once it exists. There is no pending or failed transfer: a created transfer
  is ``SUCCEEDED``; a refused one is an error answer (e.g. 400 ``balance_insufficient``);
- it can be reversed later (``POST /v1/transfers/{id}/reversals``, event
  ``transfer.reversed``): money going back to the platform is not a state of the payout in
  payfront's model, so it is not mapped (a reversal is acknowledged and left alone);
- Stripe cannot look a transfer up by metadata, but lists filter by ``transfer_group``: payfront
  sets ``transfer_group`` to ``payfront-payout-{out_payout_no}``, so a transfer whose answer was
  lost is found by ``GET /v1/transfers?transfer_group=…`` and matched on
  ``metadata[out_payout_no]``.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from pydantic import Field, StrictBool, StrictInt, StrictStr

from channels import stripe_wire as wire
from channels.base import CreatePayout, PayoutState, PayoutStatus
from channels.errors import ChannelFatal, ChannelOrderNotFound, ChannelUnknownOutcome

PAYOUT_KEY_PREFIX = "payfront-payout-"
TRANSFER_GROUP_PREFIX = "payfront-payout-"
OUT_PAYOUT_NO_KEY = "out_payout_no"
REMARK_METADATA_KEY = "remark"
DESCRIPTION_MAX = 350  # characters Stripe shows of a description
METADATA_VALUE_MAX = 500
LIST_LIMIT = 100
SUCCEEDED = "paid"  # channel_state of a transfer that exists and is not reversed
REVERSED = "reversed"
PAYOUT_EVENT_TYPES: tuple[str, ...] = ("transfer.created",)
# Genuine transfer events payfront does not model (see the module docstring).
UNMODELLED_PAYOUT_EVENT_TYPES: tuple[str, ...] = ("transfer.reversed", "transfer.updated")


class TransferCreate(wire.WireModel):
    """Parameters of ``POST /v1/transfers``; field order is the encoded order."""

    amount: StrictInt
    currency: StrictStr
    destination: StrictStr
    description: StrictStr | None = None
    transfer_group: StrictStr
    metadata: dict[str, str]


class Transfer(wire.WireModel):
    id: StrictStr
    object: StrictStr
    amount: StrictInt
    currency: StrictStr
    created: StrictInt
    destination: StrictStr | None = None
    amount_reversed: StrictInt = 0
    reversed: StrictBool = False
    transfer_group: StrictStr | None = None
    metadata: dict[str, StrictStr] = Field(default_factory=dict)


class TransferList(wire.WireModel):
    object: StrictStr
    data: list[Transfer]
    has_more: StrictBool


def idempotency_key(out_payout_no: str) -> str:
    """The key of one payout. Stripe forgets keys after 24 hours: a payout whose answer was
    lost longer ago must be looked up (``list_path``) before it is sent again."""
    return PAYOUT_KEY_PREFIX + out_payout_no


def transfer_group(out_payout_no: str) -> str:
    return TRANSFER_GROUP_PREFIX + out_payout_no


def create_form(payout: CreatePayout) -> bytes:
    """The form of ``POST /v1/transfers``; identical for every retry of the same payout."""
    wire.check_order_number(payout.out_payout_no)
    if not payout.payee_id.startswith("acct_"):
        raise ChannelFatal(
            "INVALID_PAYEE",
            f"a Stripe transfer goes to a connected account (acct_…), not {payout.payee_id!r}",
        )
    if payout.amount_minor < 1:
        raise ChannelFatal("INVALID_AMOUNT", f"amount {payout.amount_minor} must be positive")
    metadata = {OUT_PAYOUT_NO_KEY: payout.out_payout_no}
    if payout.remark:
        metadata[REMARK_METADATA_KEY] = payout.remark[:METADATA_VALUE_MAX]
    params = TransferCreate(
        amount=payout.amount_minor,  # whole units already for zero-decimal currencies
        currency=payout.currency.lower(),
        destination=payout.payee_id,
        description=payout.remark[:DESCRIPTION_MAX] if payout.remark else None,
        transfer_group=transfer_group(payout.out_payout_no),
        metadata=metadata,
    )
    return wire.to_form(params)


def retrieve_path(channel_payout_no: str) -> str:
    return f"/v1/transfers/{quote(channel_payout_no, safe='')}"


def list_path(out_payout_no: str) -> str:
    wire.check_order_number(out_payout_no)
    query = urlencode({"transfer_group": transfer_group(out_payout_no), "limit": LIST_LIMIT})
    return "/v1/transfers?" + query


def to_payout_status(transfer: Transfer) -> PayoutStatus | None:
    """The transfer as payfront's ``PayoutStatus`` (always SUCCEEDED: a transfer that exists
    moved the money); None if it does not carry payfront's payout number."""
    out_payout_no = transfer.metadata.get(OUT_PAYOUT_NO_KEY)
    if transfer.object != "transfer" or not out_payout_no:
        return None
    return PayoutStatus(
        out_payout_no=out_payout_no,
        state=PayoutState.SUCCEEDED,
        # A reversal does not undo the payout in payfront's model; the state still says so.
        channel_state=REVERSED if transfer.reversed else SUCCEEDED,
        amount_minor=transfer.amount,
        channel_payout_no=transfer.id,
        succeeded_at=wire.timestamp(transfer.created),
    )


def status_of_answer(body: bytes, http_status: int) -> PayoutStatus:
    transfer = wire.load(Transfer, body)
    status = to_payout_status(transfer) if transfer is not None else None
    if status is None:
        raise ChannelUnknownOutcome(
            "UNREADABLE_TRANSFER",
            "not a transfer, or it has no metadata[out_payout_no]",
            http_status=http_status,
        )
    return status


def find_transfer(body: bytes, out_payout_no: str, http_status: int) -> PayoutStatus:
    """A 200 answer of a payout query (one transfer, or the group's list) → the payout;
    ``ChannelOrderNotFound`` when Stripe has no transfer for it."""
    listing = wire.load(TransferList, body)
    if listing is None or listing.object != "list":
        status = status_of_answer(body, http_status)
        if status.out_payout_no != out_payout_no:
            raise ChannelFatal(
                "PAYOUT_NUMBER_MISMATCH",
                f"{status.channel_payout_no} is payout {status.out_payout_no!r}, "
                f"not {out_payout_no!r}",
                http_status=http_status,
            )
        return status
    found = [t for t in listing.data if t.metadata.get(OUT_PAYOUT_NO_KEY) == out_payout_no]
    if len(found) > 1:
        # Only a create repeated after Stripe forgot its key makes two: money went twice.
        ids = ", ".join(t.id for t in found)
        raise ChannelFatal(
            "DUPLICATE_TRANSFERS", f"{out_payout_no!r} is at Stripe {len(found)} times: {ids}"
        )
    if not found:
        if listing.has_more:
            raise ChannelUnknownOutcome(
                "TRANSFER_LIST_TRUNCATED",
                f"{out_payout_no!r} is not among the group's {LIST_LIMIT} newest transfers",
                http_status=http_status,
            )
        raise ChannelOrderNotFound(
            "PAYOUT_NOT_FOUND",
            f"Stripe has no transfer {out_payout_no!r}",
            http_status=http_status,
        )
    matched = to_payout_status(found[0])
    if matched is None:  # pragma: no cover - found by that very metadata
        raise ChannelUnknownOutcome("UNREADABLE_TRANSFER", found[0].id, http_status=http_status)
    return matched


# A refused transfer is classified by ``stripe_wire.classify_failure`` like any call. One code
# deserves a word: ``balance_insufficient`` (400) means the platform's available balance is
# short. Stripe saves the answer of a request that started executing under its Idempotency-Key
# for 24 hours, so the same payout re-sent (same key) replays this very error even after a
# top-up: it is fatal for this out_payout_no (pay out under a new number after the top-up).
