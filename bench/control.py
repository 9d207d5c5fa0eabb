"""The control side of a fake server process: a small HTTP API on an ephemeral loopback port, announced
on stdout as "READY <fake server URL> <control URL>" for the benchmark that started the process."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def serve_control(fake_url: str, routes: list[web.RouteDef]) -> None:
    """Serve `routes` until the process is stopped."""
    control = web.Application(client_max_size=64 * 1024 * 1024)  # ledgers of 10,000 residents are large
    control.add_routes(routes)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"READY {fake_url} http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()
