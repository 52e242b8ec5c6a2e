"""Several frontend replicas behind a TCP round-robin balancer (no sticky sessions), as tests
run them: each replica's configuration and the balancer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator

import yaml

from acmegate.common.config import Config, load_config
from tests.support.gateway import GatewayFiles, free_port


def replica_configs(files: GatewayFiles, count: int = 2) -> tuple[list[int], list[Config]]:
    """Configurations of ``count`` replicas of the gateway in ``files``, each on a port of its
    own while every one writes the balancer's URL (``files.port``); (ports, configs)."""
    ports = [free_port() for _ in range(count)]
    configs = []
    for index, port in enumerate(ports):
        raw = yaml.safe_load(files.config_path.read_text())
        raw["server"]["port"] = port  # external_url stays the balancer's
        path = files.config_path.with_name(f"replica{index}.yaml")
        path.write_text(yaml.safe_dump(raw))
        configs.append(load_config(path))
    return ports, configs


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
