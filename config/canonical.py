"""A pipeline config's identity: the sha256 of its canonical form.

The canonical form is the parsed JSON written back with its keys sorted and no whitespace
(`json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, as UTF-8),
so re-indenting the file, reordering its keys or adding a trailing newline keeps its
digest, and any change of a value gives another. `${VAR}` placeholders are digested as
written: a secret that changes in the environment does not change the digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(raw: Any) -> bytes:
    """`raw` (parsed JSON) in its canonical form."""
    # surrogatepass: a name that is not UTF-8 (a source folder, say) is digested as it came
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def digest(raw: Any) -> str:
    """The sha256 (hex) of `raw`'s canonical form."""
    return hashlib.sha256(canonical(raw)).hexdigest()
