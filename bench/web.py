"""Web console benchmark: the home page of a commune with 20 villages, 60 groups, 3,000 households and
200 notices, on SQLite, while one notice goes out to 10,000 groups (of another commune) through the
real bot against the fake Bot API in another process; chat replies are timed meanwhile.

    python bench/web.py                     # 30 sends/s (Telegram's limit): the broadcast lasts the whole run
    python bench/web.py --limit 0           # no limit: the outbox as busy as it gets
    python bench/web.py --requests 500 --probes 20

The data is written straight through the models. The console's pages are fetched by a plain HTTP
client in a thread of its own (as a browser would, one after another, with the official's session
cookie); "/trogiup" is pushed from private chats through the fake server, which times the bot's reply.
Prints p50 / p95 / max of the home page (then, for information, of the surveys page, whose scorecard
reads every household's answers), the chat reply times, and how far the broadcast got meanwhile.
Passes when the home page's p95 is at most 100 ms and every reply came within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import sys
import tempfile
import time
import tomllib
from datetime import timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import insert
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.broadcast import FIRST_GROUP, TOKEN, FakeServer  # noqa: E402
from bot.app import App  # noqa: E402
from bot.config import DEFAULT_CONFIG, Settings, build  # noqa: E402
from handlers import codes  # noqa: E402
from handlers.web_login import SESSION_LIFETIME  # noqa: E402
from storage.models import (  # noqa: E402
    Acknowledgement,
    Announcement,
    AnnouncementStatus,
    Campaign,
    ChatGroup,
    ConsoleSession,
    Delivery,
    DeliveryStatus,
    HandbookQuestion,
    Household,
    Identity,
    Person,
    Place,
    PlaceKind,
    QuestionStatus,
    ResponseStatus,
    Role,
    RoleName,
    SurveyResponse,
    utcnow,
)

VILLAGES, GROUPS, HOUSEHOLDS, NOTICES = 20, 60, 3_000, 200
BROADCAST_GROUPS = 10_000
OFFICIAL_USER = 100
FIRST_PROBE_USER = 9_000_000
SECRET = "bench-web-session-secret"
HOME_P95_MS, REPLY_S = 100.0, 1.0


def settings(database: Path, server: FakeServer, limit: float) -> Settings:
    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["quiet_hours"] = {"start": "00:00", "end": "00:00"}
    raw["telegram"]["per_bot_per_second"] = limit or 1_000_000
    raw["web"] = {"host": "127.0.0.1", "port": 0, "public_url": "http://127.0.0.1"}
    env = {"LANGSO_DATABASE_URL": f"sqlite:///{database}", "LANGSO_TELEGRAM_TOKEN": TOKEN,
           "LANGSO_TELEGRAM_API_URL": server.api}
    return build(raw, env)


async def _place(session: AsyncSession, kind: str, code: str, name: str, parent: Place | None) -> Place:
    place = Place(kind=kind, code=code, name=name, parent_id=parent.id if parent else None)
    session.add(place)
    await session.flush()
    return place


async def seed_commune(session: AsyncSession) -> None:
    """The commune the official looks at: its villages, groups, households (half of them surveyed),
    tech teams, open questions, and 200 notices sent to every group with a few 'Đã đọc' each."""
    now = utcnow()
    commune = await _place(session, PlaceKind.COMMUNE, "XA", "Xã Bình An", None)
    villages = [await _place(session, PlaceKind.VILLAGE, f"THON-{n:02d}", f"Thôn {n}", commune)
                for n in range(1, VILLAGES + 1)]
    official = Person(display_name="Cán bộ xã")
    session.add(official)
    await session.flush()
    session.add(Identity(platform="telegram", user_id=str(OFFICIAL_USER), person_id=official.id))
    session.add(Role(person_id=official.id, place_id=commune.id, role=RoleName.COMMUNE_OFFICIAL))
    team = [Person(display_name=f"Tổ công nghệ số {v.code}") for v in villages]
    session.add_all(team)
    await session.flush()
    session.add_all([Role(person_id=p.id, place_id=v.id, role=RoleName.TECH_TEAM) for p, v in zip(team, villages, strict=True)])
    await session.exec(insert(ChatGroup), params=[
        {"platform": "telegram", "chat_id": str(-2_000_000 - n), "title": f"Nhóm {n}", "active": n % 17 != 0,
         "place_id": villages[n % VILLAGES].id} for n in range(GROUPS)])
    await session.exec(insert(Household), params=[
        {"place_id": villages[n % VILLAGES].id, "head_name": f"Chủ hộ {n}", "join_code": f"{n:09d}", "created_at": now}
        for n in range(HOUSEHOLDS)])
    campaigns = [Campaign(survey_code="ho-gia-dinh", place_id=v.id, opened_by=official.id, expected_households=150)
                 for v in villages]
    session.add_all(campaigns)
    await session.flush()
    by_village = {c.place_id: c.id for c in campaigns}
    households = (await session.exec(select(Household.id, Household.place_id))).all()
    await session.exec(insert(SurveyResponse), params=[
        {"campaign_id": by_village[place_id], "household_id": household_id, "answers": {"members": 4},
         "status": ResponseStatus.SUBMITTED if household_id % 2 else ResponseStatus.IN_PROGRESS,
         "started_at": now, "updated_at": now} for household_id, place_id in households])
    session.add_all([HandbookQuestion(platform="telegram", chat_id="1", user_id="1", person_id=official.id,
                                      place_id=villages[n % VILLAGES].id, text=f"câu hỏi {n}", decision="handoff",
                                      status=QuestionStatus.OPEN) for n in range(40)])
    groups = (await session.exec(select(ChatGroup.id).where(col(ChatGroup.place_id).in_([v.id for v in villages])))).all()
    for n in range(NOTICES):
        at = now - timedelta(hours=NOTICES - n)
        notice = Announcement(author_id=official.id, author_name=official.display_name, from_place=commune.name,
                              text=f"Thông báo số {n}: họp dân tối nay lúc 19h ở nhà văn hóa.",
                              status=AnnouncementStatus.QUEUED, send_at=at, created_at=at)
        session.add(notice)
        await session.flush()
        await session.exec(insert(Delivery), params=[
            {"announcement_id": notice.id, "group_id": g, "status": DeliveryStatus.SENT, "sent_at": at,
             "not_before": at} for g in groups])
        await session.exec(insert(Acknowledgement), params=[
            {"announcement_id": notice.id, "group_id": g, "platform": "telegram", "user_id": f"{g}-{k}", "at": at}
            for g in groups for k in range(3)])
    session.add(ConsoleSession(token_hash=codes.digest(SECRET), person_id=official.id, created_at=now,
                               expires_at=now + SESSION_LIFETIME))


async def queue_broadcast(session: AsyncSession) -> None:
    """One notice to 10,000 groups of another commune's village (the fake server's groups)."""
    commune = await _place(session, PlaceKind.COMMUNE, "XB", "Xã Bên Kia", None)
    village = await _place(session, PlaceKind.VILLAGE, "THON-B", "Thôn Bên Kia", commune)
    author = Person(display_name="Trưởng thôn")
    session.add(author)
    await session.flush()
    await session.exec(insert(ChatGroup), params=[
        {"platform": "telegram", "chat_id": str(FIRST_GROUP - n), "place_id": village.id, "active": True}
        for n in range(BROADCAST_GROUPS)])
    notice = Announcement(author_id=author.id, author_name=author.display_name, from_place=village.name,
                          text="Lịch cắt điện toàn xã ngày mai từ 7h đến 11h.", status=AnnouncementStatus.QUEUED,
                          target_place_id=village.id)
    session.add(notice)
    await session.flush()
    groups = (await session.exec(select(ChatGroup.id).where(ChatGroup.place_id == village.id))).all()
    await session.exec(insert(Delivery), params=[{"announcement_id": notice.id, "group_id": g} for g in groups])


def fetch_pages(port: int, paths: list[str], requests: int) -> dict[str, list[float]]:
    """In a thread of its own: each page `requests` times, one after another, like one browser."""
    timings: dict[str, list[float]] = {path: [] for path in paths}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": f"langso_phien={SECRET}"}
    for n in range(requests + 5):
        for path in paths:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200 or f"Thôn {VILLAGES}".encode() not in body:
                raise RuntimeError(f"{path}: {response.status}")
            if n >= 5:  # the first few warm the caches (templates, the survey catalog)
                timings[path].append(elapsed)
    connection.close()
    return timings


async def probe_replies(server: FakeServer, count: int, stop: asyncio.Event) -> list[float]:
    """`count` residents write "/trogiup", one about every second while the pages are fetched."""
    latencies: list[float] = []
    async with aiohttp.ClientSession() as client:
        for n in range(count):
            if stop.is_set():
                break
            async with client.post(f"{server.control}/probe", params={"user": FIRST_PROBE_USER + n}):
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                async with client.get(f"{server.control}/stats") as answer:
                    seen = (await answer.json())["probe_latencies"]
                if len(seen) > len(latencies):
                    latencies = seen
                    break
            else:
                latencies.append(float("inf"))  # no reply in 10 s
            await asyncio.sleep(0.8)
    return latencies


async def sent_count(app: App) -> tuple[int, int]:
    async with app.sessions() as session:
        rows = await session.exec(
            select(Delivery.status, func.count()).join(ChatGroup, col(ChatGroup.id) == Delivery.group_id)
            .join(Place, col(Place.id) == ChatGroup.place_id).where(Place.code == "THON-B").group_by(Delivery.status))
        states = dict(rows.all())
    return states.get(DeliveryStatus.SENT, 0), sum(states.values())


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms (n = {len(ordered)})")


def p95_of(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, default=30, help="the fake server's sends/s (0: none)")
    parser.add_argument("--requests", type=int, default=200, help="fetches of each page")
    parser.add_argument("--probes", type=int, default=15, help="chat replies timed")
    args = parser.parse_args()
    server = FakeServer(args.limit, BROADCAST_GROUPS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = App(settings(Path(tmp) / "bench.db", server, args.limit))
            await app.start()
            try:
                seeded = time.monotonic()
                async with app.sessions() as session:
                    await seed_commune(session)
                    await session.commit()
                print(f"seeded {VILLAGES} villages, {GROUPS} groups, {HOUSEHOLDS} households, {NOTICES} notices "
                      f"in {time.monotonic() - seeded:.1f} s", flush=True)
                async with app.sessions() as session:
                    await queue_broadcast(session)
                    await session.commit()
                app.wake_delivery()
                await asyncio.sleep(2)  # the broadcast under way
                before = await sent_count(app)
                stop = asyncio.Event()
                probes = asyncio.create_task(probe_replies(server, args.probes, stop))
                started = time.monotonic()
                timings = await asyncio.to_thread(fetch_pages, app.web_port, ["/"], args.requests)
                timings |= await asyncio.to_thread(fetch_pages, app.web_port, ["/khao-sat"], args.requests // 4)
                elapsed = time.monotonic() - started
                stop.set()  # replies are timed only while the pages are fetched
                replies = await probes
                after = await sent_count(app)
            finally:
                await app.stop()
    finally:
        server.close()
    home = timings["/"]
    print(f"home page (/) while broadcasting: {percentiles(home)}")
    print(f"surveys page (/khao-sat) while broadcasting: {percentiles(timings['/khao-sat'])}")
    shown = ", ".join("none" if r == float("inf") else f"{r * 1000:.0f}" for r in replies)
    print(f"chat replies to /trogiup meanwhile (ms): {shown}")
    if replies:
        print(f"chat replies: {percentiles(replies)}")
    print(f"broadcast during the measurement ({elapsed:.1f} s): {after[0] - before[0]} groups reached, "
          f"{after[0]} of {after[1]} in all, {after[1] - after[0]} still to go at the end")
    ok = p95_of(home) * 1000 <= HOME_P95_MS and bool(replies) and max(replies) <= REPLY_S
    ok = ok and after[0] < after[1]  # the broadcast really ran all along
    print(f"{'PASS' if ok else 'FAIL'}: home page p95 <= {HOME_P95_MS:.0f} ms, every chat reply <= {REPLY_S:.0f} s, "
          f"broadcast still running at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
