"""Scale-out benchmark: 1, 2 and 3 bot processes (`langso run`, webhook mode) on one PostgreSQL
database, against one fake Telegram Bot API in a process of its own with no limits.

    python bench/scale.py                                   # 1, 2 and 3 processes
    python bench/scale.py --processes 1 --profile /tmp/p    # cProfile (CPU time) of each bot process (.pid files)
    python bench/scale.py --processes 1 --statements /tmp/s # each bot process's SQL statements, counted
    python bench/scale.py --database-url postgresql://postgres@127.0.0.1:5432/test

Two phases per process count, each on a fresh database:
- surveys: R residents answer the household survey, resident n's updates posted to process n mod k's
  webhook (a load balancer that keeps a chat on one process), each sending its next message once the
  bot's prompt for it came, like a person. Messages handled per second; out of order = a prompt for an
  earlier question than the last; duplicates = a prompt nobody was waiting for; lost = residents not done.
- deliveries: one notice to G groups through the outbox, no platform limit. Deliveries per second,
  lost (groups never reached), duplicates (groups reached twice).
Prints each count's figures and its ratio to one process, the CPU milliseconds per survey message and
per delivery (utime + stime over the phase) of the bot processes together, of PostgreSQL, of the fake
platform and of the whole machine (with the kernel's network work): on a machine of two cores they
share them, so the ratio can reach 2 only when the bots' part is most of it. For 2 and 3 processes it
prints the most those costs allow (each bot on one core at most, the machine's work within its cores)
and that ceiling's ratio to one process's measured rate. Then outbox deliveries/s with one process
divided by a bare python-telegram-bot send loop on the same fake server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.surveys import FIRST_USER, TOKEN, classify, drop_postgres, fresh_postgres, seed  # noqa: E402

SECRET = "bench-scale-secret"
FIRST_GROUP = -1_000_000
NOTICE = "Lịch cắt điện toàn xã ngày mai từ 7h đến 11h."
TICKS = os.sysconf("SC_CLK_TCK")


# ==================================================================================================
# The fake server and the residents (`--fake-server`)
# ==================================================================================================


def fake_server_main() -> None:
    import aiohttp
    from aiohttp import web

    import tests.fake_telegram as fake_module
    from bench.control import serve_control

    fake_module._MAX_STORED_MESSAGES_PER_CHAT = 4

    @dataclass(slots=True)
    class Resident:
        user: int
        hook: str
        awaiting: bool = False
        last_question: int = 0
        done: bool = False

    residents: dict[int, Resident] = {}
    counts = {"handled": 0, "completed": 0, "out_of_order": 0, "duplicates": 0, "unexpected": 0}
    times = {"first_prompt": 0.0, "last_prompt": 0.0, "first_group": 0.0, "last_group": 0.0}
    per_group: dict[int, int] = {}
    client: list[aiohttp.ClientSession] = []
    posts: set[asyncio.Task[None]] = set()

    class Fake(fake_module.FakeTelegram):
        async def _send_message(self, params: dict) -> Any:
            reply = await super()._send_message(params)
            if reply.ok:
                on_sent(int(params["chat_id"]), str(params.get("text") or ""))
            return reply

    fake = Fake(TOKEN, global_limit=None, group_limit_per_minute=None, private_limit_per_second=None)
    fake.sent = deque(maxlen=100)  # type: ignore[assignment]  # counted here instead

    async def post(resident: Resident, update: dict) -> None:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        for _ in range(20):  # a process busy at the moment: the platform tries again
            try:
                async with client[0].post(resident.hook, json=update, headers=headers) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)

    def say(resident: Resident, text: str) -> None:
        fake.message(resident.user, resident.user, text)
        _, update = fake._updates.pop()  # posted to the resident's own process, not the one webhook
        resident.awaiting = True
        task = asyncio.get_running_loop().create_task(post(resident, update))
        posts.add(task)
        task.add_done_callback(posts.discard)

    def on_sent(chat_id: int, text: str) -> None:
        now = time.time()
        if chat_id < 0:
            per_group[chat_id] = per_group.get(chat_id, 0) + 1
            times["first_group"] = times["first_group"] or now
            times["last_group"] = now
            return
        resident = residents.get(chat_id)
        if resident is None:
            return
        kind, answer = classify(text)
        if kind == "info":
            return
        if kind == "unexpected":
            counts["unexpected"] += 1
            return
        if not resident.awaiting:
            counts["duplicates"] += 1
            return
        if kind.startswith("q"):
            number = int(kind[1:])
            if number < resident.last_question:
                counts["out_of_order"] += 1
            resident.last_question = number
        counts["handled"] += 1
        times["first_prompt"] = times["first_prompt"] or now
        times["last_prompt"] = now
        resident.awaiting = False
        if kind == "done":
            resident.done = True
            counts["completed"] += 1
        elif answer is not None:
            say(resident, answer)

    async def start_survey(request: web.Request) -> web.Response:
        body = await request.json()
        hooks = body["hooks"]
        for n in range(int(body["residents"])):
            resident = residents[FIRST_USER + n] = Resident(FIRST_USER + n, hooks[n % len(hooks)])
            say(resident, f"/start ks{body['campaign']}")
        return web.json_response({"ok": True})

    async def add_groups(request: web.Request) -> web.Response:
        for n in range(int((await request.json())["groups"])):
            fake.add_group(FIRST_GROUP - n)
        return web.json_response({"ok": True})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({**counts, **times, "residents": len(residents),
                                  "groups_reached": len(per_group),
                                  "group_duplicates": sum(v - 1 for v in per_group.values())})

    async def serve() -> None:
        client.append(aiohttp.ClientSession())
        await fake.start()
        await serve_control(fake.url, [web.post("/survey", start_survey), web.post("/groups", add_groups),
                                       web.get("/stats", stats)])

    asyncio.run(serve())


# ==================================================================================================
# A bot process (`--run-bot`): `langso run`, optionally under cProfile
# ==================================================================================================


def run_bot_main() -> None:
    from bot.cli import main

    statements = os.environ.get("LANGSO_BENCH_STATEMENTS")
    if statements:
        count_statements(Path(f"{statements}.{os.getpid()}"))
    profile = os.environ.get("LANGSO_BENCH_PROFILE")
    if not profile:
        sys.exit(main(["run"]))
    import cProfile

    # CPU time, not the wall clock: on a busy machine a send that wakes PostgreSQL is charged for the
    # time PostgreSQL then ran on this core
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    code = main(["run"])
    profiler.disable()
    profiler.dump_stats(f"{profile}.{os.getpid()}")
    sys.exit(code)


def count_statements(path: Path) -> None:
    """Every statement the process sends, and every connection taken from a pool (a ping each with
    pre-ping), counted by its first words and written to `path` at exit, most frequent first."""
    import atexit
    import re
    from collections import Counter

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    counts: Counter[str] = Counter()

    def executed(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        counts[re.sub(r"\s+", " ", statement)[:140]] += 1

    event.listen(Engine, "before_cursor_execute", executed)
    event.listen(Engine, "commit", lambda _conn: counts.update(["COMMIT"]))
    event.listen(Engine, "rollback", lambda _conn: counts.update(["ROLLBACK"]))
    event.listen(Pool, "checkout", lambda *_: counts.update(["(pool checkout)"]))

    def write() -> None:
        path.write_text("".join(f"{n:8d}  {text}\n" for text, n in counts.most_common()), encoding="utf-8")

    atexit.register(write)


# ==================================================================================================
# The orchestrator
# ==================================================================================================


class FakeServer:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--fake-server"], stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline().split()  # type: ignore[union-attr]
        assert ready, "the fake server said nothing"
        assert ready[0] == "READY", ready
        self.api, self.control = ready[1], ready[2]

    async def call(self, method: str, path: str, body: object = None) -> dict:
        import aiohttp

        async with aiohttp.ClientSession() as client, client.request(method, f"{self.control}{path}", json=body) as r:
            return await r.json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


class Bots:
    """k bot processes on one database, each on its own port in webhook mode."""

    def __init__(self, folder: Path, url: str, fake: FakeServer, count: int, args: argparse.Namespace) -> None:
        config = (ROOT / "config.toml").read_text(encoding="utf-8")
        for old, new in (
            ('start = "21:00"', 'start = "00:00"'), ('end = "06:00"', 'end = "00:00"'),
            ('mode = "polling"\nwebhook_url = ""', 'mode = "webhook"\nwebhook_url = "https://bench.example/telegram/webhook"'),
            ("per_bot_per_second = 30", "per_bot_per_second = 1000000"),
            ("per_group_per_minute = 20", "per_group_per_minute = 1000000"),
            ("per_private_per_second = 1", "per_private_per_second = 1000"),
        ):
            assert old in config, old
            config = config.replace(old, new, 1)
        self.ports = [_free_port() for _ in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs = [folder / f"bot-{n}.log" for n in range(count)]
        for n, port in enumerate(self.ports):
            path = folder / f"config-{n}.toml"
            path.write_text(config.replace("port = 8080", f"port = {port}"), encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")} | {
                "LANGSO_CONFIG": str(path), "LANGSO_DATABASE_URL": url, "LANGSO_TELEGRAM_TOKEN": TOKEN,
                "LANGSO_TELEGRAM_API_URL": fake.api, "LANGSO_TELEGRAM_WEBHOOK_SECRET": SECRET,
                "PYTHONPATH": str(ROOT),
            } | ({"LANGSO_BENCH_PROFILE": args.profile} if args.profile else {}) | (
                {"LANGSO_BENCH_STATEMENTS": args.statements} if args.statements else {})
            self.processes.append(subprocess.Popen(
                [sys.executable, __file__, "--run-bot"], cwd=ROOT, env=env, stdout=self.logs[n].open("wb"),
                stderr=subprocess.STDOUT,
            ))

    @property
    def hooks(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/telegram/webhook" for port in self.ports]

    async def ready(self) -> None:
        for _ in range(600):
            if all("web server on" in log.read_text(errors="replace") for log in self.logs):
                return
            if any(p.poll() is not None for p in self.processes):
                break
            await asyncio.sleep(0.1)
        raise SystemExit("a bot did not start:\n" + "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs))

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(process.pid) for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_seconds() -> dict[int, float]:
    """CPU of each PostgreSQL process on this machine by pid (none when the server runs elsewhere)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            found[int(stat.parent.name)] = cpu_seconds(int(stat.parent.name))
    return found


