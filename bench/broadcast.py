"""Broadcast benchmark: one notice to 10,000 village groups through the real bot (outbox, pacer,
python-telegram-bot) against the fake Bot API in another process on 127.0.0.1.

    python bench/broadcast.py                   # the three runs the foundation issue asks for
    python bench/broadcast.py --limit 30 --seconds 60
    python bench/broadcast.py --limit 0         # no limit: deliveries/s, and a bare send_message loop
    python bench/broadcast.py --followers 5000  # a village of 5,000 followers: 30/s, 1/s per private chat

Prints, per run: achieved rate and its ratio to the limit, 429s, lost, duplicates, peak RSS, and the
time a person waited for a reply to /trogiup sent in the middle of the broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import insert
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Bot
from telegram.request import HTTPXRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App  # noqa: E402
from bot.channels.aiohttp_request import AiohttpRequest  # noqa: E402
from bot.config import DEFAULT_CONFIG, Settings, build  # noqa: E402
from handlers import admin  # noqa: E402
from storage.models import (  # noqa: E402
    Announcement,
    AnnouncementStatus,
    ChatGroup,
    Delivery,
    DeliveryStatus,
    Follower,
    Identity,
    Person,
    VillageMember,
)

TOKEN = "123456:BENCH"
FIRST_GROUP = -1_000_000
FIRST_FOLLOWER = 5_000_000
PROBE_USER = 777


@dataclass
class Run:
    limit: float
    groups: int  # per platform
    seconds: float
    max_in_flight: int
    platforms: tuple[str, ...] = ("telegram",)
    followers: int = 0  # private chats of one village's followers, on Telegram, at 1 send a second each

    @property
    def chats(self) -> int:
        return self.groups * len(self.platforms) + self.followers


class FakeServer:
    def __init__(self, limit: float, groups: int, platform: str = "telegram", followers: int = 0) -> None:
        # followers' chats keep Telegram's real limit of about one message a second per private chat
        private = ["--followers", str(followers), "--first-user", str(FIRST_FOLLOWER), "--private-limit", "1"]
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "fake_server.py"), "--token", TOKEN, "--limit", str(limit),
             "--groups", str(groups), "--first-group", str(FIRST_GROUP), "--platform", platform,
             *(private if followers else [])],
            stdout=subprocess.PIPE, text=True,
        )
        ready = self.process.stdout.readline().split()  # type: ignore[union-attr]
        assert ready, ready
        assert ready[0] == "READY", ready
        self.api, self.control = ready[1], ready[2]

    async def stats(self) -> dict:
        async with aiohttp.ClientSession() as client, client.get(f"{self.control}/stats") as response:
            return await response.json()

    async def probe(self) -> None:
        async with aiohttp.ClientSession() as client:
            await client.post(f"{self.control}/probe", params={"user": PROBE_USER})

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def settings(database: Path, servers: dict[str, FakeServer], run: Run) -> Settings:
    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["quiet_hours"] = {"start": "00:00", "end": "00:00"}
    raw["delivery"]["max_in_flight"] = run.max_in_flight
    env = {"LANGSO_DATABASE_URL": f"sqlite:///{database}"}
    for platform, server in servers.items():
        raw[platform]["per_bot_per_second"] = run.limit or 1_000_000
        env |= {f"LANGSO_{platform.upper()}_TOKEN": TOKEN, f"LANGSO_{platform.upper()}_API_URL": server.api}
    return build(raw, env)


async def queue_broadcast(app: App, run: Run) -> None:
    async with app.sessions() as session:
        await admin.add_place(session, "commune", "XA", "Xã", None)
        village = await admin.add_place(session, "village", "THON", "Thôn", "XA")
        author = Person(display_name="Trưởng thôn")
        session.add(author)
        await session.flush()
        groups = [{"platform": p, "chat_id": str(FIRST_GROUP - n), "place_id": village.id, "active": True}
                  for p in run.platforms for n in range(run.groups)]
        if groups:
            await session.exec(insert(ChatGroup), params=groups)
        notice = Announcement(author_id=author.id, text="Lịch cắt điện toàn xã ngày mai từ 7h đến 11h.",
                              status=AnnouncementStatus.QUEUED, author_name="Trưởng thôn", from_place="Thôn")
        session.add(notice)
        await session.flush()
        ids = (await session.exec(ChatGroup.__table__.select().with_only_columns(ChatGroup.id))).scalars().all()
        if ids:
            await session.exec(insert(Delivery), params=[{"announcement_id": notice.id, "group_id": g} for g in ids])
        followers = await _followers(session, village.id, run.followers)
        if followers:
            await session.exec(insert(Delivery), params=[
                {"announcement_id": notice.id, "follower_id": f, "place_id": village.id} for f in followers
            ])
        await session.commit()
    app.wake_delivery()


async def _followers(session: AsyncSession, village_id: int, count: int) -> list[int]:
    """`count` residents of the village who said yes on Telegram: their follower rows' ids."""
    people = [Person(display_name=f"Người {n}") for n in range(count)]
    session.add_all(people)
    await session.flush()
    users = [str(FIRST_FOLLOWER + n) for n in range(count)]
    if not people:
        return []
    await session.exec(insert(Identity), params=[
        {"platform": "telegram", "user_id": u, "person_id": p.id} for u, p in zip(users, people, strict=True)
    ])
    await session.exec(insert(VillageMember), params=[{"person_id": p.id, "place_id": village_id} for p in people])
    await session.exec(insert(Follower), params=[{"platform": "telegram", "chat_id": u, "following": True} for u in users])
    return list((await session.exec(select(Follower.id).order_by(col(Follower.id)))).all())


