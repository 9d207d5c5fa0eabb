"""Survey benchmark: N residents (default 10,000) answer the household survey at the same time through
the fake Telegram Bot API, against the real bot running in a child process; the bot is SIGKILLed
mid-run and restarted, and the database is then checked for lost answers.

    python bench/surveys.py --residents 500                 # quick debugging run
    python bench/surveys.py                                 # 10,000 residents, kill at 30 % of answers
    python bench/surveys.py --kill-at 0                     # no kill
    python bench/surveys.py --database-url postgresql://postgres@127.0.0.1:5432/test   # a fresh PG database

Three processes, so each is measured on its own: this one (orchestrator: seeds the database, kills and
restarts the bot, reads the database), the fake server (`--fake-server`: the Bot API plus the residents,
each sending its next message only once the bot's prompt for it arrived, like a person), and the bot
(`--run-bot`: bot.app.App, settings from the environment as in production). A resident reads the bot's
text to decide what to send (consent, new household, name, hamlet, "Câu N/…" -> the answer to question
N, summary -> submit), so a re-asked question or a resumed conversation is answered correctly.

Prints: answers stored per second, messages handled per second, p50/p99 time from a resident's answer
(the update made available) to the bot's next prompt reaching the fake server, the bot's peak RSS
(VmHWM of the child), and the kill test: answers lost (confirmed by the getUpdates offset but missing
from survey_response), residents completed. The bot's global send limit is raised to 10,000/s (the fake
server has no global or per-chat limit); the bot still paces 1 message/s per private chat.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

from bench.control import serve_control  # noqa: E402 - after the path is set
from tests.survey_answers import ANSWERS  # noqa: E402

if TYPE_CHECKING:
    from bot.config import Settings

TOKEN = "123456:BENCH"
FIRST_USER = 1_000_000  # resident n writes from user id (= private chat id) FIRST_USER + n
ANSWERS_PER_RESIDENT = 14
HEAD_NAME = "Lò Văn Pọm"
HAMLET = "Xóm Trên"
# The bot numbers the questions a household is asked: ANSWERS sell nothing online, so the form skips
# the "where" question and "Câu 12/14" is the one after "sells online"
ANSWER_FOR = dict(zip(range(1, 15), ANSWERS, strict=True))
SKIPPED = ("sell_channels",)
QUESTION = re.compile(r"^Câu (\d+)/\d+")
BOT_LIMIT_PER_SECOND = 10_000
RESENT = "gửi lại tin này"  # messages/templates/reply_resent.j2: a reply sent again after a restart


# ==================================================================================================
# The fake server and its residents (runs in its own process: `--fake-server`)
# ==================================================================================================


def classify(text: str) -> tuple[str, str | None]:
    """(what the bot's message is, what a resident types back; None: nothing, wait for more). A kind
    "q<key>" is an answer to the question <key> (here its number), which the ledger counts."""
    return classify_step(text, _numbered)


def _numbered(text: str) -> tuple[str, str | None] | None:
    if found := QUESTION.match(text):
        number = int(found.group(1))
        return f"q{number}", ANSWER_FOR.get(number)
    return None


def classify_step(text: str, question: Callable[[str], tuple[str, str | None] | None]) -> tuple[str, str | None]:
    """`classify` for any form: the chat's own steps around the form's questions, which `question` reads
    (None: the text is no question)."""
    if "Cảm ơn bạn" in text:
        return "done", None
    if "Gửi câu trả lời" in text:  # the summary: submit
        return "summary", "1"
    if (asked := question(text)) is not None:
        return asked
    if "có đồng ý trả lời" in text:
        return "consent", "1"
    if "Hộ của bạn thế nào" in text:
        return "household", "1"  # a new household
    if "Chủ hộ tên là gì" in text:
        return "head", HEAD_NAME
    if "Nhà ở xóm" in text:
        return "hamlet", HAMLET
    if "Mã hộ của bạn là" in text or "Chào mừng bạn quay lại" in text:
        return "info", None  # the next message (a question) follows in the same turn
    return "unexpected", None


class Mind(Protocol):
    """How the residents read the bot's messages (in the fake server's process)."""

    def classify(self, user: int, text: str) -> tuple[str, str | None]:
        """As `classify`, for this resident (a mind may remember what each one answered)."""

    def report(self) -> Any:
        """What the orchestrator checks the database against (JSON; served at /mind)."""


class ShippedForm:
    """Residents answering the shipped household form: the same answers for everyone."""

    def classify(self, _user: int, text: str) -> tuple[str, str | None]:
        return classify(text)

    def report(self) -> Any:
        return None


@dataclass(slots=True)
class Resident:
    user: int
    awaiting: bool = False  # sent a message, the bot's prompt for the next one has not come yet
    pushed_at: float = 0.0  # wall time the last message was made available to getUpdates
    update_id: int = 0
    question: str | None = None  # the key of the question the last message answered
    done: bool = False


@dataclass
class Crowd:
    """The residents' side: counts what the bot is sent and what it answers."""

    residents: dict[int, Resident] = field(default_factory=dict)
    started_at: float = 0.0
    stopped: bool = False
    think: float = 0.0  # seconds a resident reads a prompt before answering it (0: at once)
    pushed_ids: list[int] = field(default_factory=list)  # every update a resident sent, in order
    answers: list[tuple[int, int, str]] = field(default_factory=list)  # (update_id, user, question), by id
    confirmed: set[tuple[int, str]] = field(default_factory=set)  # (user, question) confirmed by an offset
    confirmed_upto: int = 0  # answers[:confirmed_upto] are all confirmed
    latencies: list[tuple[float, float, bool]] = field(default_factory=list)  # (pushed at, seconds, was an answer)
    completed: int = 0
    last_done_at: float = 0.0
    bot_sends: int = 0
    last_send_at: float = 0.0
    unexpected: int = 0
    unexpected_samples: list[str] = field(default_factory=list)
    stray_prompts: int = 0  # a prompt that came while the resident was not waiting (a duplicate)
    nudged: int = 0
    resent_seen: int = 0  # repeated prompts (after a restart) of questions already answered


