"""The checks `csv_validate` cannot make, and the file name's metadata put into each row.

`csv_validate` (before this node) has checked each row's types and required fields and
made it a typed record; this node checks what needs the values: hashes and addresses in
their hex form, a block number and a vote count in range, a timestamp on the file's day,
no transaction twice in one file. A valid record gains `constituency` and `file_date`
(from `constituency_<id>_<YYYYMMDD>.csv`, the route's groups) and goes to the first `to`
tag; an invalid one, as `{"line", "reason", "row"}` (the shape `csv_validate` reports),
to the second. It implements `process_batch`, which the engine prefers, because that form
carries each record's input line number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from processors import Context, ProcessorError
from processors.base import Outbox

TX_HASH = re.compile(r"0x[0-9a-f]{64}")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class Transactions:
    """Range and form checks on typed transaction records (see the module doc)."""

    def __init__(self, max_votes: int = 10_000, min_block: int = 1) -> None:
        if not isinstance(max_votes, int) or max_votes < 1:
            raise ValueError("max_votes: expected a whole number >= 1")
        if not isinstance(min_block, int) or min_block < 0:
            raise ValueError("min_block: expected a whole number >= 0")
        self.max_votes = max_votes
        self.min_block = min_block
        self.seen: set[str] = set()
        self.votes: Counter[str] = Counter()
        self.valid = self.invalid = 0

    def start(self, ctx: Context) -> None:
        if len(ctx.to) != 2:
            raise ProcessorError("expected two `to` tags: valid rows, then invalid ones")
        self.ctx = ctx
        self.to_valid, self.to_invalid = ctx.to
        try:
            self.constituency = int(ctx.metadata["constituency"])
            self.day = date(*map(int, _ymd(ctx.metadata["date"])))
        except (KeyError, ValueError) as exc:
            raise ProcessorError(f"the file name carries no constituency and date ({exc}); "
                                 "expected constituency_<id>_<YYYYMMDD>.csv") from None  # fmt: skip

    def process(self, tag: str, rec: dict[str, Any]) -> list[tuple[str, Any]]:
        """One record (the engine calls `process_batch`, which knows line numbers)."""
        return [self._one(rec, 0)]

    def process_batch(
        self, tag: str, values: list[Any], origins: Sequence[int], out: Outbox
    ) -> None:
        routed: dict[str, tuple[list[Any], list[int]]] = {self.to_valid: ([], []),
                                                          self.to_invalid: ([], [])}  # fmt: skip
        for rec, origin in zip(values, origins, strict=True):
            to, value = self._one(rec, origin)
            routed[to][0].append(value)
            routed[to][1].append(origin)
        for to, (batch, batch_origins) in routed.items():
            out.put(to, batch, batch_origins)

    def _one(self, rec: dict[str, Any], origin: int) -> tuple[str, Any]:
        reason = self._reason(rec)
        if reason is not None:
            self.invalid += 1
            return self.to_invalid, {"line": origin or None, "reason": reason, "row": rec}
        rec["constituency"], rec["file_date"] = self.constituency, self.day.isoformat()
        self.votes[rec["candidate"]] += rec["votes"]
        self.valid += 1
        return self.to_valid, rec

    def _reason(self, rec: dict[str, Any]) -> str | None:
        tx = rec["tx_hash"]
        if not TX_HASH.fullmatch(tx):
            return f"tx_hash {tx!r} is not 0x and 64 lowercase hex digits"
        if tx in self.seen:
            return f"tx_hash {tx} appears twice in this file"
        for key in ("contract", "sender"):
            if not ADDRESS.fullmatch(rec[key]):
                return f"{key} {rec[key]!r} is not an address (0x and 40 hex digits)"
        if rec["block_number"] < self.min_block:
            return f"block_number {rec['block_number']} is below {self.min_block}"
        if not 1 <= rec["votes"] <= self.max_votes:
            return f"votes {rec['votes']} is outside 1..{self.max_votes}"
        if rec["timestamp"][:10] != self.day.isoformat():
            return f"timestamp {rec['timestamp']} is not on the file's date {self.day}"
        self.seen.add(tx)
        return None

    def flush(self) -> None:
        self.ctx.aggregates[self.ctx.name] = {
            "constituency": self.constituency,
            "valid": self.valid,
            "invalid": self.invalid,
            "votes_by_candidate": dict(sorted(self.votes.items())),
        }


def _ymd(text: str) -> tuple[str, str, str]:
    return text[:4], text[4:6], text[6:8]
