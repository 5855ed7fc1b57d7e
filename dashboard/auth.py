"""Who may reach the dashboard, and who may change things.

Every request must name an allowed host (`dashboard.hosts`: the defence against DNS
rebinding) or it is answered 400, and a NUL in its URL is a 400 too. With `FOLDERD_TOKEN`
set, every request that is not a read (upload, requeue, cancel, and the preview, which
runs plugin code) must carry it — `Authorization: Bearer <token>` from scripts, or the
session cookie the login form sets for a browser (HttpOnly, SameSite=Strict, expiring,
revocable: `dashboard.sessions`). Wrong tokens, on the form or in a Bearer header, are
throttled per client address: the TCP peer's, or the one a proxy named in
`--trusted-proxies` forwards (`dashboard.server`). Without a token configured the dashboard
trusts whoever can reach it (it binds 127.0.0.1, and refuses another address without
`--allow-no-token`: `config.settings`), but still refuses cross-site writes: a request
whose `Origin` is another site is answered 403, so a web page cannot post to a dashboard
on the same machine.

`SecurityMiddleware` is pure ASGI: it screens requests before the body is read (an
unauthorised upload is never stored) and adds the security headers to every response.
"""

from __future__ import annotations

import hmac
import math
from urllib.parse import quote, urlsplit

import structlog
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.digest import Digest
from dashboard.hosts import AllowedHosts
from dashboard.sessions import LoginThrottle, Sessions, Throttled, client_key

log = structlog.get_logger(__name__)

COOKIE = "folderd_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_WRITES = {"/login", "/logout"}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), token.encode())


def bearer(headers: Headers) -> str | None:
    scheme, _, given = headers.get("authorization", "").partition(" ")
    return given if scheme.lower() == "bearer" else None


def retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(math.ceil(seconds))}


class Access:
    """The token, the sessions issued for it and the throttle on guessing it; with no token
    configured, everyone is authorised."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None
        self.sessions = Sessions(self.token) if self.token else None
        self.throttle = LoginThrottle()

    def authorized(self, headers: Headers, cookies: dict[str, str]) -> bool:
        """Whether the request carries the token or a valid session (no side effects)."""
        if self.token is None:
            return True
        given = bearer(headers)
        if given is not None and token_matches(given, self.token):
            return True
        return self.session_valid(cookies)

    def session_valid(self, cookies: dict[str, str]) -> bool:
        return self.sessions is not None and self.sessions.valid(cookies.get(COOKIE, ""))

    def check_token(self, client: str | None, given: str) -> bool:
        """Whether `given` is the token, counting a wrong one against `client`; raises
        Throttled, without looking at `given`, while the client must wait."""
        if self.token is None:
            return True
        key = client_key(client)
        self.throttle.check(key)
        if token_matches(given, self.token):
            self.throttle.forget(key)
            return True
        failures, wait = self.throttle.failed(key)
        log.info("token_refused", client=key, failures=failures, wait_s=wait)
        return False

    def login_response(self, next_url: str, secure: bool) -> Response:
        if self.sessions is None:
            raise RuntimeError("no sessions without a token")
        response = RedirectResponse(safe_next(next_url), status_code=303)
        response.set_cookie(
            COOKIE,
            self.sessions.issue(),
            max_age=int(self.sessions.max_age_s),
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )
        log.info("session_opened", max_age_s=self.sessions.max_age_s)
        return response

    def logout_response(self, cookies: dict[str, str]) -> Response:
        """Forget the cookie; if it was a valid session, end every session (one token, one
        identity), so a copied cookie is worth nothing after logout either."""
        if self.sessions is not None and self.session_valid(cookies):
            self.sessions.revoke()
            log.info("sessions_revoked", reason="logout")
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response


def same_origin(headers: Headers) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser, or a same-origin GET/HEAD: nothing to check
    return urlsplit(origin).netloc == headers.get("host")


def safe_next(raw: str | None) -> str:
    """Only a local path may be redirected to after login (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


class _Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _denied(scope: Scope, headers: Headers, refusal: _Refusal) -> Response:
    wants_html = "text/html" in headers.get("accept", "") and not scope["path"].startswith("/api/")
    if wants_html and refusal.status == 401:
        referer = urlsplit(headers.get("referer", "")).path or "/"
        return RedirectResponse(f"/login?next={quote(referer)}", status_code=303)
    extra = {"www-authenticate": 'Bearer realm="folderd"'} if refusal.status == 401 else {}
    return JSONResponse(
        {"error": str(refusal)}, status_code=refusal.status, headers={**extra, **refusal.headers}
    )


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, access: Access, hosts: AllowedHosts, digest: Digest) -> None:
        self.app = app
        self.access = access
        self.hosts = hosts
        self.digest = digest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            self._screen(scope, headers)
        except _Refusal as refusal:
            self.digest.log(
                log,
                "info",
                "request_refused",
                key=refusal.status,
                path=scope["path"],
                status=refusal.status,
                host=headers.get("host"),
                reason=str(refusal),
            )
            await _denied(scope, headers, refusal)(scope, receive, self._send(send))
            return
        await self.app(scope, receive, self._send(send))

    def _screen(self, scope: Scope, headers: Headers) -> None:
        """Raise _Refusal for a request that must not reach the app."""
        if not self.hosts.allows(headers.get("host")):
            raise _Refusal(400, "this Host is not one the dashboard answers to (--allowed-hosts)")
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            # No name, uid, state or cursor holds a NUL, and os and sqlite3 calls raise on
            # one: refused here, it is a 400 for every route instead of a 500 for some.
            raise _Refusal(400, "a NUL byte in the URL")
        if scope["method"] in SAFE_METHODS:
            return
        if not same_origin(headers):
            raise _Refusal(403, "cross-site request refused")
        if scope["path"] in OPEN_WRITES or self.access.token is None:
            return
        given = bearer(headers)
        if given is None:
            if self.access.session_valid(cookie_parser(headers.get("cookie", ""))):
                return
        else:
            client = scope["client"][0] if scope.get("client") else None
            try:
                if self.access.check_token(client, given):
                    return
            except Throttled as exc:
                raise _Refusal(429, str(exc), retry_after(exc.retry_after)) from None
        raise _Refusal(401, "this action needs the dashboard token (FOLDERD_TOKEN)")

    @staticmethod
    def _send(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        return wrapped
