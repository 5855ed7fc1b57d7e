"""The file page shows what parse_log and templates put in a log's summary: the format
found, its records, and the message templates per level."""

from __future__ import annotations

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard

LOG = (
    "2026-11-22 10:00:00,101 INFO  [main] shop.Orders: order 1001 paid by user 17\n"
    "2026-11-22 10:00:00,230 INFO  [main] shop.Orders: order 1002 paid by user 4\n"
    "2026-11-22 10:00:01,410 ERROR [pool-1] shop.Db: query timed out after 3000 ms\n"
    "java.sql.SQLTimeoutException: timeout\n"
    "\tat org.h2.Driver.run(Driver.java:12)\n"
    "2026-11-22 10:00:02,512 ERROR [pool-2] shop.Db: query timed out after 3100 ms\n"
    "2026-11-22 10:00:03,090 ERROR [main] shop.Pay: payment 88 declined: <card> expired\n"
)


def test_the_file_page_shows_the_format_and_the_templates(
    dashboard: Dashboard, queue: Queue
) -> None:
    queue.drop("shop.log", LOG)
    wait_until(lambda: dashboard.find("processed", "shop.log"), 20, "shop.log processed")
    row = dashboard.find("processed", "shop.log")
    assert row is not None
    html = dashboard.get(f"/files/{row['uid']}").text
    assert '<table class="kv" id="log-format">' in html
    assert "<th>format</th><td>log4j" in html and "<th>lines joined</th><td>2</td>" in html
    table = html[html.index('<table id="templates">') :]
    table = table[: table.index("</table>")]
    rows = [r.split("</td>")[0:3] for r in table.split("<tr><td>")[1:]]
    cells = [[c.replace("<td>", "").replace("<code>", "").replace("</code>", "") for c in r]
             for r in rows]  # fmt: skip
    assert cells == [
        ["ERROR", "2", "query timed out after &lt;*&gt; ms"],
        ["", "1", "payment &lt;*&gt; declined: &lt;card&gt; expired"],
        ["INFO", "2", "order &lt;*&gt; paid by user &lt;*&gt;"],
    ]
