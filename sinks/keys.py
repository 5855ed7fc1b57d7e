"""S3 object keys: the map from a file's name to its key, one-to-one on every server folderd
supports, and back.

A name is any bytes but NUL, its parts separated by `/` (a relative path; inside folderd a
`str` with the bytes that are not UTF-8 as surrogates, as `os.fsdecode` gives). S3 servers
do not all store a key as it is sent:

- SeaweedFS turns `\\` into `/`, collapses `//` and drops a leading `/`, so `back\\slash.log`
  and `back/slash.log` are one object; it refuses `.` and `..` parts
  (weed/s3api/s3_constants/header.go: `NormalizeObjectKey`, `IsValidObjectKey`).
- MinIO refuses keys with a `.` or `..` part (split at `/` and `\\`, spaces around it
  trimmed), `//`, a trailing `/`, NUL, or bytes that are not UTF-8
  (cmd/object-api-utils.go: `IsValidObjectPrefix`; cmd/generic-handlers.go:
  `hasBadPathComponent`).
- AWS S3 takes any UTF-8 up to 1,024 bytes, but its guide names `\\` and the control
  characters among the characters to avoid, and its XML listings cannot carry most
  control characters.

So each part of a name is written with these percent-encoded as `%XX` (its UTF-8 bytes, or
the raw byte), and everything else kept, so an ordinary name is its own key:

- `%` itself (so `%41` in a name stays `%2541`, and decoding is unambiguous),
- `\\`, the control characters (U+0000 to U+001F, U+007F to U+009F) and U+FFFE, U+FFFF,
- every byte that is not part of valid UTF-8,
- the dots of a part that is only dots and spaces (` ..` → ` %2E%2E`).

`name_of(key)` is the inverse (`%XX` back to its byte). A key over 1,024 bytes, or a
prefix group with no value, is a `SinkDataError`: that file cannot be delivered there.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from sinks.errors import SinkDataError

MAX_KEY_BYTES = 1024  # AWS S3's limit; MinIO's too
_SPECIAL = re.compile("[%\\\\\x00-\x1f\x7f-\x9f\ufffe\uffff\udc80-\udcff]")
_DOTS = re.compile(r" *\.\.? *")


def _byte(m: re.Match[str]) -> str:
    ch = m.group(0)
    if "\udc80" <= ch <= "\udcff":  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"%{ord(ch) - 0xDC00:02X}"
    return "".join(f"%{b:02X}" for b in ch.encode())


def _part(part: str) -> str:
    part = _SPECIAL.sub(_byte, part)
    return part.replace(".", "%2E") if _DOTS.fullmatch(part) else part


def encoded(name: str) -> str:
    """`name` (a relative path) as a key: each part encoded, `/` between them."""
    if not _SPECIAL.search(name) and "." not in name:
        return name
    return "/".join(map(_part, name.split("/")))


def name_of(key: str) -> str:
    """The name `encoded` wrote as `key` (a `str` with surrogates for non-UTF-8 bytes)."""
    return unquote_to_bytes(key).decode("utf-8", "surrogateescape")


def object_key(sink: str, prefix: str, groups: Mapping[str, str], name: str) -> str:
    """The key of `name` under `prefix`, whose `{group}`s are filled in from `groups` (each
    value encoded as one part: a `/` in it is `%2F`). `sink` names the sink in errors."""
    fields = [f for _, f, _, _ in string.Formatter().parse(prefix) if f is not None]
    values: dict[str, str] = {}
    for field in fields:
        value = groups.get(field)
        if value is None:
            raise SinkDataError(sink, f"prefix {prefix!r} names the group {field!r}, which "
                                "this file's route did not capture", None)  # fmt: skip
        if value == "":
            raise SinkDataError(sink, f"prefix {prefix!r}: the group {field!r} is empty for "
                                "this file", None)  # fmt: skip
        values[field] = _part(str(value)).replace("/", "%2F")
    key = prefix.format_map(values) + encoded(name)
    size = len(key.encode())
    if size > MAX_KEY_BYTES:
        raise SinkDataError(sink, f"the object key of this name is {size} bytes, over "
                            f"S3's {MAX_KEY_BYTES}: {key[:80]!r}…", None)  # fmt: skip
    return key
