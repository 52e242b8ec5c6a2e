"""Log lines as an operator's log pipeline receives them (a child process: logging is global)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def run(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr.splitlines()


def test_library_records_are_json_lines_like_ours() -> None:
    lines = run(
        """
        import logging, structlog
        from acmegate.common.logging import bind_correlation_id, configure
        configure("info", json=True, service="signer")
        with bind_correlation_id("c0ffee"):
            structlog.get_logger("acmegate.x").info("ours", token="s3cret")
            logging.getLogger("aiormq.connection").error("Unexpected connection close")
            logging.getLogger("asyncpg.pool").info("too chatty to show")
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except OSError:
                logging.getLogger("aio_pika.robust_connection").exception("reconnect failed")
        """
    )
    events = [json.loads(line) for line in lines]  # every line parses
    ours, library, failure = events
    assert ours["event"] == "ours" and ours["token"] == "[redacted]"
    assert library == {
        "event": "Unexpected connection close",
        "service": "signer",
        "correlation_id": "c0ffee",
        "level": "error",
        "timestamp": library["timestamp"],
        "logger": "aiormq.connection",
    }
    assert failure["logger"] == "aio_pika.robust_connection"
    assert "ConnectionRefusedError" in failure["exception"]
    assert "Traceback" in failure["exception"]  # the traceback inside the JSON, one line


def test_access_log_can_be_turned_off() -> None:
    lines = run(
        """
        import asyncio
        from aiohttp import web
        from aiohttp.test_utils import TestClient, TestServer
        from acmegate.common.http_observation import observe_requests
        from acmegate.common.logging import configure

        async def hello(request):
            return web.Response(text="hi")

        async def main():
            app = web.Application(middlewares=[observe_requests("acme", service="frontend")])
            app.router.add_get("/hello/{name}", hello)
            async with TestClient(TestServer(app)) as client:
                await client.get("/hello/someone?token=abc", headers={"Authorization": "Bearer t"})
                configure("info", json=True, service="frontend", access_log=False)
                await client.get("/hello/else")

        configure("info", json=True, service="frontend")
        asyncio.run(main())
        """
    )
    (line,) = lines
    event = json.loads(line)
    assert event["event"] == "request" and event["route"] == "/hello/{name}"
    assert event["path"] == "/hello/someone" and event["status"] == 200
    assert "abc" not in line and "Bearer" not in line
