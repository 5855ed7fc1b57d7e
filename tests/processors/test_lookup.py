"""`http_lookup` against a real local HTTP API (tests/processors/lookup_api.py): merging,
order under concurrency, retries on 429/5xx/timeouts/dropped connections, the bearer
token, routing, failures, the per-file cache and the shared rate limit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from config import ConfigError
from processors import ProcessorError
from processors._lookup_client import retry_after
from processors._lookup_rate import state_path
from processors.loader import load
from tests.processors.conftest import Run
from tests.processors.lookup_api import Api, serve
from tests.processors.pipeline_helpers import chain, node


@pytest.fixture
def api() -> Iterator[Api]:
    with serve(Api()) as running:
        yield running


def lookup(url: str, tag: str = "look", **options: Any) -> dict[str, Any]:
    options.setdefault("backoff_s", 0.05)
    return node(tag, "http_lookup", url=url, **options)


def config(lookup_node: dict[str, Any], outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    """JSON lines, parsed into records, then looked up."""
    parse = node("in", "json_validate", to=lookup_node["tag"])
    return chain(parse, lookup_node, outputs={name: {} for name in outputs})


def records(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def ids(n: int) -> str:
    return "".join(json.dumps({"id": str(i)}) + "\n" for i in range(n))


def stats(summary: dict[str, Any]) -> dict[str, int]:
    return summary["aggregates"]["http_lookup@look"]


def test_answers_merge_under_a_key_and_keep_input_order_under_concurrency(run: Run) -> None:
    with serve(Api(delay_s=0.02)) as api:
        summary, out = run(config(lookup(api.url + "/item/{id}", concurrency=8)), ids(40))
    got = records(out["out"])
    assert [r["id"] for r in got] == [str(i) for i in range(40)]
    assert got[3] == {"id": "3", "response": {"id": "3", "name": "item-3"}}
    assert api.max_in_flight > 1, "lookups ran concurrently"
    assert stats(summary) == {
        "lookups": 40, "cache_hits": 0, "failed": 0, "requests": 40, "retries": 0, "tokens": 0
    }  # fmt: skip


def test_merge_at_top_level_or_not_at_all(run: Run, api: Api) -> None:
    _, out = run(config(lookup(api.url + "/item/{id}", merge=".")), '{"id": "7", "n": 1}\n')
    assert records(out["out"]) == [{"id": "7", "n": 1, "name": "item-7"}]
    _, out = run(config(lookup(api.url + "/item/{id}", merge=None)), '{"id": "7"}\n')
    assert records(out["out"]) == [{"id": "7"}]


def test_field_values_are_url_encoded(run: Run, api: Api) -> None:
    _, out = run(config(lookup(api.url + "/item/{id}?q={q}")), '{"id": "a b/c?", "q": "x&y=1"}\n')
    assert "lookup_error" not in records(out["out"])[0]
    assert api.calls["/item/a%20b%2Fc%3F?q=x%26y%3D1"] == 1


def test_a_text_line_is_the_field_line(run: Run, api: Api) -> None:
    _, out = run(chain(lookup(api.url + "/item/{line}", tag="in")), "41\n42\n")
    assert records(out["out"]) == [
        {"line": "41", "response": {"id": "41", "name": "item-41"}},
        {"line": "42", "response": {"id": "42", "name": "item-42"}},
    ]


def test_csv_rows_are_looked_up_by_header_names(run: Run, api: Api) -> None:
    cfg = chain(lookup(api.url + "/item/{sku}", tag="in", merge="."))
    cfg["routes"] = [{"start": "in", "reader": {"type": "csv", "header": True}}]
    summary, out = run(cfg, "sku,qty\nA1,3\nB2,5\n", rel_path="ids.csv")
    assert records(out["out"]) == [
        {"sku": "A1", "qty": "3", "id": "A1", "name": "item-A1"},
        {"sku": "B2", "qty": "5", "id": "B2", "name": "item-B2"},
    ]
    assert summary["lines_in"] == 2


def test_post_body_template_keeps_a_whole_field_s_type(run: Run, api: Api) -> None:
    body = {"id": "{id}", "label": "id-{id}", "fixed": [1, True]}
    _, out = run(config(lookup(api.url + "/echo", method="POST", body=body)), '{"id": 5}\n')
    assert records(out["out"])[0]["response"] == {
        "got": {"id": 5, "label": "id-5", "fixed": [1, True]}
    }


def test_429_waits_for_retry_after_then_succeeds(run: Run, api: Api) -> None:
    started = time.monotonic()
    with capture_logs() as logs:
        summary, out = run(config(lookup(api.url + "/flaky429/{id}")), ids(1))
    assert time.monotonic() - started >= 0.9, "waited the 1 s Retry-After asked for"
    assert records(out["out"])[0]["response"]["name"] == "item-0"
    assert stats(summary)["retries"] == 1 and api.calls["/flaky429/0"] == 2
    retry = next(e for e in logs if e["event"] == "lookup_retry")
    assert retry["problem"] == "HTTP 429" and retry["delay_s"] == 1.0


@pytest.mark.parametrize(
    ("path", "options"),
    [
        ("/flaky500/{id}", {}),
        ("/slow/{id}", {"timeout_s": 0.3}),
        ("/drop/{id}", {}),
    ],
    ids=["500", "timeout", "dropped-connection"],
)
def test_transient_failures_are_retried(
    run: Run, api: Api, path: str, options: dict[str, Any]
) -> None:
    summary, out = run(config(lookup(api.url + path, **options)), ids(3))
    assert [r["response"]["name"] for r in records(out["out"])] == ["item-0", "item-1", "item-2"]
    assert stats(summary)["retries"] == 3 and stats(summary)["failed"] == 0


def test_a_lookup_failing_after_its_retries_goes_to_failed_tag_with_the_reason(
    run: Run, api: Api
) -> None:
    cfg = config(
        lookup(api.url + "/down/{id}", retries=2, failed_tag="nolookup"), outputs=("nolookup",)
    )
    summary, out = run(cfg, ids(2))
    assert "out" not in out
    assert records(out["nolookup"]) == [
        {"id": "0", "lookup_error": "HTTP 503 after 3 attempt(s)"},
        {"id": "1", "lookup_error": "HTTP 503 after 3 attempt(s)"},
    ]
    assert api.calls["/down/0"] == 3
    assert stats(summary)["failed"] == 2 and summary["lines_out"] == 2


def test_other_failures_name_their_reason(run: Run, api: Api) -> None:
    cfg = config(lookup(api.url + "/{kind}/{id}", failed_tag="bad"), outputs=("bad",))
    data = '{"kind": "item", "id": "x1"}\n{"kind": "text", "id": "1"}\n{"kind": "item"}\n'
    _, out = run(cfg, data)
    reasons = [r["lookup_error"] for r in records(out["bad"])]
    assert reasons[0] == "HTTP 404" and reasons[2] == "record has no field 'id'"
    assert reasons[1].startswith("response is not JSON: unexpected character")


def test_fail_file_fails_the_whole_file_at_the_first_failed_lookup(run: Run, api: Api) -> None:
    cfg = config(lookup(api.url + "/item/{id}", fail_file=True, retries=0))
    with pytest.raises(ProcessorError) as info:
        run(cfg, '{"id": "1"}\n{"id": "x2"}\n')
    assert info.value.error_type == "LookupFailed"
    assert info.value.line == 2 and info.value.processor == "http_lookup@look"
    assert info.value.message == "lookup failed: HTTP 404"


def test_route_rules_send_answers_to_tags_by_status_or_field(run: Run, api: Api) -> None:
    rules = [{"status": 404, "tag": "missing"}]
    cfg = config(lookup(api.url + "/item/{id}", route=rules), outputs=("missing",))
    _, out = run(cfg, '{"id": "1"}\n{"id": "x2"}\n')
    assert records(out["missing"]) == [{"id": "x2", "response": {"error": "not found"}}]
    assert [r["id"] for r in records(out["out"])] == ["1"]
    rules = [{"field": "status", "equals": "inactive", "tag": "inactive"}]
    cfg = config(lookup(api.url + "/status/{id}", route=rules, merge="."), outputs=("inactive",))
    _, out = run(cfg, ids(4))
    assert [r["id"] for r in records(out["inactive"])] == ["1", "3"]
    assert [r["id"] for r in records(out["out"])] == ["0", "2"]


def test_the_same_request_is_made_once_per_file(run: Run, api: Api) -> None:
    data = "".join(json.dumps({"id": str(i % 3)}) + "\n" for i in range(30))
    summary, out = run(config(lookup(api.url + "/item/{id}")), data)
    assert len(records(out["out"])) == 30
    assert api.total("/item/") == 3
    assert stats(summary)["cache_hits"] == 27 and stats(summary)["requests"] == 3
    run(config(lookup(api.url + "/item/{id}")), data)
    assert api.total("/item/") == 6, "the cache is the file's, not the process's"


def test_bearer_token_is_fetched_and_refreshed_on_401(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOKUP_SECRET", "s3cret")
    with serve(Api(token_uses=3)) as api:
        opts = {"token_url": api.url + "/token", "token_body": {"secret": "${LOOKUP_SECRET}"}}
        summary, out = run(config(lookup(api.url + "/secure/{id}", concurrency=1, **opts)), ids(7))
    assert [r["response"]["id"] for r in records(out["out"])] == [str(i) for i in range(7)]
    assert stats(summary)["tokens"] == 3 and api.tokens == 3
    assert stats(summary)["retries"] == 0, "a refresh is not a retry"


def test_secrets_come_from_the_environment_and_a_missing_one_fails_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOOKUP_MISSING", raising=False)
    headers = {"X-Key": "${LOOKUP_MISSING}"}
    with pytest.raises(ConfigError) as info:
        load(config(lookup("http://127.0.0.1:9/{id}", headers=headers)))
    assert info.value.key == "$.nodes[1].options.headers.X-Key"
    assert info.value.message == "environment variable LOOKUP_MISSING is not set"


def test_the_url_takes_its_address_from_the_environment_or_its_default(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "${LOOKUP_BASE:-http://127.0.0.1:9}/ok/{id}"
    with serve(Api()) as api:
        monkeypatch.setenv("LOOKUP_BASE", api.url)
        _, out = run(config(lookup(url, concurrency=1)), ids(3))
    assert [r["response"]["id"] for r in records(out["out"])] == ["0", "1", "2"]
    monkeypatch.delenv("LOOKUP_BASE")  # unset: the default after `:-`, as in the shell
    with pytest.raises(ConfigError) as info:
        load(config(lookup("${LOOKUP_BASE:-ftp://127.0.0.1:9}/{id}")))
    assert info.value.message == "expected an http:// or https:// URL, got 'ftp://127.0.0.1:9/{id}'"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"url": "ftp://h/{id}"}, "url"),
        ({"url": "http://h/{id!r}"}, "url"),
        ({"method": "PUT"}, "method"),
        ({"body": {"a": 1}}, "body"),
        ({"concurrency": 0}, "concurrency"),
        ({"rate_per_s": 0}, "rate_per_s"),
        ({"route": [{"tag": "t"}]}, "route[0]"),
        ({"route": [{"field": "f", "tag": "t"}]}, "route[0].equals"),
    ],
)
def test_bad_options_fail_the_load_where_they_are(options: dict[str, Any], key: str) -> None:
    opts = {"url": "http://127.0.0.1:9/{id}", **options}
    with pytest.raises(ConfigError) as info:
        load(chain(node("in", "http_lookup", **opts)))
    assert info.value.key == f"$.nodes[0].options.{key}"


def test_rate_limit_holds_within_a_file(run: Run, api: Api) -> None:
    started = time.monotonic()
    run(config(lookup(api.url + "/item/{id}", rate_per_s=10, concurrency=8)), ids(20))
    assert time.monotonic() - started >= 1.7, "20 requests at 10/s take at least 1.9 s"
    assert api.total("/item/") == 20


RATE_CHILD = """
import sys, time
from processors._lookup_rate import SharedRate, state_path
rate = SharedRate(state_path(sys.argv[1]), 20)
print("ready", flush=True)
sys.stdin.readline()  # both start together, however slowly each started
for _ in range(10):
    rate.wait()
    print(time.monotonic(), flush=True)
