"""Who may reach the dashboard and who may change things. Every request must name an
allowed host (`dashboard.hosts`: the defence against DNS rebinding), or it is answered 400.
With `FOLDERD_TOKEN` set, every request that is not a read
(upload, requeue, cancel) must carry it — `Authorization: Bearer <token>` from scripts, or
the session cookie the login form sets for a browser (HttpOnly, SameSite=Strict, holding an
HMAC of the token rather than the token). Without a token configured the dashboard trusts
whoever can reach it (it binds 127.0.0.1 by default), but still refuses cross-site writes:
a request whose `Origin` is another site is answered 403, so a web page cannot post to a
dashboard on the same machine.

`SecurityMiddleware` is pure ASGI: it guards writes before the body is read (an
unauthorised upload is never stored) and adds the security headers to every response.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlsplit

import structlog
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.hosts import AllowedHosts

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


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"folderd dashboard session", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), token.encode())


def authorized(headers: Headers, cookies: dict[str, str], token: str | None) -> bool:
    if not token:
        return True
    auth = headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() == "bearer" and token_matches(given, token):
        return True
    cookie = cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_value(token).encode())


def same_origin(headers: Headers) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser, or a same-origin GET/HEAD: nothing to check
    return urlsplit(origin).netloc == headers.get("host")


def _cookies(headers: Headers) -> dict[str, str]:
    from starlette.requests import cookie_parser

    return cookie_parser(headers.get("cookie", ""))


def _denied(scope: Scope, headers: Headers, status: int, message: str) -> Response:
    wants_html = "text/html" in headers.get("accept", "") and not scope["path"].startswith("/api/")
    if wants_html and status == 401:
        referer = urlsplit(headers.get("referer", "")).path or "/"
        return RedirectResponse(f"/login?next={quote(referer)}", status_code=303)
    extra = {"www-authenticate": 'Bearer realm="folderd"'} if status == 401 else {}
    return JSONResponse({"error": message}, status_code=status, headers=extra)


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, token: str | None, hosts: AllowedHosts) -> None:
        self.app = app
        self.token = token or None
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self.hosts.allows(headers.get("host")):
            log.info("request_refused", path=scope["path"], status=400, host=headers["host"])
            message = "this Host is not one the dashboard answers to (see --allowed-hosts)"
            await _denied(scope, headers, 400, message)(scope, receive, self._send(send))
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            # No name, uid, state or cursor holds a NUL, and os and sqlite3 calls raise on
            # one: refused here, it is a 400 for every route instead of a 500 for some.
            message = "a NUL byte in the URL"
            await _denied(scope, headers, 400, message)(scope, receive, self._send(send))
            return
        if scope["method"] not in SAFE_METHODS:
            problem = None
            if not same_origin(headers):
                problem = (403, "cross-site request refused")
            elif scope["path"] not in OPEN_WRITES and not authorized(
                headers, _cookies(headers), self.token
            ):
                problem = (401, "this action needs the dashboard token (FOLDERD_TOKEN)")
            if problem is not None:
                log.info("request_refused", path=scope["path"], status=problem[0])
                await _denied(scope, headers, *problem)(scope, receive, self._send(send))
                return

        await self.app(scope, receive, self._send(send))

    @staticmethod
    def _send(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        return wrapped


def safe_next(raw: str | None) -> str:
    """Only a local path may be redirected to after login (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def login_response(token: str, next_url: str, secure: bool) -> Response:
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(
        COOKIE, session_value(token), httponly=True, samesite="strict", secure=secure, path="/"
    )
    return response


def logout_response() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def request_authorized(request: Request, token: str | None) -> bool:
    return authorized(request.headers, request.cookies, token)
