"""The templates node: counts per level (exact for WARNING and worse, estimated from a
sample for the bulk levels), bounded tables, and a summary JSON can always hold."""

from __future__ import annotations

import orjson

from processors.base import Context
from processors.templates import Templates


def mined(node: Templates, records: list[dict], batch: int = 256) -> dict:
    node.start(Context("templates", ("end",), "f.log", "log"))
    for at in range(0, len(records), batch):
        node.process_batch("log", records[at : at + batch], range(batch), None)
    node.flush()
    return node.ctx.aggregates["templates"]["groups"]


def test_bulk_levels_are_estimated_and_every_error_is_counted() -> None:
    records = [
        {"level": "INFO", "message": f"order {i} paid by user {i % 7}"} for i in range(50_000)
    ]
    for i in range(0, 50_000, 997):  # a rare error, spread thin
        records[i] = {"level": "ERROR", "message": f"payment {i} declined: card expired"}
    groups = mined(Templates(), records)
    errors = groups["ERROR"]
    assert errors["estimated"] is False and errors["records"] == 51
    assert errors["templates"] == [{"count": 51, "template": "payment <*> declined: card expired"}]
    info = groups["INFO"]
    assert info["estimated"] is True and abs(info["records"] - (50_000 - 51)) < 2_500
    assert info["templates"][0]["template"] == "order <*> paid by user <*>"


def test_memory_is_bounded_by_max_templates() -> None:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    records = [
        {
            "level": "ERROR",
            "message": f"{words[i % 8]} {words[i // 8 % 8]} {words[i // 64 % 8]} x{i}",
        }
        for i in range(30_000)
    ]
    node = Templates(max_templates=5, top=3)
    groups = mined(node, records)
    assert len(node.drain.id_to_cluster) <= 5 and len(node.texts) <= 10
    assert len(groups["ERROR"]["templates"]) == 3 and groups["ERROR"]["records"] == 30_000


def test_a_byte_the_reader_kept_undecoded_is_written_escaped() -> None:
    groups = mined(Templates(), [{"level": "ERROR", "message": "bad \udcff byte 12"}])
    assert groups["ERROR"]["templates"][0]["template"] == "bad \\udcff byte <*>"
    orjson.dumps(groups)  # the summary is written with orjson, which refuses lone surrogates


def test_every_error_is_counted_when_text_lines_and_odd_levels_come_between() -> None:
    """Past the first batches, a batch with a text line or a level that is no text among
    its records takes the slower path: its errors are still all counted, exactly, and a
    message of many lines or a long one still counts by its first line."""
    records: list = []
    for i in range(40 * 256):
        if i % 256 == 7:
            records.append("a text line no node parsed")
        elif i % 256 == 9:
            records.append({"level": ["ERROR"], "message": f"listed level {i}"})
        elif i % 100 == 3:
            records.append({"level": "ERROR", "message": f"job {i} failed\n\tat X.run(X.java:9)"})
        elif i % 100 == 5:
            records.append({"level": "WARNING", "message": f"slow {i} " + "x" * 600})
        else:
            records.append({"level": "INFO", "message": f"order {i} paid"})

    def count(level: object) -> int:
        return sum(1 for r in records if isinstance(r, dict) and r["level"] == level)

    groups = mined(Templates(), records)
    assert groups["ERROR"] == {
        "records": count("ERROR"),
        "estimated": False,
        "templates": [{"count": count("ERROR"), "template": "job <*> failed"}],
    }
    assert groups["['ERROR']"]["records"] == count(["ERROR"]) == 40
    assert groups["WARNING"]["records"] == count("WARNING") > 90
    assert groups["WARNING"]["templates"][0]["template"].startswith("slow <*> xxxx")
    assert len(groups["WARNING"]["templates"][0]["template"]) <= 512