@dataclass
class Cpu:
    """CPU seconds of the bots, PostgreSQL, the fake platform and the whole machine (the kernel's network
    work, this script and anything else running is in the last only), so that a phase's share of each shows."""

    bots: float
    postgres: dict[int, float]  # by pid: a backend that ends during a phase takes its CPU with it
    platform: float
    machine: float

    @classmethod
    def now(cls, bots: Bots, fake: FakeServer) -> Cpu:
        return cls(bots.cpu_seconds(), postgres_seconds(), cpu_seconds(fake.process.pid), machine_seconds())

    def per(self, start: Cpu, count: int) -> Cpu:
        """Milliseconds per item since `start`."""
        scale = 1000 / max(1, count)
        postgres = sum(seconds - start.postgres.get(pid, 0.0) for pid, seconds in self.postgres.items())
        return Cpu((self.bots - start.bots) * scale, {0: postgres * scale}, (self.platform - start.platform) * scale,
                   (self.machine - start.machine) * scale)

    def ceiling(self, processes: int) -> float:
        """Items per second these costs allow: each bot process on a core of its own at most, and the
        whole machine's work within its cores."""
        return 1000 * min(processes / max(self.bots, 1e-9), (os.cpu_count() or 1) / max(self.machine, 1e-9))

    def __str__(self) -> str:
        postgres = sum(self.postgres.values())
        return (f"bots {self.bots:.2f}, PostgreSQL {postgres:.2f}, fake platform {self.platform:.2f}, "
                f"whole machine {self.machine:.2f}")


