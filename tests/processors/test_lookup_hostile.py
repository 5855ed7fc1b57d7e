"""`http_lookup` against servers that misbehave: each attempt has a total deadline (a server
that drips its answer or its head, or never answers, is cut at `timeout_s`); a redirect to
another origin is not followed with the configured headers (lookups and the token request,
two real servers on 127.0.0.1 and 127.0.0.2); an answer larger than `max_response_bytes` is
refused without being read whole."""

from __future__ import annotations

import time
from typing import Any

import pytest

from config import ConfigError
from processors.loader import load
from tests.hostile_servers import Hostile
from tests.processors.conftest import Run
from tests.processors.lookup_api import Api, serve
from tests.processors.pipeline_helpers import chain, node
from tests.processors.test_lookup import config, ids, lookup, records, stats

SECRET = "SECRETKEY123"


@pytest.mark.parametrize("mode", ["drip", "drip_head", "silent"])
@pytest.mark.serial
def test_a_server_that_drips_or_never_answers_is_cut_at_the_deadline(run: Run, mode: str) -> None:
    with Hostile(mode, interval=0.2) as server:
        cfg = config(lookup(server.url + "/item/{id}", timeout_s=1, retries=1, backoff_s=0.1),
                     outputs=("bad",))  # fmt: skip
        cfg["nodes"][1]["options"]["failed_tag"] = "bad"
        started = time.monotonic()
        summary, out = run(cfg, ids(2))
        took = time.monotonic() - started
    reasons = {r["lookup_error"] for r in records(out["bad"])}
    assert reasons == {"timed out: no complete answer within 1 s (timeout_s) after 2 attempt(s)"}
    assert stats(summary)["requests"] == 4 and server.accepted >= 2
    # two attempts of 1 s each (the two records at once) and a 0.1 s back-off
    assert took < 6, f"{took:.1f} s: the deadline held"


def _redirecting(a: Api, code: int, to: str) -> str:
    return f"{a.url}/redirect/{code}?to={to}"


@pytest.fixture
def two_hosts() -> Any:
    with serve(Api()) as a, serve(Api(), host="127.0.0.2") as b:
        yield a, b


def test_a_redirect_to_another_host_is_not_followed_and_the_secret_stays(
    run: Run, two_hosts: tuple[Api, Api]
) -> None:
    a, b = two_hosts
    url = _redirecting(a, 302, b.url + "/stolen/{id}")
    cfg = config(lookup(url, headers={"X-Api-Key": SECRET}, merge=".", failed_tag="bad"),
                 outputs=("bad",))  # fmt: skip
    summary, out = run(cfg, ids(1))
    [record] = records(out["bad"])
    assert record["lookup_error"] == (
        f"redirected to another origin ({b.url}), not followed (redirect_hosts)"
    )
    assert "stolen" not in record
    assert b.total("/") == 0, "the other host was never asked"
    assert stats(summary)["retries"] == 0, "asking again would be redirected again"


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_within_the_origin_is_followed_with_the_headers(
    run: Run, two_hosts: tuple[Api, Api], code: int
) -> None:
    a, _ = two_hosts
    cfg = config(lookup(_redirecting(a, code, "/item/{id}"), headers={"X-Api-Key": SECRET}))
    _, out = run(cfg, ids(1))
    assert records(out["out"])[0]["response"] == {"id": "0", "name": "item-0"}
    assert a.headers_seen["/item/0"][0]["X-Api-Key"] == SECRET


def test_redirect_hosts_names_the_hosts_a_redirect_may_go_to(
    run: Run, two_hosts: tuple[Api, Api]
) -> None:
    a, b = two_hosts
    url = _redirecting(a, 307, b.url + "/stolen/{id}")
    allowed = b.url.removeprefix("http://")
    cfg = config(lookup(url, headers={"X-Api-Key": SECRET}, merge=".", redirect_hosts=[allowed]))
    _, out = run(cfg, ids(1))
    assert records(out["out"]) == [{"id": "0", "stolen": True}]
    assert b.headers_seen["/stolen/0"][0]["X-Api-Key"] == SECRET, "a host named is trusted"


def test_a_token_request_redirected_to_another_host_keeps_its_body(
    run: Run, two_hosts: tuple[Api, Api]
) -> None:
    a, b = two_hosts
    opts = {"token_url": _redirecting(a, 307, b.url + "/stolen"),
            "token_body": {"client_secret": SECRET}, "failed_tag": "bad"}  # fmt: skip
    _, out = run(config(lookup(a.url + "/secure/{id}", **opts), outputs=("bad",)), ids(2))
    reasons = {r["lookup_error"] for r in records(out["bad"])}
    assert reasons == {
        f"token request: redirected to another origin ({b.url}), not followed (redirect_hosts)"
    }
    assert b.total("/") == 0 and not b.bodies, "the secret body never left for the other host"


@pytest.mark.parametrize(
    ("kind", "size"),
    [("big", 1 << 30), ("chunked", 64 << 20), ("gzip", 64 << 20)],
    ids=["1GB-with-length", "64MB-chunked", "64MB-gzip-bomb"],
)
@pytest.mark.serial
def test_an_answer_larger_than_max_response_bytes_is_refused_unread(
    run: Run, api: Api, kind: str, size: int
) -> None:
    cfg = config(lookup(api.url + f"/{kind}/{{id}}", failed_tag="bad"), outputs=("bad",))
    started = time.monotonic()
    summary, out = run(cfg, f'{{"id": "{size}"}}\n')
    assert time.monotonic() - started < 10, "refused without reading it all"
    [record] = records(out["bad"])
    assert record["lookup_error"] == "response larger than 1048576 bytes (max_response_bytes)"
    assert stats(summary)["retries"] == 0
    cfg = config(lookup(api.url + "/big/{id}", max_response_bytes=2000))
    _, out = run(cfg, '{"id": "2000"}\n')
    assert len(records(out["out"])[0]["response"]) == 1998, "up to the limit is an answer"


@pytest.fixture
def api() -> Any:
    with serve(Api()) as running:
        yield running


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"redirect_hosts": "h"}, "redirect_hosts"),
        ({"redirect_hosts": ["http://h/"]}, "redirect_hosts[0]"),
    ],
)
def test_bad_limits_fail_the_load(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(chain(node("in", "http_lookup", url="http://127.0.0.1:9/{id}", **options)))
    assert info.value.key == f"$.nodes[0].options.{key}"


def test_requests_go_through_the_environment_s_proxy(
    run: Run, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = api.url.removeprefix("http://").split(":")
    with Hostile("proxy", upstream=(host, int(port))) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        _, out = run(config(lookup(api.url + "/item/{id}")), ids(1))
        assert proxy.accepted == 1, "the request went through the proxy"
        # a proxy is asked for the whole URL: the API answers for its path as it got it
        assert records(out["out"])[0]["response"]["name"].endswith(f"{port}/item/0")
        monkeypatch.setenv("NO_PROXY", host)
        _, out = run(config(lookup(api.url + "/item/{id}")), ids(1))
        assert proxy.accepted == 1, "NO_PROXY: straight to the host"
    assert records(out["out"])[0]["response"] == {"id": "0", "name": "item-0"}
