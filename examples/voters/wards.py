"""The voters recipe's sorting: each looked-up person into one of four categories.

After `http_lookup` (its answer under `voter`; 400 and 404 answers routed here too, and
its failures with `lookup_error`), a record goes to the first `to` tag when the person is
registered in the ward of the file's name (`ward_<n>_….xlsx`), the second when in another
ward, the third when not registered, the fourth when the lookup failed (with the reason).
Each leaves as a flat row for its sheet; the counts go to the summary (and its sheet).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from processors import Context, ProcessorError

CATEGORIES = ("in_ward", "elsewhere", "not_registered", "lookup_failed")
PERSON = ("id_number", "surname", "first_names", "date_of_birth", "row")


class Wards:
    """Sorts looked-up records by registration (see the module doc)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def start(self, ctx: Context) -> None:
        if len(ctx.to) != len(CATEGORIES):
            raise ProcessorError(f"expected {len(CATEGORIES)} `to` tags: {', '.join(CATEGORIES)}")
        try:
            self.ward = int(ctx.metadata["ward"])
        except (KeyError, ValueError):
            raise ProcessorError(
                "the file name carries no ward: expected ward_<n>_….xlsx"
            ) from None
        self.ctx = ctx
        self.tags = dict(zip(CATEGORIES, ctx.to, strict=True))

    def process(self, tag: str, rec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        category, extra = self._sort(rec)
        self.counts[category] += 1
        return [(self.tags[category], {k: rec.get(k) for k in PERSON} | extra)]

    def _sort(self, rec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        voter = rec.get("voter") or {}
        if "lookup_error" in rec or "error" in voter:
            reason = rec.get("lookup_error") or voter.get("error")
            return "lookup_failed", {"reason": reason}
        if not voter.get("registered"):
            return "not_registered", {}
        where = {
            "registered_ward": voter.get("ward"),
            "polling_station": voter.get("polling_station"),
        }
        return ("in_ward" if voter.get("ward") == self.ward else "elsewhere"), where

    def flush(self) -> None:
        self.ctx.aggregates[self.ctx.name] = {
            "ward": self.ward,
            **{c: self.counts[c] for c in CATEGORIES},
        }