async def delivery_states(app: App) -> dict[tuple[str, str], int]:
    async with app.sessions() as session:
        platform = func.coalesce(ChatGroup.platform, Follower.platform)
        rows = await session.exec(
            select(platform, Delivery.status, func.count())
            .join(ChatGroup, col(Delivery.group_id) == ChatGroup.id, isouter=True)
            .join(Follower, col(Delivery.follower_id) == Follower.id, isouter=True)
            .group_by(platform, Delivery.status)
        )
        return {(platform, status): count for platform, status, count in rows.all()}


async def measure(run: Run) -> dict[str, dict[str, float]]:
    servers = {p: FakeServer(run.limit, run.groups, p, run.followers if p == "telegram" else 0) for p in run.platforms}
    peak = 0.0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = App(settings(Path(tmp) / "bench.db", servers, run))
            await app.start()
            try:
                await queue_broadcast(app, run)
                started = time.monotonic()
                probed = False
                while time.monotonic() - started < run.seconds:
                    await asyncio.sleep(0.25)
                    peak = max(peak, rss_mb())
                    if not probed and time.monotonic() - started > min(5.0, run.seconds / 3):
                        for server in servers.values():
                            await server.probe()
                        probed = True
                    states = await delivery_states(app)
                    sent = sum(n for (_, status), n in states.items() if status == DeliveryStatus.SENT)
                    if sent == run.chats:
                        break
                stats = {p: await server.stats() for p, server in servers.items()}
                states = await delivery_states(app)
            finally:
                await app.stop()
    finally:
        for server in servers.values():
            server.close()
    return {p: figures(stats[p], {s: n for (q, s), n in states.items() if q == p}, max(peak, rss_mb()))
            for p in run.platforms}


