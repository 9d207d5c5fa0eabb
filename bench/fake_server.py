"""The fake Telegram Bot API in a process of its own, so a benchmark measures the bot, not the fake.

Prints one line `READY <bot api root> <control root>`. The control server answers:
GET /stats -> sends per chat, 429s returned, probe latencies; POST /probe?user=U -> push "/trogiup"
from user U and time how long the bot takes to reply."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.control import serve_control
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--limit", type=float, default=0, help="global sends per second; 0 = none")
    parser.add_argument("--first-group", type=int, default=-1_000_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--platform", choices=["telegram", "zalo"], default="telegram")
    parser.add_argument("--followers", type=int, default=0, help="private chats, users first-user, first-user+1 …")
    parser.add_argument("--first-user", type=int, default=5_000_000)
    parser.add_argument("--private-limit", type=float, default=0, help="sends per second to one private chat; 0 = none")
    args = parser.parse_args()

    fake: FakeTelegram | FakeZalo
    if args.platform == "zalo":
        fake = FakeZalo(args.token, global_limit=args.limit or None)
        await fake.start()
    else:
        fake = FakeTelegram(args.token, global_limit=args.limit or None, private_limit_per_second=args.private_limit or None)
        await fake.start()
        for n in range(args.groups):
            fake.add_group(args.first_group - n)
        for n in range(args.followers):
            fake.add_private(args.first_user + n)
    probes: dict[str, float] = {}
    latencies: list[float] = []

    async def stats(_request: web.Request) -> web.Response:
        per_chat: dict[str, int] = {}
        for sent in fake.sent:
            per_chat[str(sent.chat_id)] = per_chat.get(str(sent.chat_id), 0) + 1
            started = probes.pop(str(sent.chat_id), None)
            if started is not None:
                latencies.append(sent.at - started)
        return web.json_response(
            {"per_chat": per_chat, "rejected_429": fake.rejected_429,
             "first_at": min((s.at for s in fake.sent), default=0), "last_at": max((s.at for s in fake.sent), default=0),
             "probe_latencies": latencies}
        )

    async def probe(request: web.Request) -> web.Response:
        user = request.query["user"]
        fake.sent[:] = [s for s in fake.sent if str(s.chat_id) != user]
        probes[user] = time.monotonic()
        if isinstance(fake, FakeZalo):
            fake.push("message.text.received", user, user, "/trogiup")
        else:
            fake.message(int(user), int(user), "/trogiup")
        return web.json_response({"ok": True})

    await serve_control(fake.url, [web.get("/stats", stats), web.post("/probe", probe)])


if __name__ == "__main__":
    asyncio.run(main())
