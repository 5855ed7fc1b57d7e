"""The `templates` built-in: the message templates of a file's records, per level, into
its summary — "what went wrong in this file" without reading it.

Templates are mined with Drain (drain3's streaming template miner): messages with the same
words where only numbers, ids or names change become one template with `<*>` for the
parts that change (`payment <*> declined: insufficient funds`). Only the first line of a
message is mined (a stack trace's first line names it), at most `MAX_CHARS` of it.

Cost and memory are bounded. Messages are counted by their shape (the text less its
digits: a dict lookup); Drain sees each shape once, when the shapes are folded into its
templates (at the end of the file, or when 20 times `max_templates` shapes are held),
and keeps at most `max_templates` (least recently used first out). Records of the
levels that are the bulk of a log (TRACE, DEBUG, INFO, NOTICE, and records without a
level) are all mined in the file's first `WARMUP` batches, then from one batch in
`sample` (their counts then estimates, multiplied back to the file's batches, and marked
so); every other record
(WARNING and worse, levels the table does not know) is mined, so a rare error is never
missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from drain3.drain import Drain

from config import values as opt
from processors.base import Context, Line, Outbox

SAMPLED = frozenset(("TRACE", "DEBUG", "INFO", "NOTICE", None))  # None: no level
WARMUP = 16  # batches mined whole before sampling starts
MAX_CHARS = 512  # of a message's first line
_DIGITS = b"0123456789"
_SEVERITY = ("FATAL", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG", "TRACE")


class Templates:
    """Mines message templates per `by` value (see the module doc) into
    `aggregates.<name>`; passes every line on unchanged."""

    def __init__(
        self,
        field: str = "message",
        by: str | None = "level",
        top: int = 10,
        max_templates: int = 1000,
        sample: int = 16,
        similarity: float = 0.4,
    ) -> None:
        self.field = opt.string("field", field, empty=False)
        self.by = None if by is None else opt.string("by", by, empty=False)
        self.top = opt.integer("top", top, 1, 1000)
        self.max_templates = opt.integer("max_templates", max_templates, 1, 100_000)
        self.every = opt.integer("sample", sample, 1, 1 << 20)
        self.similarity = opt.number("similarity", similarity, 0.0, 1.0)
        self.drain = Drain(sim_th=self.similarity, max_clusters=self.max_templates)
        # per `by` value: each shape (the message's first line less its digits, as bytes)
        # with its count; a shape's first message is kept to show Drain
        self.shapes: dict[Any, dict[bytes, int]] = {}
        self.first: dict[bytes, str] = {}
        self.max_shapes = self.max_templates * 20
        self.counts: dict[tuple[Any, int], int] = {}  # (by value, cluster id) -> records
        self.texts: dict[int, str] = {}  # cluster id -> template (evicted ones too)
        self.dropped: dict[Any, int] = {}  # records of the templates pruned, by `by` value
        self.sampled = False  # some batch's TRACE…NOTICE records were left out
        self.seen = 0  # records
        self.covered = 0  # records the bulk levels' counts stand for
        self.batches = 0

    def targets(self, to: tuple[str, ...]) -> list[str]:
        return list(to[:1])

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]
        self.ctx = ctx

    def process(self, tag: str, line: Line) -> Line:
        self.process_batch(tag, [line], [0], None)
        return line

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox | None
    ) -> None:
        if out is not None:
            out.put(self.to, values, origins)
        self.batches += 1
        self.seen += len(values)
        if self.batches > WARMUP and self.batches % self.every and self.by is not None:
            self.sampled = True  # the bulk levels' counts are estimates from here on
            by, field = self.by, self.field
            try:  # the common batch: records only, and only the rarer levels are mined
                rare = [(k, v.get(field)) for v in values if (k := v.get(by)) not in SAMPLED]
            except (AttributeError, TypeError):  # text lines, or a level that is a list
                keys = self._keys(values)
                rare = [
                    (k, _message(v, field))
                    for k, v in zip(keys, values, strict=True)
                    if k not in SAMPLED
                ]
            self._mine(rare, 1)
        else:
            keys = self._keys(values)
            if self.batches <= WARMUP:
                self._mine(
                    [(k, _message(v, self.field)) for k, v in zip(keys, values, strict=True)], 1
                )
                self.covered += len(values)
                return
            if self.batches % self.every == 0:  # a sampled batch: counts for `every`
                picked = [(k, _message(v, self.field)) for k, v in zip(keys, values, strict=True)]
                self._mine([(k, m) for k, m in picked if k in SAMPLED], self.every)
                self._mine([(k, m) for k, m in picked if k not in SAMPLED], 1)
                self.covered += self.every * len(values)
            else:  # `by` is None: all records are of no level
                self.sampled = True
        if len(self.first) > self.max_shapes:
            self._fold()

    def _keys(self, values: list[Line]) -> list[Any]:
        """Each record's `by` value (hashable: anything else as its text)."""
        if self.by is None:
            return [None] * len(values)
        by = self.by
        try:
            keys = [v.get(by) for v in values]
        except AttributeError:  # text lines among the records: they have no level
            keys = [v.get(by) if v.__class__ is dict else None for v in values]
        try:
            frozenset(keys)
        except TypeError:  # a list or an object in JSON
            keys = [k if k is None or k.__class__ is str else str(k) for k in keys]
        return keys

    def _mine(self, picked: list[tuple[Any, Any]], n: int) -> None:
        """Count the shapes of the `picked` (`by` value, message) pairs, `n` each: the
        messages' shapes made in one pass over their joined text when they are one-line
        texts of at most `MAX_CHARS` (as a rule), else one by one."""
        if not picked:
            return
        keys, texts = zip(*picked, strict=True)
        try:
            joined = "\n".join(texts)  # TypeError: a message that is no text
            if joined.count("\n") + 1 != len(texts) or max(map(len, texts)) > MAX_CHARS:
                raise ValueError("a message of many lines, or a long one")
            made = joined.encode().translate(None, _DIGITS).split(b"\n")  # UnicodeEncodeError
        except (TypeError, ValueError):
            self._mine_each(picked, n)
            return
        shapes, first = self.shapes, self.first
        firsts: dict[bytes, str] | None = None
        for (key, shape), times in Counter(zip(keys, made, strict=True)).items():
            counts = shapes.get(key)
            if counts is None:
                counts = shapes[key] = {}
            seen = counts.get(shape)
            if seen is None:
                seen = 0
                if shape not in first:
                    if firsts is None:  # each shape's first message in this batch
                        firsts = dict(zip(reversed(made), reversed(texts), strict=True))
                    first[shape] = firsts[shape]
            counts[shape] = seen + times * n

    def _mine_each(self, picked: list[tuple[Any, Any]], n: int) -> None:
        """`_mine`, one message at a time."""
        shapes, first = self.shapes, self.first
        for key, message in picked:
            if message.__class__ is not str:
                continue
            if "\n" in message:
                message = message[: message.index("\n")]
            message = message[:MAX_CHARS]
            try:
                shape = message.encode().translate(None, _DIGITS)
            except UnicodeEncodeError:  # a byte the reader kept as a surrogate
                shape = message.encode("utf-8", "surrogateescape").translate(None, _DIGITS)
            counts = shapes.get(key)
            if counts is None:
                counts = shapes[key] = {}
            seen = counts.get(shape)
            if seen is None:
                seen = 0
                if shape not in first:
                    first[shape] = message
            counts[shape] = seen + n

    def _fold(self) -> None:
        """The shapes counted so far into Drain's templates (then forgotten: bounded)."""
        clusters: dict[bytes, int] = {}
        for key, counts in self.shapes.items():
            for shape, n in counts.items():
                cluster = clusters.get(shape)
                if cluster is None:
                    cluster = clusters[shape] = self._cluster(self.first[shape])
                at = (key, cluster)
                self.counts[at] = self.counts.get(at, 0) + n
        self.shapes.clear()
        self.first.clear()
        if len(self.counts) > self.max_templates * 4:
            self._prune()

    def _cluster(self, message: str) -> int:
        """Drain's cluster for a message; the words with digits in it are `<*>` at once
        (its shape's other messages differ from it only there)."""
        words = ["<*>" if any(c.isdigit() for c in w) else w for w in message.split()]
        found, _ = self.drain.add_log_message(" ".join(words))
        self.texts[found.cluster_id] = found.get_template()
        return found.cluster_id

    def _prune(self) -> None:
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        for (key, _), n in ranked[self.max_templates * 2 :]:  # still counted as records
            self.dropped[key] = self.dropped.get(key, 0) + n
        self.counts = dict(ranked[: self.max_templates * 2])
        alive = {cluster for _, cluster in self.counts}
        self.texts = {c: t for c, t in self.texts.items() if c in alive}

    def summary(self) -> dict[str, Any]:
        """Per `by` value (most severe level first): records mined, whether their counts
        are estimates, and the `top` templates with their counts."""
        self._fold()
        live = self.drain.id_to_cluster
        # the records since the last sampled batch: as the sampled ones were
        scale = self.seen / self.covered if self.sampled and self.covered else 1.0
        groups: dict[Any, dict[str, int]] = {}
        for (key, cluster), n in self.counts.items():
            count = round(n * scale) if key in SAMPLED else n
            found = live.get(cluster)
            text = found.get_template() if found is not None else self.texts.get(cluster, "")
            merged = groups.setdefault(key, {})  # a cluster evicted and made again: one
            merged[text] = merged.get(text, 0) + count
        rank = {level: i for i, level in enumerate(_SEVERITY)}
        order = sorted(groups, key=lambda k: (rank.get(k, -1 if k is not None else 99), str(k)))
        out: dict[str, Any] = {}
        for key in order:
            best = sorted(groups[key].items(), key=lambda kv: (-kv[1], kv[0]))[: self.top]
            dropped = self.dropped.get(key, 0)
            dropped = round(dropped * scale) if key in SAMPLED else dropped
            out["(none)" if key is None else _text(str(key))] = {
                "records": sum(groups[key].values()) + dropped,
                "estimated": self.sampled and key in SAMPLED,
                "templates": [{"count": n, "template": _text(t)} for t, n in best],
            }
        return {"field": self.field, "by": self.by, "groups": out}

    def flush(self) -> None:
        self.ctx.aggregates[self.ctx.name] = self.summary()
        return None


def _message(value: Line, field: str) -> Any:
    """A record's `field`; a text line is its own message."""
    return value.get(field) if value.__class__ is dict else value


def _text(text: str) -> str:
    """`text` as the summary's JSON can hold it: a byte the reader kept undecoded (a lone
    surrogate) as `\\udcff`."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text
