"""From a setting's raw text (a flag's value, a `FOLDERD_*` variable) to its typed value.

Each cast takes the text and returns the value, or raises ValueError whose message is the
expected form (`expected a whole number >= 1`); `config.loading` adds which flag or
variable it came from. `is_loopback` answers the one question asked of a `--host` value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

_N = TypeVar("_N", int, float)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def boolean(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected a boolean (1/0, true/false, yes/no, on/off)")


def _number(cast: Callable[[str], _N], raw: str, ok: Callable[[_N], bool], expected: str) -> _N:
    """`cast(raw)` if it parses and passes `ok`, else ValueError(expected): a user who wrote
    `x` needs the same answer as one who wrote an out-of-range number."""
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(expected) from None
    if not ok(value):  # NaN fails every comparison, so it is refused here too
        raise ValueError(expected)
    return value


def positive_int(raw: str) -> int:
    return _number(int, raw, lambda v: v >= 1, "expected a whole number >= 1")


def non_negative_int(raw: str) -> int:
    return _number(int, raw, lambda v: v >= 0, "expected a whole number >= 0")


def port(raw: str) -> int:
    return _number(int, raw, lambda v: 0 <= v <= 65535, "expected a port number from 0 to 65535")


def seconds(raw: str) -> float:
    """A number of seconds >= 0 (0: at once, or never, as the setting says)."""
    return _number(float, raw, lambda v: v >= 0, "expected a number of seconds >= 0")


def positive_float(raw: str) -> float:
    return _number(float, raw, lambda v: v > 0, "expected a number > 0")


@dataclass(frozen=True)
class Choice:
    """The cast of a closed set of words, made from its `Literal` type, so the type mypy
    checks and the words a user may write are one declaration."""

    choices: tuple[str, ...]

    @classmethod
    def of(cls, literal: Any) -> Choice:
        """`Choice.of(Literal["fail", "accept"])`."""
        return cls(get_args(literal))

    def __call__(self, raw: str) -> Any:  # Any: one of `choices`, the field's Literal type
        if raw not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}")
        return raw


def instance_name(raw: str) -> str:
    """A name usable as one folder name on every filesystem a watch_dir may live on."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", raw):
        raise ValueError(
            "expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return raw


def patterns(raw: str) -> tuple[str, ...]:
    """Comma-separated items, each stripped; empty ones dropped."""
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def folders(raw: str) -> tuple[Path, ...]:
    paths = tuple(Path(p) for p in patterns(raw))
    if any(not p.is_absolute() for p in paths):
        raise ValueError("expected absolute folder paths, comma-separated")
    return paths


def host_name(raw: str) -> str:
    """A host name as the dashboard compares them: lowercase, without a trailing dot, an IPv6
    address in brackets in its shortest form (`[::1]`); ValueError for anything with a
    scheme, a path or a port, which a name in a `Host` header is compared without."""
    name = raw.strip().lower().removesuffix(".")
    try:
        return f"[{ipaddress.IPv6Address(name.removeprefix('[').removesuffix(']')).compressed}]"
    except ValueError:
        pass
    if not name or any(c in name for c in ":/[]@ \t"):
        raise ValueError("expected host names without scheme or port (* for any)")
    return name


def hosts(raw: str) -> tuple[str, ...]:
    names = patterns(raw)
    if not names:
        raise ValueError("expected at least one host name (* for any)")
    return tuple(n if n == "*" else host_name(n) for n in names)


def networks(raw: str) -> tuple[str, ...]:
    """IP addresses or networks (CIDR), each in its normal form (`10.0.0.0/8`, `::1/128`)."""
    found = []
    for item in patterns(raw):
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(
                f"expected IP addresses or networks like 127.0.0.1 or 10.0.0.0/8, not {item!r}"
            ) from None
    return tuple(found)


def is_loopback(host: str) -> bool:
    """Whether a `--host` binds only this machine's loopback: a loopback address, or the
    name localhost. Any other name counts as reachable from elsewhere (it is not resolved
    here: what it resolves to may change)."""
    name = host.strip().lower().removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback
