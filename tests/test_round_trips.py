"""What one survey answer costs PostgreSQL in round trips: every one is a wait on the network and two
context switches, and at a hundred answers a second they were most of a turn's CPU. Counted on the
wire, between the bot and the server, by a proxy that sees each time the bot speaks after the server
answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

from bench.surveys import HAMLET, HEAD_NAME, seed
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram
from tests.harness import Harness
from tests.survey_answers import ANSWERS

USER = 4_000_001
ANSWERED = 5  # survey questions answered while counting
BUDGET = 11  # round trips per answer, everything the process did meanwhile included (10.4 measured)


class Wire:
    """A TCP proxy to PostgreSQL counting the bot's turns to speak on each connection."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.turns = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _connected(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(*self._target)
        spoke_last = ["server"]  # who wrote last on this connection

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, side: str) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await source.read(65536):
                    if side == "bot" and spoke_last[0] == "server":
                        self.turns += 1
                    spoke_last[0] = side
                    sink.write(data)
                    await sink.drain()
            sink.close()

        for task in (pipe(client_in, server_out, "bot"), pipe(server_in, client_out, "server")):
            self._pipes.add(asyncio.ensure_future(task))


@asynccontextmanager
async def through_wire(postgres_url: str) -> AsyncIterator[tuple[Wire, str]]:
    url = make_url(postgres_url)
    wire = Wire(url.host or "127.0.0.1", url.port or 5432)
    port = await wire.start()
    try:
        yield wire, url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        await wire.stop()


async def test_a_survey_answer_costs_at_most_11_round_trips_to_postgresql(
    fake: FakeTelegram, postgres_url: str
) -> None:
    campaign = await seed(postgres_url, 1)
    fake.add_private(USER)
    async with through_wire(postgres_url) as (wire, url):
        bot = Harness(fake, settings_for(url, fake.url))
        await bot.start()
        try:
            for text in (f"/start ks{campaign}", "1", "1", HEAD_NAME, HAMLET):
                await bot.send(USER, text)
            before = wire.turns
            for text in ANSWERS[:ANSWERED]:  # as a person answers: the next once the question came
                asked = len(fake.messages_to(USER))
                fake.message(USER, USER, text)
                await fake.wait_for(lambda n=asked: len(fake.messages_to(USER)) > n)
                assert (fake.messages_to(USER)[-1].text or "").startswith("Câu ")  # the answer was taken
            per_answer = (wire.turns - before) / ANSWERED
        finally:
            await bot.stop()
    assert per_answer <= BUDGET, per_answer
