"""Which names the dashboard answers to: the defence against DNS rebinding.

A web page can make its own domain resolve to 127.0.0.1 and then talk to a dashboard on
the visitor's machine as if it were same-origin: the `Origin` check cannot tell, and
without a token nothing else stands in the way. What gives it away is the `Host` header,
which still names the page's domain. So every request's `Host` must be one of the allowed
names (`--allowed-hosts`, by default localhost, 127.0.0.1 and [::1]) or the address the
dashboard is bound to (`--host`); `*` allows any.

Starlette's `TrustedHostMiddleware` is not used: in 0.47, the oldest Starlette
requirements.txt allows, it cuts the header at its first `:` (an IPv6 literal never
matches), and it answers in plain text and logs nothing. Names here are compared in the
form `config.casts.host_name` gives the setting: lowercase, without a trailing dot, IPv6
in brackets in its shortest form, port ignored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from config.casts import host_name


def header_host(header: str) -> str | None:
    """The host part of a `Host` header, in `host_name`'s form; None if it is malformed."""
    if header.startswith("["):  # an IPv6 literal; with no "]" the name is "" and refused
        end = header.find("]") + 1
        name, port = header[:end], header[end:]
    else:
        name, colon, port = header.partition(":")
        port = colon + port
    if port and not (port[0] == ":" and port[1:].isascii() and (port[1:].isdigit() or port == ":")):
        return None
    try:
        return host_name(name)
    except ValueError:
        return None


class AllowedHosts:
    def __init__(self, names: Iterable[str], bind: str) -> None:
        self.names = set(names)
        self.any = "*" in self.names
        with contextlib.suppress(ValueError):  # "" (every address) names no host
            self.names.add(host_name(bind))

    def allows(self, header: str | None) -> bool:
        # HTTP/1.1 requires Host (h11 refuses a request without it), and a browser always
        # sends it: only an HTTP/1.0 client can leave it out, and that is no web page.
        if self.any or header is None:
            return True
        return header_host(header) in self.names
