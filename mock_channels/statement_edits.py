"""Sandbox-only: edits to the statements an emulator serves, so tests and demos can make
differences a channel makes rarely on its own (a line left out, another amount, another fee,
another refund state). Kept in memory per channel account and order or refund number."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class StatementEdit(BaseModel):
    """How one order's or refund's line differs from the truth on the statement."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    omit: bool = False
    amount: int | None = Field(default=None, ge=1, description="minor units")
    fee: int | None = Field(default=None, ge=0, description="minor units, as a positive number")
    status: str | None = Field(default=None, min_length=1, max_length=32)


@dataclass
class StatementEdits:
    by_key: dict[tuple[str, str], StatementEdit] = field(default_factory=dict)

    def set(self, account: str, number: str, edit: StatementEdit) -> None:
        self.by_key[(account, number)] = edit

    def clear(self, account: str, number: str) -> None:
        self.by_key.pop((account, number), None)

    def of(self, account: str) -> dict[str, StatementEdit]:
        return {number: edit for (owner, number), edit in self.by_key.items() if owner == account}
