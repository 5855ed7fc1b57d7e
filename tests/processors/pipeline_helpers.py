"""Small config builders shared by the processor tests."""

from __future__ import annotations

from typing import Any


def chain(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A config whose files all start at the first node's tag."""
    return {"routes": [{"start": nodes[0]["tag"]}], "nodes": list(nodes), **extra}


def node(tag: str, use: str, to: str | list[str] = "end", **options: Any) -> dict[str, Any]:
    return {"name": f"{use}@{tag}", "tag": tag, "use": use, "to": to, "options": options}
