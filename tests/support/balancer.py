"""A TCP round-robin balancer for tests with several frontend replicas (no sticky sessions)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def round_robin(port: int, upstreams: list[int]) -> AsyncIterator[Counter[int]]:
    """A TCP balancer on ``port``: each new connection goes to the next upstream; yields how
    many connections each upstream got."""
    served: Counter[int] = Counter()
    turn = itertools.cycle(upstreams)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream = next(turn)
        served[upstream] += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield served
    finally:
        server.close()
        await server.wait_closed()