def fake_server_main(mind: Mind) -> None:
    from aiohttp import web

    import tests.fake_telegram as fake_module

    fake_module._MAX_STORED_MESSAGES_PER_CHAT = 4  # 10,000 chats x 40 messages would be the biggest thing here

    crowd = Crowd()

    class Fake(fake_module.FakeTelegram):
        max_offset = 0
        get_updates_calls = 0

        def _confirm(self, offset: int) -> None:
            # ids only grow: an update is confirmed (the bot has stored it) once an offset passed it
            self.max_offset = max(self.max_offset, offset)
            super()._confirm(offset)

        async def _get_updates(self, params: dict) -> Any:
            self.get_updates_calls += 1
            return await super()._get_updates(params)

        async def _send_message(self, params: dict) -> Any:
            reply = await super()._send_message(params)
            if reply.ok:
                on_bot_message(int(params["chat_id"]), str(params.get("text") or ""))
            return reply

    fake = Fake(TOKEN, global_limit=None, private_limit_per_second=None)
    fake.sent = deque(maxlen=100)  # type: ignore[assignment]  # only for debugging; a list would grow by 200,000

    def push(resident: Resident, text: str, question: str | None = None) -> None:
        resident.update_id = fake.message(resident.user, resident.user, text)
        resident.pushed_at = time.time()
        resident.awaiting, resident.question = True, question
        crowd.pushed_ids.append(resident.update_id)
        if question is not None:
            crowd.answers.append((resident.update_id, resident.user, question))

    def on_bot_message(chat_id: int, text: str) -> None:
        now = time.time()
        crowd.bot_sends += 1
        crowd.last_send_at = now
        resident = crowd.residents.get(chat_id)
        if resident is None:
            return
        kind, answer = mind.classify(chat_id, text)
        if kind == "info":
            return
        if RESENT in text and kind == f"q{resident.question}":
            crowd.resent_seen += 1  # a repeat of a question already answered: a person reads the note
            return
        if kind == "unexpected" or (kind.startswith("q") and answer is None):
            crowd.unexpected += 1
            if len(crowd.unexpected_samples) < 5:
                crowd.unexpected_samples.append(f"{chat_id}: {text[:200]}")
            return  # the orchestrator nudges residents who wait on a quiet bot
        if not resident.awaiting:
            crowd.stray_prompts += 1
            return
        crowd.latencies.append((resident.pushed_at, now - resident.pushed_at, resident.question is not None))
        resident.awaiting = False
        if kind == "done":
            if not resident.done:
                resident.done = True
                crowd.completed += 1
                crowd.last_done_at = now
            return
        question = kind[1:] if kind.startswith("q") else None
        if crowd.think:
            asyncio.get_running_loop().call_later(crowd.think, answer_now, resident, answer or "", question)
        else:
            answer_now(resident, answer or "", question)

    def answer_now(resident: Resident, text: str, question: str | None) -> None:
        if not crowd.stopped:
            push(resident, text, question)

    async def start(request: web.Request) -> web.Response:
        body = await request.json()
        count, campaign, ramp = int(body["residents"]), int(body["campaign"]), float(body.get("ramp", 0))
        crowd.started_at, crowd.think = time.time(), float(body.get("think", 0))
        for n in range(count):
            resident = crowd.residents[FIRST_USER + n] = Resident(FIRST_USER + n)
            push(resident, f"/start ks{campaign}")
            if ramp and n % 100 == 99:
                await asyncio.sleep(ramp * 100 / count)
        return web.json_response({"ok": True})

    async def stop(_request: web.Request) -> web.Response:
        crowd.stopped = True
        return web.json_response({"ok": True})

    def confirm() -> None:
        answers = crowd.answers
        while crowd.confirmed_upto < len(answers) and answers[crowd.confirmed_upto][0] < fake.max_offset:
            crowd.confirmed.add(answers[crowd.confirmed_upto][1:])
            crowd.confirmed_upto += 1

    async def stats(_request: web.Request) -> web.Response:
        confirm()
        return web.json_response({
            "residents": len(crowd.residents), "completed": crowd.completed, "pushed": len(crowd.pushed_ids),
            "answers_pushed": len(crowd.answers), "answers_confirmed": len(crowd.confirmed),
            "awaiting": sum(r.awaiting for r in crowd.residents.values()),
            "bot_sends": crowd.bot_sends, "last_send_at": crowd.last_send_at, "last_done_at": crowd.last_done_at,
            "started_at": crowd.started_at, "pending_updates": fake.pending_updates, "max_offset": fake.max_offset,
            "get_updates_calls": fake.get_updates_calls, "unexpected": crowd.unexpected,
            "unexpected_samples": crowd.unexpected_samples, "stray_prompts": crowd.stray_prompts,
            "nudged": crowd.nudged, "resent_seen": crowd.resent_seen, "send_errors": len(fake.errors),
            "rejected_429": fake.rejected_429,
        })

    async def waiting(_request: web.Request) -> web.Response:
        return web.json_response([[r.user, r.update_id] for r in crowd.residents.values() if r.awaiting])

    async def nudge(request: web.Request) -> web.Response:
        # what a person does when the bot went quiet: ask for the survey again, which resumes it
        for user in await request.json():
            resident = crowd.residents[int(user)]
            if resident.awaiting and not resident.done:
                push(resident, "/khaosat")
                crowd.nudged += 1
        return web.json_response({"ok": True})

    async def latencies(_request: web.Request) -> web.Response:
        return web.json_response(crowd.latencies)

    async def ledger(_request: web.Request) -> web.Response:
        confirm()
        return web.json_response({
            "confirmed_answers": sorted(crowd.confirmed), "answer_ids": [a[0] for a in crowd.answers],
            "confirmed_ids": [i for i in crowd.pushed_ids if i < fake.max_offset],
        })

    async def expected(_request: web.Request) -> web.Response:
        return web.json_response(mind.report())

    async def serve() -> None:
        await fake.start()
        await serve_control(fake.url, [
            web.post("/start", start), web.post("/stop", stop), web.get("/stats", stats),
            web.get("/waiting", waiting), web.post("/nudge", nudge), web.get("/latencies", latencies),
            web.get("/ledger", ledger), web.get("/mind", expected),
        ])

    asyncio.run(serve())


