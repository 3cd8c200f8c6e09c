"""Renders docs/states.md from the tables in core.states: ``python -m payfront.statedocs``."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from core.states import (
    PAY_TERMINAL,
    PAY_TRANSITIONS,
    REFUND_TERMINAL,
    REFUND_TRANSITIONS,
    TRADE_TRANSITIONS,
    WITHDRAWAL_TERMINAL,
    WITHDRAWAL_TRANSITIONS,
)

TARGET = Path(__file__).resolve().parents[1] / "docs" / "states.md"


def _table(transitions: Iterable[tuple[tuple[StrEnum, StrEnum], StrEnum]]) -> list[str]:
    lines = ["| from | event | to |", "|---|---|---|"]
    lines += [f"| `{src}` | `{event}` | `{dst}` |" for (src, event), dst in transitions]
    return lines


def _mermaid(transitions: Iterable[tuple[tuple[StrEnum, StrEnum], StrEnum]]) -> list[str]:
    lines = ["```mermaid", "stateDiagram-v2"]
    lines += [f"    {src} --> {dst}: {event}" for (src, event), dst in transitions]
    return [*lines, "```"]


def render() -> str:
    terminal = ", ".join(f"`{status}`" for status in sorted(PAY_TERMINAL))
    refund_terminal = ", ".join(f"`{status}`" for status in sorted(REFUND_TERMINAL))
    withdrawal_terminal = ", ".join(f"`{status}`" for status in sorted(WITHDRAWAL_TERMINAL))
    lines = [
        "# State machines",
        "",
        "Generated from `core/states.py` by `python -m payfront.statedocs`; a test keeps the two",
        "equal. Every move is a compare-and-set on status and version; a move that is not in",
        "the table does not happen.",
        "",
        "## Pay order (one attempt at a channel)",
        "",
        *_table(PAY_TRANSITIONS.items()),
        "",
        f"Terminal: {terminal}.",
        "",
        *_mermaid(PAY_TRANSITIONS.items()),
        "",
        "## Trade order (the merchant's order)",
        "",
        *_table(TRADE_TRANSITIONS.items()),
        "",
        *_mermaid(TRADE_TRANSITIONS.items()),
        "",
        "## Refund order (one refund of a paid pay order)",
        "",
        "A refund holds its amount against the pay order (`amount_refunded`) from creation;",
        "`failed` gives it back. Refunds of one pay order never add up to more than it was paid.",
        "",
        *_table(REFUND_TRANSITIONS.items()),
        "",
        f"Terminal: {refund_terminal}.",
        "",
        *_mermaid(REFUND_TRANSITIONS.items()),
        "",
        "## Withdrawal (a wallet paid out through a channel)",
        "",
        "The wallet is debited when the withdrawal is created; `failed` credits it back.",
        "",
        *_table(WITHDRAWAL_TRANSITIONS.items()),
        "",
        f"Terminal: {withdrawal_terminal}.",
        "",
        *_mermaid(WITHDRAWAL_TRANSITIONS.items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")
