"""Serving a fake platform API on 127.0.0.1 (a free port), shared by the fake servers."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from aiohttp import web


async def serve_loopback(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], *, client_max_size: int = 1024**2
) -> tuple[web.AppRunner, str]:
    """Every path goes to `handler`; returns the runner (to clean up) and the root URL."""
    app = web.Application(client_max_size=client_max_size)
    app.router.add_route("*", "/{tail:.*}", handler)
    # short shutdown_timeout: held requests watch the fake's closing event, so nothing needs the default 60 s
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def wait_until(predicate: Callable[[], bool], timeout: float, state: Callable[[], str]) -> None:
    """Poll every 10 ms; on time-out, fail naming the condition and the fake's state."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            try:
                what = inspect.getsource(predicate).strip()
            except (OSError, TypeError):
                what = repr(predicate)
            raise AssertionError(f"condition not met within {timeout:g}s: {what}\n{state()}")
        await asyncio.sleep(0.01)