def figures(stats: dict, states: dict[str, int], peak: float) -> dict[str, float]:
    per_chat = {k: v for k, v in stats["per_chat"].items() if k != str(PROBE_USER)}
    delivered = len(per_chat)
    span = max(stats["last_at"] - stats["first_at"], 1e-9)
    return {
        "delivered": delivered,
        "rate": sum(per_chat.values()) / span,
        "rejected_429": stats["rejected_429"],
        "lost": states.get(DeliveryStatus.SENT, 0) - delivered + states.get(DeliveryStatus.FAILED, 0)
        + states.get(DeliveryStatus.STOPPED, 0),
        "duplicates": sum(v - 1 for v in per_chat.values()),
        "pending": states.get(DeliveryStatus.PENDING, 0) + states.get(DeliveryStatus.SENDING, 0),
        "reply_s": max(stats["probe_latencies"], default=float("nan")),
        "peak_rss_mb": peak,
    }


async def bare_loop(groups: int, concurrency: int, httpx: bool = False) -> float:
    """The same send_message calls with nothing of ours around them: the ceiling we compare with
    (on our aiohttp backend, as the bot uses; or on python-telegram-bot's default httpx one)."""
    server = FakeServer(0, groups)
    try:
        request = (
            HTTPXRequest(connection_pool_size=concurrency + 8) if httpx else AiohttpRequest(connections=concurrency + 8)
        )
        bot = Bot(TOKEN, base_url=f"{server.api}/bot", request=request)
        await bot.initialize()
        slots = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            async with slots:
                await bot.send_message(FIRST_GROUP - n, "Lịch cắt điện toàn xã ngày mai từ 7h đến 11h.")

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(groups)))
        elapsed = time.monotonic() - started
        await bot.shutdown()
        return groups / elapsed
    finally:
        server.close()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def show(label: str, run: Run, result: dict[str, float]) -> None:
    limit = (f"L = {run.limit:g}/s" if run.limit else "no limit") + f", {label}"
    ratio = f"  rate/L = {result['rate'] / run.limit:.3f}" if run.limit else ""
    followers = f", {run.followers} followers at 1/s each" if run.followers and label == "telegram" else ""
    print(
        f"outbox [{limit}, {run.groups} groups{followers}, {run.seconds:g} s max]: delivered {result['delivered']:.0f}, "
        f"rate {result['rate']:.1f}/s{ratio}, 429s {result['rejected_429']:.0f}, lost {result['lost']:.0f}, "
        f"duplicates {result['duplicates']:.0f}, still queued {result['pending']:.0f}, "
        f"reply to /trogiup mid-broadcast {result['reply_s'] * 1000:.0f} ms, peak RSS {result['peak_rss_mb']:.0f} MB",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, help="global limit L of the fake server, sends/s (0: none)")
    parser.add_argument("--groups", type=int, help="groups per platform (10,000; none with --followers)")
    parser.add_argument("--followers", type=int, default=0, help="one village's followers on Telegram")
    parser.add_argument("--seconds", type=float, help="at most this long (60; with --followers, 1.5 × N / L)")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--platform", choices=["telegram", "zalo", "both"], default="telegram")
    args = parser.parse_args()
    platforms = ("telegram", "zalo") if args.platform == "both" else (args.platform,)
    limits = [args.limit] if args.limit is not None else [30] if args.followers else [30, 1000, 0]
    groups = args.groups if args.groups is not None else 0 if args.followers else 10_000
    for limit in limits:
        seconds = args.seconds or (max(60.0, 1.5 * args.followers / limit) if args.followers and limit else 60)
        run = Run(limit, groups, seconds if limit != 0 else 600, args.in_flight, platforms, args.followers)
        for platform, result in (await measure(run)).items():
            show(platform, run, result)
        if not limit and "telegram" in platforms:
            bare = await bare_loop(groups, args.in_flight)
            print(f"bare send_message loop [{args.in_flight} concurrent, aiohttp backend]: {bare:.1f}/s; "
                  f"outbox/bare = {result['rate'] / bare:.3f}", flush=True)
            bare_httpx = await bare_loop(groups, args.in_flight, httpx=True)
            print(f"bare send_message loop [{args.in_flight} concurrent, PTB's default httpx backend]: "
                  f"{bare_httpx:.1f}/s; outbox/bare = {result['rate'] / bare_httpx:.3f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
