"""The browser's side of the token: session cookies that expire and can be revoked, and the
back-off that makes guessing the token slow.

A session cookie is `<issued>.<mac>`: the Unix time it was issued and an HMAC over it,
keyed by the token and by a random *generation* key this process holds. It is valid for
`max_age_s` after it was issued, by the wall clock (so a suspended machine does not
stretch it), checked here: the cookie's Max-Age only asks the browser to forget it. It is
also valid only until the generation changes: `revoke()` (logout) replaces it, and so does
a restart, since the key lives only in memory. There is one token, so one identity:
revoking ends every browser's session at once.

`LoginThrottle` counts wrong tokens per client address. After the n-th wrong one in a
row, that client's next attempt is refused for `base_s * 2**(n-1)` seconds (at most
`max_s`) without the token being looked at; a right token, or a quiet `max_s` after the
wait, forgets the client. It remembers at most `max_clients` addresses (the least recently
seen is dropped first), and IPv6 clients are counted by /64, the block one host gets.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

SESSION_MAX_AGE_S = 12 * 3600
_CLOCK_SLACK_S = 60  # a clock stepped back a little (NTP) does not log everyone out


class Sessions:
    def __init__(
        self,
        token: str,
        max_age_s: float = SESSION_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,  # sessions end with the process anyway
    ) -> None:
        self._token = token.encode()
        self.max_age_s = max_age_s
        self._clock = clock
        self._generation = secrets.token_bytes(16)

    def _mac(self, issued: int) -> str:
        message = self._generation + str(issued).encode()
        return hmac.new(self._token, message, hashlib.sha256).hexdigest()

    def issue(self) -> str:
        issued = int(self._clock())
        return f"{issued}.{self._mac(issued)}"

    def valid(self, cookie: str) -> bool:
        issued, _, mac = cookie.partition(".")
        if not (issued.isascii() and issued.isdigit()) or len(issued) > 20:
            return False
        age = self._clock() - int(issued)
        if not -_CLOCK_SLACK_S <= age <= self.max_age_s:
            return False
        return hmac.compare_digest(mac.encode(), self._mac(int(issued)).encode())

    def revoke(self) -> None:
        """End every session issued so far."""
        self._generation = secrets.token_bytes(16)


class Throttled(Exception):
    """The client must wait `retry_after` more seconds before its token is looked at."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many wrong tokens: try again in {math.ceil(retry_after)} s")
        self.retry_after = retry_after


def client_key(host: str | None) -> str:
    """The address failures are counted under: IPv4 as it is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    _MAX_DOUBLINGS = 30  # 2**30 s is far past any max_s; a bigger exponent only risks overflow

    def __init__(
        self,
        base_s: float = 1.0,
        max_s: float = 300.0,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()  # failures, until

    def _failures(self, client: str, now: float) -> tuple[int, float]:
        failures, until = self._clients.get(client, (0, 0.0))
        if failures and now >= until + self.max_s:  # quiet long enough: a fresh start
            del self._clients[client]
            return 0, 0.0
        return failures, until

    def check(self, client: str) -> None:
        """Raise Throttled while `client` must still wait."""
        now = self._clock()
        _, until = self._failures(client, now)
        if now < until:
            raise Throttled(until - now)

    def failed(self, client: str) -> tuple[int, float]:
        """Count a wrong token; return the client's failures in a row and its wait."""
        now = self._clock()
        failures = self._failures(client, now)[0] + 1
        wait = min(self.max_s, self.base_s * 2 ** min(failures - 1, self._MAX_DOUBLINGS))
        self._clients[client] = (failures, now + wait)
        self._clients.move_to_end(client)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return failures, wait

    def forget(self, client: str) -> None:
        self._clients.pop(client, None)

    def __len__(self) -> int:
        return len(self._clients)