def machine_seconds() -> float:
    """Busy CPU time of every core so far (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


@dataclass
class Figures:
    survey_rate: float = 0.0
    survey_lost: int = 0
    survey_duplicates: int = 0
    out_of_order: int = 0
    survey_cpu_ms: Cpu | None = None
    delivery_rate: float = 0.0
    delivery_lost: int = 0
    delivery_duplicates: int = 0
    delivery_cpu_ms: Cpu | None = None


async def until(check: Callable[[], Any], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not await check():  # noqa: ASYNC110 - asks another process
        await asyncio.sleep(0.25)


async def queue_notice(url: str, groups: int) -> None:
    from sqlalchemy import insert

    from storage.db import create_engine, session_factory
    from storage.models import Announcement, AnnouncementStatus, ChatGroup, Delivery, Person, Place

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            village = (await session.exec(Place.__table__.select().where(Place.code == "THON"))).first()
            author = Person(display_name="Trưởng thôn")
            session.add(author)
            await session.flush()
            await session.exec(insert(ChatGroup), params=[  # type: ignore[call-overload]
                {"platform": "telegram", "chat_id": str(FIRST_GROUP - n), "place_id": village.id, "active": True}
                for n in range(groups)
            ])
            notice = Announcement(author_id=author.id, text=NOTICE, status=AnnouncementStatus.QUEUED,
                                  author_name="Trưởng thôn", from_place="Thôn Đông")
            session.add(notice)
            await session.flush()
            ids = (await session.exec(ChatGroup.__table__.select().with_only_columns(ChatGroup.id))).scalars().all()
            await session.exec(insert(Delivery), params=[{"announcement_id": notice.id, "group_id": g} for g in ids])  # type: ignore[call-overload]
            await session.commit()
    finally:
        await engine.dispose()


async def measure(args: argparse.Namespace, count: int) -> Figures:
    url, conninfo = fresh_postgres(args.database_url)
    fake = FakeServer()
    figures = Figures()
    try:
        campaign = await seed(url, args.residents)
        with tempfile.TemporaryDirectory() as tmp:
            bots = Bots(Path(tmp), url, fake, count, args)
            try:
                await bots.ready()
                cpu = Cpu.now(bots, fake)
                await fake.call("POST", "/survey", {"residents": args.residents, "campaign": campaign, "hooks": bots.hooks})

                async def surveys_done() -> bool:
                    return (await fake.call("GET", "/stats"))["completed"] >= args.residents

                await until(surveys_done, args.seconds)
                await asyncio.sleep(1.0)  # a late duplicate would show now
                stats = await fake.call("GET", "/stats")
                figures.survey_cpu_ms = Cpu.now(bots, fake).per(cpu, stats["handled"])
                figures.survey_rate = stats["handled"] / max(1e-9, stats["last_prompt"] - stats["first_prompt"])
                figures.survey_lost = args.residents - stats["completed"]
                figures.survey_duplicates = stats["duplicates"]
                figures.out_of_order = stats["out_of_order"]

                await fake.call("POST", "/groups", {"groups": args.groups})
                cpu = Cpu.now(bots, fake)
                await queue_notice(url, args.groups)

                async def delivered() -> bool:
                    return (await fake.call("GET", "/stats"))["groups_reached"] >= args.groups

                await until(delivered, args.seconds)
                await asyncio.sleep(1.0)
                stats = await fake.call("GET", "/stats")
                sends = stats["groups_reached"] + stats["group_duplicates"]
                figures.delivery_cpu_ms = Cpu.now(bots, fake).per(cpu, sends)
                figures.delivery_rate = sends / max(1e-9, stats["last_group"] - stats["first_group"])
                figures.delivery_lost = args.groups - stats["groups_reached"]
                figures.delivery_duplicates = stats["group_duplicates"]
            finally:
                bots.stop()
    finally:
        fake.close()
        drop_postgres(conninfo, url)
    return figures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=180, help="the longest a phase may take")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--profile", help="write each bot process's cProfile stats to PROFILE.<pid>")
    parser.add_argument("--statements", help="write each bot process's SQL statements, counted, to STATEMENTS.<pid>")
    args = parser.parse_args()
    results: dict[int, Figures] = {}
    for count in args.processes:
        f = results[count] = await measure(args, count)
        base = results.get(1)
        ratio = (f"  (÷1: surveys {f.survey_rate / base.survey_rate:.2f}, deliveries {f.delivery_rate / base.delivery_rate:.2f})"
                 if base and count != 1 else "")
        print(f"{count} process(es): surveys {f.survey_rate:.1f} messages/s [{args.residents} residents, lost "
              f"{f.survey_lost}, duplicates {f.survey_duplicates}, out of order {f.out_of_order}]; deliveries "
              f"{f.delivery_rate:.1f}/s [{args.groups} groups, lost {f.delivery_lost}, duplicates "
              f"{f.delivery_duplicates}]{ratio}", flush=True)
        print(f"  CPU ms per survey message: {f.survey_cpu_ms}; per delivery: {f.delivery_cpu_ms}", flush=True)
        if base and count != 1 and f.survey_cpu_ms and f.delivery_cpu_ms:
            surveys, deliveries = f.survey_cpu_ms.ceiling(count), f.delivery_cpu_ms.ceiling(count)
            print(f"  these costs allow on {os.cpu_count()} cores at most {surveys:.0f} messages/s and "
                  f"{deliveries:.0f} deliveries/s (÷1: {surveys / base.survey_rate:.2f}, "
                  f"{deliveries / base.delivery_rate:.2f})", flush=True)
    if 1 in results:
        from bench.broadcast import bare_loop

        bare = await bare_loop(args.groups, 32)
        print(f"bare python-telegram-bot send loop [32 concurrent, aiohttp backend, same fake server]: "
              f"{bare:.1f}/s; outbox (1 process) ÷ bare = {results[1].delivery_rate / bare:.3f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fake-server"]:
        fake_server_main()
    elif sys.argv[1:2] == ["--run-bot"]:
        run_bot_main()
    else:
        asyncio.run(main())