# ==================================================================================================
# The bot (runs in its own process: `--run-bot`, killed and restarted by the orchestrator)
# ==================================================================================================


def bot_settings(environ: dict[str, str]) -> Settings:
    from bot.config import DEFAULT_CONFIG, build

    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["quiet_hours"] = {"start": "00:00", "end": "00:00"}
    raw["telegram"]["per_bot_per_second"] = BOT_LIMIT_PER_SECOND  # the fake server has no global limit
    return build(raw, environ)


def run_bot_main() -> None:
    import logging

    from bot.cli import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = bot_settings(dict(os.environ))
    profile = os.environ.get("LANGSO_BENCH_PROFILE")
    if not profile:
        asyncio.run(serve(settings))
        return
    import cProfile  # where the bot's CPU goes (--profile): a graceful stop writes the file

    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(serve(settings))
    profiler.disable()
    profiler.dump_stats(f"{profile}.{os.getpid()}")


# ==================================================================================================
# The orchestrator
# ==================================================================================================


class FakeServer:
    def __init__(self, command: list[str]) -> None:
        """`command`: the script (and its arguments) that runs `fake_server_main` with the residents' mind."""
        self.process = subprocess.Popen([sys.executable, *command], stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline().split()  # type: ignore[union-attr]
        assert ready, ready
        assert ready[0] == "READY", ready
        self.api, self.control = ready[1], ready[2]

    async def get(self, path: str) -> Any:
        import aiohttp

        async with aiohttp.ClientSession() as client, client.get(f"{self.control}{path}") as response:
            return await response.json()

    async def post(self, path: str, body: Any = None) -> Any:
        import aiohttp

        async with aiohttp.ClientSession() as client, client.post(f"{self.control}{path}", json=body) as response:
            return await response.json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a live process has used so far; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    utime, stime = stat.rpartition(")")[2].split()[11:13]  # fields 14 and 15 of proc(5), in clock ticks
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


class BotProcess:
    """The bot in a child process; its peak RSS (VmHWM) and CPU time are sampled from /proc while it lives."""

    def __init__(self, environ: dict[str, str], log: Path) -> None:
        with log.open("a") as out:
            out.write(f"\n===== bot started {datetime.now(UTC).isoformat()} =====\n")
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT), "--run-bot"],
                env=environ, stdout=out, stderr=subprocess.STDOUT,
            )
        self.peak_mb = 0.0
        self.cpu_seconds = 0.0  # user + system, at the last sample

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return
        if found := re.search(r"VmHWM:\s+(\d+) kB", status):
            self.peak_mb = max(self.peak_mb, int(found.group(1)) / 1024)
        self.cpu_seconds = cpu_seconds(self.process.pid) or self.cpu_seconds

    def kill(self) -> None:
        self.sample()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.sample()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Database:
    """The orchestrator's own (synchronous) view of the bot's database."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        from storage.db import sync_url

        self.engine = create_engine(sync_url(url))

    def unprocessed(self) -> int:
        from sqlmodel import Session, col, func, select

        from storage.models import InboxUpdate

        with Session(self.engine) as session:
            return session.exec(
                select(func.count()).select_from(InboxUpdate).where(col(InboxUpdate.processed_at).is_(None))
            ).one()

    def handled_before(self, keys: list[int], moment: datetime) -> set[int]:
        """Which of these updates were handled (turn committed) by `moment`."""
        from sqlmodel import Session, col, select

        from storage.models import InboxUpdate

        handled: set[int] = set()
        with Session(self.engine) as session:
            for start in range(0, len(keys), 500):
                rows = session.exec(
                    select(InboxUpdate.key, InboxUpdate.processed_at).where(
                        InboxUpdate.platform == "telegram", col(InboxUpdate.key).in_([str(k) for k in keys[start:start + 500]])
                    )
                ).all()
                handled |= {int(k) for k, at in rows if at is not None and _aware(at) <= moment}
        return handled

    def inbox(self) -> dict[int, float | None]:
        """Every Telegram update the bot kept -> when it was handled (wall time; None: not yet)."""
        from sqlmodel import Session, select

        from storage.models import InboxUpdate

        with Session(self.engine) as session:
            rows = session.exec(
                select(InboxUpdate.key, InboxUpdate.processed_at).where(InboxUpdate.platform == "telegram")
            ).all()
        return {int(key): _aware(at).timestamp() if at is not None else None for key, at in rows}

    def final(self) -> dict[str, Any]:
        """Stored answers per resident (by Telegram user id), submissions and inbox errors."""
        from sqlmodel import Session, func, select

        from storage.models import Household, Identity, InboxUpdate, Person, ResponseStatus, SurveyResponse

        with Session(self.engine) as session:
            rows = session.exec(
                select(Identity.user_id, SurveyResponse.answers, SurveyResponse.status)
                .join(Person, Person.id == Identity.person_id)
                .join(Household, Household.id == Person.household_id)
                .join(SurveyResponse, SurveyResponse.household_id == Household.id)
                .where(Identity.platform == "telegram")
            ).all()
            errors = session.exec(select(InboxUpdate.error).where(InboxUpdate.error != "")).all()
            stored = sum(len(a) for a in session.exec(select(SurveyResponse.answers)).all())
            households = session.exec(select(func.count()).select_from(Household)).one()
        return {
            "by_user": {int(user): dict(answers) for user, answers, _ in rows},
            "submitted": sum(status == ResponseStatus.SUBMITTED for _, _, status in rows),
            "stored": stored,
            "households": households,
            "inbox_errors": Counter(e[:120] for e in errors),
        }

    def close(self) -> None:
        self.engine.dispose()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def seed(url: str, residents: int, survey_code: str = "ho-gia-dinh") -> int:
    """A commune, a village and an open campaign of the survey (the head's part of the chat skipped)."""
    from handlers import admin
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade
    from storage.models import Campaign, Person

    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            await admin.add_place(session, "commune", "XA", "Xã Hòa Bình", None)
            village = await admin.add_place(session, "village", "THON", "Thôn Đông", "XA")
            head = Person(display_name="Trưởng thôn")
            session.add(head)
            await session.flush()
            campaign = Campaign(survey_code=survey_code, place_id=village.id, opened_by=head.id,
                                expected_households=residents)
            session.add(campaign)
            await session.commit()
            assert campaign.id is not None
            return campaign.id
    finally:
        await engine.dispose()


def question_names() -> dict[int, str]:
    """Question number ("Câu N") -> the key its answer has in survey_response.answers."""
    from handlers.surveys import engine
    from handlers.surveys.catalog import shipped

    survey = shipped()["ho-gia-dinh"]
    asked = [q.name for q in filter(engine.asked, survey.questions) if q.name not in SKIPPED]
    return dict(enumerate(asked, 1))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class Kill:
    at: float = 0.0  # wall time of the SIGKILL
    ready: float = 0.0  # wall time the restarted bot polled again
    confirmed_then: int = 0
    lost_replies: int = 0  # turns the killed process committed whose reply it never sent
    peak_before_mb: float = 0.0


# a deadline that ends the run with its own message (and checks the process meanwhile), not a cancellation
async def wait_polling(server: FakeServer, bot: BotProcess, timeout: float = 120.0) -> None:  # noqa: ASYNC109
    """Until the bot (re)started and called getUpdates."""
    before = (await server.get("/stats"))["get_updates_calls"]
    deadline = time.monotonic() + timeout
    while (await server.get("/stats"))["get_updates_calls"] <= before:
        if bot.process.poll() is not None:
            raise SystemExit(f"the bot exited with {bot.process.returncode} at start-up; see its log")
        if time.monotonic() > deadline:
            raise SystemExit("the bot did not start polling; see its log")
        await asyncio.sleep(0.1)


async def run(args: argparse.Namespace, url: str, log: Path) -> None:
    campaign = await seed(url, args.residents)
    outcome = await answering(args, url, log, campaign, [str(SCRIPT), "--fake-server"],
                              args.residents * ANSWERS_PER_RESIDENT)
    report(args, outcome, log)


@dataclass
class Outcome:
    """What an answering phase leaves: the fake server's counts and the bot's database, read at the end."""

    stats: dict[str, Any]
    ledger: dict[str, Any]
    latencies: list[tuple[float, float, bool]]
    mind: Any  # the residents' Mind.report()
    final: dict[str, Any]  # Database.final()
    inbox: dict[int, float | None]  # Database.inbox()
    phase: Phase
    kill: Kill
    bot: BotProcess
    stall_nudges: int


async def answering(
    args: argparse.Namespace, url: str, log: Path, campaign: int, fake_server: list[str], total_answers: int
) -> Outcome:
    """Residents answer the campaign's form (args: residents, kill_at, max_seconds, ramp, think, profile)
    through the fake server that `fake_server` starts, against one bot process, killed once if args.kill_at."""
    server = FakeServer(fake_server)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")}
    environ |= {"LANGSO_DATABASE_URL": url, "LANGSO_TELEGRAM_TOKEN": TOKEN, "LANGSO_TELEGRAM_API_URL": server.api}
    if args.profile:
        environ["LANGSO_BENCH_PROFILE"] = args.profile
    database = Database(url)
    bot = BotProcess(environ, log)
    kill = Kill()
    stall_nudges = 0
    try:
        await wait_polling(server, bot)
        bot.sample()
        cpu_from, cpu_spent = bot.cpu_seconds, 0.0  # the bot's CPU in the phase, not its start-up
        fake_cpu = cpu_seconds(server.process.pid) or 0.0
        await server.post("/start", {"residents": args.residents, "campaign": campaign, "ramp": args.ramp,
                                     "think": args.think})
        started = time.time()
        timed_out = False
        last_progress = (0, time.monotonic())
        last_report = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            bot.sample()
            stats = await server.get("/stats")
            if stats["completed"] >= args.residents:
                break
            if time.time() - started > args.max_seconds:
                timed_out = True
                break
            if bot.process.poll() is not None:
                raise SystemExit(f"the bot exited with {bot.process.returncode}; see {log}")
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                print(f"  [{time.time() - started:6.0f} s] completed {stats['completed']}/{args.residents}, "
                      f"answers confirmed {stats['answers_confirmed']}/{total_answers}, messages {stats['pushed']} "
                      f"(bot replies {stats['bot_sends'] / (time.time() - started):.0f}/s on average), "
                      f"waiting for the bot {stats['awaiting']}, not yet fetched {stats['pending_updates']}, "
                      f"bot RSS peak {bot.peak_mb:.0f} MB", file=sys.stderr, flush=True)
            # at the fraction of all answers, or of the time limit when the run will not finish in time
            if args.kill_at and not kill.at and (stats["answers_confirmed"] >= args.kill_at * total_answers
                                                 or time.time() - started >= args.kill_at * args.max_seconds):
                kill.peak_before_mb = bot.peak_mb
                bot.kill()
                cpu_from, cpu_spent = 0.0, cpu_spent + bot.cpu_seconds - cpu_from  # the new one's start-up counts
                kill.at, kill.confirmed_then = time.time(), stats["answers_confirmed"]
                # A resident still waiting whose last message the dead process had already handled gets
                # that reply from the restarted bot (replies are kept with their turn until sent); if it
                # never comes, the stall check below nudges the resident as a person would ask again.
                waiting = await server.get("/waiting")
                handled = await asyncio.to_thread(
                    database.handled_before, [u for _, u in waiting], datetime.fromtimestamp(kill.at, UTC)
                )
                lost = [user for user, update_id in waiting if update_id in handled]
                kill.lost_replies = len(lost)
                print(f"  [{kill.at - started:6.0f} s] SIGKILL at {stats['answers_confirmed']} answers confirmed; "
                      f"{len(lost)} replies handled but not yet sent; restarting", file=sys.stderr, flush=True)
                bot = BotProcess(environ, log)
                await wait_polling(server, bot)
                kill.ready = time.time()
                last_progress = (stats["bot_sends"], time.monotonic())
                continue
            # Fallback for anything else that leaves a resident waiting: the bot has been quiet for 30 s
            # with nothing left to fetch or to handle.
            if stats["bot_sends"] != last_progress[0]:
                last_progress = (stats["bot_sends"], time.monotonic())
            elif (time.monotonic() - last_progress[1] > 30 and stats["pending_updates"] == 0 and stats["awaiting"]
                  and await asyncio.to_thread(database.unprocessed) == 0):
                stuck = [user for user, _ in await server.get("/waiting")]
                stall_nudges += len(stuck)
                print(f"  the bot is idle while {len(stuck)} residents wait for it: nudging them", file=sys.stderr)
                await server.post("/nudge", stuck)
                last_progress = (stats["bot_sends"], time.monotonic())
        if timed_out:
            await server.post("/stop")
            ended = time.time()
            await drain(server, database)
        stats = await server.get("/stats")
        if not timed_out:
            ended = stats["last_done_at"]
        ledger = await server.get("/ledger")
        latencies = await server.get("/latencies")
        mind = await server.get("/mind")
        bot.stop()
        cpu_spent += bot.cpu_seconds - cpu_from
        fake_cpu = (cpu_seconds(server.process.pid) or 0.0) - fake_cpu
        final = await asyncio.to_thread(database.final)
        inbox = await asyncio.to_thread(database.inbox)
    finally:
        if bot.process.poll() is None:
            bot.stop()
        server.close()
        database.close()
    never = float("inf")
    phase = Phase(
        started, ended, timed_out,
        handled=sum(1 for at in inbox.values() if at is not None and started <= at <= ended),
        # an answer is stored in the turn that marks its update handled: count those handled by the end
        stored=sum(1 for i in ledger["answer_ids"] if (inbox.get(i) or never) <= ended),
        messages_lost=sum(1 for i in ledger["confirmed_ids"] if inbox.get(i) is None),
        confirmed_messages=len(ledger["confirmed_ids"]), bot_cpu=cpu_spent,
        fake_cpu=fake_cpu,
    )
    return Outcome(stats, ledger, latencies, mind, final, inbox, phase, kill, bot, stall_nudges)


# past the deadline the run goes on to its report, so this is not a cancellation
async def drain(server: FakeServer, database: Database, timeout: float = 300.0) -> None:  # noqa: ASYNC109
    """After the time limit: let the bot store and handle what the residents already sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = await server.get("/stats")
        if (stats["pending_updates"] == 0 and time.time() - stats["last_send_at"] > 3
                and await asyncio.to_thread(database.unprocessed) == 0):
            return
        await asyncio.sleep(1)
    print("  the bot did not finish the last messages within the drain time", file=sys.stderr)


@dataclass
class Phase:
    """The answering phase, from the first resident's /start to the last thank-you (or the time limit)."""

    started: float
    ended: float
    timed_out: bool
    handled: int  # messages handled in the phase
    stored: int  # answers stored in the phase
    messages_lost: int  # updates confirmed by the getUpdates offset but never handled (after the drain)
    confirmed_messages: int
    bot_cpu: float  # CPU seconds (user + system) the bot spent from the first /start to its stop
    fake_cpu: float  # and the fake server with the residents, on the same machine


def report(args: argparse.Namespace, outcome: Outcome, log: Path) -> None:
    stats, final, latencies, phase, kill, bot = (
        outcome.stats, outcome.final, outcome.latencies, outcome.phase, outcome.kill, outcome.bot
    )
    confirmed: list[tuple[int, str]] = outcome.ledger["confirmed_answers"]
    names = question_names()
    started, wall = phase.started, max(phase.ended - phase.started, 1e-9)
    by_user: dict[int, dict] = final["by_user"]
    missing = [(u, q) for u, q in confirmed if names[int(q)] not in by_user.get(u, {})]
    answer_latencies = [seconds for _, seconds, answer in latencies if answer]
    all_latencies = [seconds for _, seconds, _ in latencies]
    clear_of_kill = [
        seconds for pushed, seconds, answer in latencies
        if answer and not (kill.at and pushed < kill.ready and pushed + seconds > kill.at)
    ]
    peak = max(bot.peak_mb, kill.peak_before_mb)
    print(f"\nsurveys [{args.residents} residents x ~20 messages ({ANSWERS_PER_RESIDENT} answers), "
          f"{'SQLite' if args.database_url is None else 'PostgreSQL'}; bot per_bot_per_second raised to "
          f"{BOT_LIMIT_PER_SECOND} (fake server: no global or per-chat limit), per_private_per_second 1]")
    if phase.timed_out:
        print(f"  STOPPED at the {args.max_seconds:g} s limit: figures are for what completed by then "
              f"({stats['completed']} of {args.residents} residents)")
    print(f"  answering phase: {wall:.1f} s")
    print(f"  answers stored: {phase.stored} in the answering phase -> {phase.stored / wall:.1f} answers/s")
    print(f"  messages handled: {phase.handled} -> {phase.handled / wall:.1f} messages/s "
          f"({stats['pushed']} sent by residents in all, {stats['bot_sends']} bot messages)")
    if not kill.at:  # across a kill the restarted bot's start-up would count
        print(f"  bot CPU in the phase: {phase.bot_cpu / max(phase.handled, 1) * 1000:.1f} ms per message; "
              f"the fake server with the residents: {phase.fake_cpu / max(phase.handled, 1) * 1000:.1f} ms")
    print(f"  answer -> next question: p50 {percentile(answer_latencies, 50) * 1000:.0f} ms, "
          f"p99 {percentile(answer_latencies, 99) * 1000:.0f} ms over {len(answer_latencies)} answers"
          + (f"; not across the kill: p50 {percentile(clear_of_kill, 50) * 1000:.0f} ms, "
             f"p99 {percentile(clear_of_kill, 99) * 1000:.0f} ms" if kill.at else ""))
    print(f"  any message -> the bot's next prompt: p50 {percentile(all_latencies, 50) * 1000:.0f} ms, "
          f"p99 {percentile(all_latencies, 99) * 1000:.0f} ms over {len(all_latencies)} messages")
    print(f"  bot peak RSS: {peak:.0f} MB (goal <= 200 MB)"
          + (f"; {kill.peak_before_mb:.0f} MB before the kill, {bot.peak_mb:.0f} MB after the restart" if kill.at else ""))
    if kill.at:
        print(f"  kill test: SIGKILL at {kill.at - started:.0f} s ({kill.confirmed_then} answers confirmed), "
              f"polling again {kill.ready - kill.at:.1f} s later; {kill.lost_replies} replies handled but not sent "
              f"at the kill (sent again by the restarted bot); {stats['resent_seen']} repeated prompts of questions "
              f"already answered, ignored as a person would")
    print(f"  answers lost: {len(confirmed) - final['stored']} "
          f"(= {len(confirmed)} confirmed by the getUpdates offset - {final['stored']} in survey_response); "
          f"confirmed answers missing from their household's row: {len(missing)}; messages confirmed but never "
          f"handled: {phase.messages_lost} of {phase.confirmed_messages}")
    print(f"  residents completed: {stats['completed']} of {args.residents} (thanked by the bot); "
          f"responses submitted in the database: {final['submitted']}; households: {final['households']}")
    report_oddities(outcome, log)


def report_oddities(outcome: Outcome, log: Path) -> None:
    """Anything the residents did not expect, errors kept with inbox rows, and the bot log's warnings."""
    stats, final = outcome.stats, outcome.final
    if stats["unexpected"] or stats["stray_prompts"] or outcome.stall_nudges or stats["send_errors"]:
        print(f"  oddities: {stats['unexpected']} unexpected bot messages, {stats['stray_prompts']} duplicate prompts, "
              f"{outcome.stall_nudges} residents nudged after the bot went idle, {stats['send_errors']} failed sends")
        for sample in stats["unexpected_samples"]:
            print(f"    unexpected: {sample!r}")
    if final["inbox_errors"]:
        print(f"  inbox rows with an error: {sum(final['inbox_errors'].values())}: "
              f"{dict(final['inbox_errors'].most_common(3))}")
    print(f"  bot log: {log} ({log_summary(log)})", flush=True)


def log_summary(log: Path) -> str:
    levels: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if found := re.match(r"\S+ \S+ (WARNING|ERROR|CRITICAL) ", line):
            levels[found.group(1)] += 1
    return ", ".join(f"{n} {level}" for level, n in sorted(levels.items())) or "no warnings or errors"


def fresh_postgres(url: str) -> tuple[str, str]:
    """A new database next to the one named (the run starts empty); returns (its URL, its name)."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"langso_bench_{uuid.uuid4().hex[:10]}"
    conninfo = (f"host={parsed.host or '127.0.0.1'} port={parsed.port or 5432} user={parsed.username or 'postgres'} "
                f"dbname={parsed.database or 'postgres'}" + (f" password={parsed.password}" if parsed.password else ""))
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False), conninfo


def drop_postgres(conninfo: str, url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--kill-at", type=float, default=0.3,
                        help="SIGKILL the bot once this fraction of all answers is confirmed (0: no kill)")
    parser.add_argument("--database-url", help="PostgreSQL server URL: a fresh database is made next to it "
                                               "(default: a temporary SQLite file)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop the residents after this long")
    parser.add_argument("--ramp", type=float, default=0, help="start the residents over this many seconds")
    parser.add_argument("--think", type=float, default=0,
                        help="seconds a resident reads each prompt before answering (0: at once)")
    parser.add_argument("--log", type=Path, help="the bot's log (default: a new file in /tmp)")
    parser.add_argument("--profile", help="cProfile the bot into PROFILE.<pid> (slows it down)")
    parser.add_argument("--fake-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-bot", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_server:
        fake_server_main(ShippedForm())
        return
    if args.run_bot:
        run_bot_main()
        return
    log = args.log or Path(tempfile.mkstemp(prefix="langso-surveys-bot-", suffix=".log")[1])
    with tempfile.TemporaryDirectory(prefix="langso-surveys-") as tmp:
        if args.database_url:
            url, conninfo = fresh_postgres(args.database_url)
            try:
                asyncio.run(run(args, url, log))
            finally:
                drop_postgres(conninfo, url)
        else:
            asyncio.run(run(args, f"sqlite:///{Path(tmp) / 'bench.db'}", log))


if __name__ == "__main__":
    main()
