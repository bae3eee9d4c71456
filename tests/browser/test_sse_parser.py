"""The page's Server-Sent Events parser (sse.js), run in the browser on chunks split at
awkward places: mid-line, mid-CRLF, comments and multi-line data."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import MakeConsole, StartServer

PARSE = """
const done = arguments[arguments.length - 1];
import("/console/sse.js").then(({ parser }) => {
  const parse = parser();
  const out = [];
  for (const chunk of arguments[0]) out.push(...parse(chunk));
  done(out);
});
"""


def test_events_split_across_chunks_come_out_whole(
    start_server: StartServer, make_console: MakeConsole
) -> None:
    console = make_console(start_server())
    console.open("/")
    chunks = [
        ": keepalive\n\nev",
        'ent: job\nid: 7\ndata: {"a":',
        " 1}\r",
        "\n\r\ndata: one\ndata: two\n",
        "\n",
        "data: x\r",  # a CRLF split in two is one line end, not two
        "\ndata: y\r\n\r\n",
    ]
    events: list[dict[str, Any]] = console.driver.execute_async_script(PARSE, chunks)
    assert events == [
        {"event": "job", "data": '{"a": 1}', "id": "7"},
        {"event": "message", "data": "one\ntwo", "id": "7"},
        {"event": "message", "data": "x\ny", "id": "7"},
    ]
    console.assert_no_console_errors()
