"""Stripe's list endpoints (docs.stripe.com/api/pagination): newest first, ``limit`` 1 to 100
(default 10), a cursor ``starting_after`` (older than that object) or ``ending_before`` (newer),
``created`` as a Unix time or a range ``created[gt|gte|lt|lte]``, ``expand[]=data.…``, and the
answer ``{"object": "list", "data": [...], "has_more": …, "url": "/v1/…"}``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mock_channels.stripe_errors import parameter_invalid, resource_missing
from mock_channels.stripe_forms import FormError, Params, as_list
from mock_channels.stripe_params import integer, string

LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before", "created", "expand"})
_RANGE = ("gt", "gte", "lt", "lte")


class Listed(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created(self) -> int: ...


_Item = TypeVar("_Item", bound=Listed)


@dataclass(frozen=True)
class ListRequest:
    limit: int
    starting_after: str | None
    ending_before: str | None
    created: Callable[[int], bool]
    expand: frozenset[str]


def list_request(params: Params, expandable: frozenset[str]) -> ListRequest:
    limit = integer(params, "limit")
    if limit is not None and not 1 <= limit <= 100:
        raise parameter_invalid(
            "limit", f"Invalid limit: must be between 1 and 100 (got {limit})", "parameter_invalid"
        )
    after = string(params, "starting_after")
    before = string(params, "ending_before")
    if after is not None and before is not None:
        raise parameter_invalid(
            "ending_before",
            "You may only specify one of these parameters: ending_before, starting_after.",
        )
    return ListRequest(
        limit=limit or 10,
        starting_after=after,
        ending_before=before,
        created=_created_filter(params),
        expand=_expand(params, expandable),
    )


def _created_filter(params: Params) -> Callable[[int], bool]:
    value = params.get("created")
    if value is None or value == "":
        return lambda created: True
    if isinstance(value, str):
        exact = integer(params, "created")
        return lambda created: created == exact
    if not isinstance(value, dict) or not set(value) <= set(_RANGE):
        raise parameter_invalid("created", "Invalid created: use created[gt|gte|lt|lte]")
    bounds = {name: integer(value, name) for name in _RANGE}

    def keep(created: int) -> bool:
        gt, gte, lt, lte = (bounds[name] for name in _RANGE)
        return (
            (gt is None or created > gt)
            and (gte is None or created >= gte)
            and (lt is None or created < lt)
            and (lte is None or created <= lte)
        )

    return keep


def _expand(params: Params, expandable: frozenset[str]) -> frozenset[str]:
    if "expand" not in params:
        return frozenset()
    try:
        fields = [str(field) for field in as_list(params["expand"], "expand")]
    except FormError as exc:
        raise parameter_invalid("expand", str(exc)) from None
    for index, field in enumerate(fields):
        if field not in expandable:
            raise parameter_invalid(
                f"expand[{index}]", f"This property cannot be expanded ({field})."
            )
    return frozenset(fields)


def page(
    newest_first: Sequence[_Item],
    request: ListRequest,
    keep: Callable[[_Item], bool],
    kind: str,
) -> tuple[list[_Item], bool]:
    """One page of ``newest_first`` (every object of the account, in Stripe's order) of those
    ``keep`` and ``request.created`` accept: (the page, whether more lie beyond it)."""

    def wanted(item: _Item) -> bool:
        return request.created(item.created) and keep(item)

    ids = [item.id for item in newest_first]
    if request.ending_before is not None:
        if request.ending_before not in ids:
            raise resource_missing(kind, request.ending_before, "ending_before")
        newer = [i for i in newest_first[: ids.index(request.ending_before)] if wanted(i)]
        # The ones closest to the cursor, still newest first.
        return newer[-request.limit :], len(newer) > request.limit
    start = 0
    if request.starting_after is not None:
        if request.starting_after not in ids:
            raise resource_missing(kind, request.starting_after, "starting_after")
        start = ids.index(request.starting_after) + 1
    older = (item for item in newest_first[start:] if wanted(item))
    found: list[_Item] = []
    for item in older:
        if len(found) == request.limit:
            return found, True
        found.append(item)
    return found, False


def list_body(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