"""


@pytest.mark.serial
def test_rate_limit_is_shared_by_processes(tmp_path: Any) -> None:
    key = f"test-{tmp_path.name}-{time.monotonic_ns()}"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RATE_CHILD, key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
    runs = []
    for child in children:
        with child:  # closes its pipes, waits for it
            runs.append([float(t) for t in child.stdout.read().split()])
    state_path(key).unlink()
    assert all(child.returncode == 0 for child in children)
    assert [len(r) for r in runs] == [10, 10]
    first, second = runs
    assert first[0] < second[-1] and second[0] < first[-1], "the two ran at the same time"
    # alone, each process's 10 slots span 0.45 s; sharing one schedule, the 20 span 0.95 s
    assert max(first[-1], second[-1]) - min(first[0], second[0]) >= 0.85


def test_retry_after_reads_seconds_or_an_http_date() -> None:
    assert retry_after("3") == 3.0
    soon = formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after(soon) or 0) <= 30
    assert retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_url_that_cannot_be_made_fails_without_retrying(run: Run) -> None:
    cfg = config(lookup("http://127.0.0.1:port/{id}", failed_tag="bad"), outputs=("bad",))
    summary, out = run(cfg, ids(1))
    assert records(out["bad"])[0]["lookup_error"].startswith("InvalidURL")
    assert stats(summary)["retries"] == 0
