"""Survey turns per second with a repeat-heavy XLSForm (issue 18: one process, SQLite, goal >= 90 turns/s).

    python bench/survey_repeats.py              # 300 residents, 5 members x (7-8 questions + 2 plots x 3)
    python bench/survey_repeats.py --quick      # smoke run: 20 residents, 2 members, < 60 s

The form is built at run time with openpyxl and imported as `langso survey import` keeps it: a household
size, a member repeat counted from it (name, sex, age with a constraint, relation with a choice_filter on
the age, has a phone, the phone kinds (select_multiple, relevant on it), a date of birth, and an open plot
repeat inside each member: name, area (decimal), crop, ended by "không"), a calculate summing the ages
that a later note shows, one last household question. A campaign is opened in the seeded village.

Every resident answers through the fake Telegram Bot API against the real bot in a child process (the
parts of bench/surveys.py, without its kill): it reads each prompt, the member and plot it is about
(👤 lines), the question's label and its numbered choices, and answers as its household plan says, so
every answer is valid. It checks what it reads: the label names the right member or plot, the relation
offers only what the age allows, the note's sum is right.

Prints: turns (messages the bot handled) per second over the steady part (the middle 80 % of all turns,
from the 10th to the 90th percentile of the times they were handled) and over the whole phase, p50/p99
reply latency, the bot's CPU per turn and peak RSS, and the check: every answer in survey_response, at
its place in its instance, no instance too many. Exits 1 when an answer is lost or wrong.
The bot paces 1 message/s to each private chat, so one resident makes at most ~1 turn/s: 300 residents
allow ~300 turns/s, and what limits is then the bot process's CPU (one core: 1 / CPU seconds per turn).

Measured (2 shared cores, load 1.2-5.8 from other work): at commit c5ed64b 105.7 turns/s steady, bot
CPU 7.7 ms per turn, p50 1.6 s / p99 4.3 s (residents queue behind the busy bot), 165 MB peak RSS, 0 of
21,600 answers lost; before the statements were built once (02291e5) 80-83 turns/s at 10.7-10.9 ms.
The shipped flat form cost the same per message then (bench/surveys.py --residents 300 --kill-at 0
--think 1: 11.4 ms, 79 messages/s): the per-turn work (dispatch, statements, sending) sets the rate,
not the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

from bench.surveys import (  # noqa: E402 - after the path is set
    BOT_LIMIT_PER_SECOND,
    Outcome,
    answering,
    classify_step,
    fake_server_main,
    percentile,
    report_oddities,
    seed,
)
from handlers.surveys.catalog import keep  # noqa: E402
from handlers.surveys.forms import load_survey  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from tests.xlsforms import xlsform  # noqa: E402

FILENAME = "ho_nhan_khau.xlsx"
TITLE = "Nhân khẩu và ruộng đất"
SURVEY: list[list[object]] = [
    ["type", "name", "label", "required", "constraint", "relevant", "calculation", "repeat_count", "choice_filter"],
    ["integer", "hh_size", "Nhà mình có mấy người?", "yes", ". >= 1 and . <= 10"],
    ["begin_repeat", "members", "Thành viên", "", "", "", "", "${hh_size}"],
    ["text", "m_name", "Họ tên thành viên", "yes"],
    ["select_one sex", "sex", "Giới tính của ${m_name}", "yes"],
    ["integer", "age", "Tuổi của ${m_name}", "yes", ". >= 0 and . <= 110"],
    ["select_one relation", "relation", "Quan hệ của ${m_name} với chủ hộ", "yes", "", "", "", "",
     "min_age <= ${age}"],
    ["select_one yes_no", "has_phone", "${m_name} có điện thoại di động không?", "yes"],
    ["select_multiple phone", "phone_kind", "Loại điện thoại của ${m_name}", "yes", "", "${has_phone} = 'co'"],
    ["date", "dob", "Ngày sinh của ${m_name}", "yes", ". <= today()"],
    ["begin_repeat", "plots", "Mảnh ruộng"],
    ["text", "plot_name", "Tên mảnh ruộng", "yes"],
    ["decimal", "plot_area", "Diện tích ${plot_name} (m²)", "yes", ". > 0"],
    ["select_one crop", "plot_crop", "Trồng gì trên ${plot_name}?", "yes"],
    ["end_repeat"],
    ["end_repeat"],
    ["calculate", "total_age", "", "", "", "", "sum(${age})"],
    ["note", "age_note", "Tổng số tuổi cả nhà: ${total_age}"],
    ["select_one water", "water", "Nhà mình dùng nước gì?", "yes"],
]
CHOICES: list[list[object]] = [
    ["list_name", "name", "label", "min_age"],
    ["sex", "nam", "Nam"], ["sex", "nu", "Nữ"],
    ["relation", "chu_ho", "Chủ hộ", 18], ["relation", "vo_chong", "Vợ/chồng", 16], ["relation", "con", "Con", 0],
    ["relation", "bo_me", "Bố/mẹ", 36], ["relation", "chau", "Cháu", 0],
    ["yes_no", "co", "Có"], ["yes_no", "khong", "Không"],
    ["phone", "smart", "Điện thoại thông minh"], ["phone", "basic", "Điện thoại thường"],
    ["phone", "tablet", "Máy tính bảng"],
    ["crop", "lua", "Lúa"], ["crop", "ngo", "Ngô"], ["crop", "che", "Chè"],
    ["water", "may", "Nước máy"], ["water", "gieng", "Giếng"], ["water", "suoi", "Suối"],
]
SETTINGS: list[list[object]] = [["form_id", "form_title"], ["ho_nhan_khau", TITLE]]
VALUE = {(str(row[0]), str(row[2])): str(row[1]) for row in CHOICES[1:]}  # (list, label) -> the choice's value
MIN_AGE = {str(row[2]): int(str(row[3])) for row in CHOICES[1:] if row[0] == "relation"}
LIST_OF = {str(row[1]): str(row[0]).split()[1] for row in SURVEY[1:] if str(row[0]).startswith("select_")}
MULTIPLE = {str(row[1]) for row in SURVEY[1:] if str(row[0]).startswith("select_multiple")}
REPEATS = {"Thành viên": "members", "Mảnh ruộng": "plots"}  # a 👤 line's repeat label -> its name
# The label of every asked question as a pattern (its ${fields} are any text), tried in the form's order.
LABELS = [(str(row[1]), re.compile(re.sub(r"\\\$\\\{\w+\\\}", ".+", re.escape(str(row[2]))) + "$"), str(row[2]))
          for row in SURVEY[1:] if not str(row[0]).startswith(("begin_", "end_", "calculate", "note"))]


@dataclass(frozen=True)
class Member:
    name: str
    sex: str
    age: int
    relation: str
    phones: tuple[str, ...]  # labels; none: no phone
    born: str  # as typed (day/month/year)


MEMBERS = (
    Member("Lò Văn Pọm", "Nam", 45, "Chủ hộ", ("Điện thoại thông minh",), "15/03/1981"),
    Member("Lò Thị Mai", "Nữ", 41, "Vợ/chồng", ("Điện thoại thông minh", "Máy tính bảng"), "2/9/1984"),
    Member("Lò Văn Tùng", "Nam", 19, "Con", ("Điện thoại thường",), "20/11/2006"),
    Member("Lò Thị Hoa", "Nữ", 12, "Con", (), "1/6/2013"),
    Member("Lò Văn Sáng", "Nam", 70, "Bố/mẹ", ("Điện thoại thường",), "5/1/1956"),
)
CROPS = ("Lúa", "Ngô", "Chè")
WATER = "Giếng"


@dataclass(frozen=True)
class Plan:
    """What every household answers: how many members, and how many plots each one has."""

    members: int
    plots: tuple[int, ...]

    @staticmethod
    def of(quick: bool) -> Plan:
        return Plan(2, (2, 1)) if quick else Plan(5, (2,) * 5)

    @property
    def answers(self) -> int:
        """Answers stored per household (values, not the 'another plot?' replies)."""
        members = MEMBERS[:self.members]
        return 2 + sum(6 + bool(m.phones) + 3 * p for m, p in zip(members, self.plots, strict=True))

    @property
    def replies(self) -> int:
        """Messages answering the form per household: the answers and the 'another plot?' replies."""
        return self.answers + sum(self.plots)

    @property
    def turns(self) -> int:
        """Messages a resident sends: /start, consent, household, head, hamlet, the answers, one
        'another plot?' reply per plot, the submit."""
        return 5 + self.replies + 1


def _date(typed: str) -> str:
    day, month, year = typed.split("/")
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _plot_name(member: int, plot: int) -> str:
    return f"Ruộng {plot} của {MEMBERS[member - 1].name.split()[-1]}"


Where = list[str | int]  # a place in the answers: keys and 0-based instance indices


@dataclass
class Household:
    """One resident: the answers it gave, where it expects each to be stored."""

    expected: dict[str, tuple[Where, Any]] = field(default_factory=dict)


class RepeatsMind:
    """Residents of the repeat-heavy form, each answering from the prompt it reads (see the module)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.households: dict[int, Household] = {}
        self.wrong_labels = 0  # a label naming another member or plot than the 👤 line says
        self.filter_errors = 0  # relation choices other than those the member's age allows
        self.note_errors = 0  # the note's sum of ages wrong
        self.samples: list[str] = []

    def classify(self, user: int, text: str) -> tuple[str, str | None]:
        household = self.households.setdefault(user, Household())
        return classify_step(text, lambda prompt: self._question(household, prompt))

    def report(self) -> Any:
        return {
            "expected": {user: list(h.expected.values()) for user, h in self.households.items()},
            "wrong_labels": self.wrong_labels, "filter_errors": self.filter_errors, "note_errors": self.note_errors,
            "samples": self.samples,
        }

    def _odd(self, what: str, text: str) -> None:
        if len(self.samples) < 5:
            self.samples.append(f"{what}: {text[:300]}")

    def _question(self, household: Household, text: str) -> tuple[str, str | None] | None:
        at = {REPEATS.get(m.group(1), m.group(1)): int(m.group(2))
              for m in re.finditer(r"^👤 (.+?) (?:thứ )?(\d+)(?:/\d+)?$", text, re.MULTILINE)}
        member, plot = at.get("members", 0), at.get("plots", 0)
        if found := re.search(r"^Đã có (\d+) .+ Còn .+ nào nữa không\?$", text, re.MULTILINE):
            more = int(found.group(1)) < self.plan.plots[member - 1]
            if not more:
                household.expected[f"{member}#done"] = (["members", member - 1, "plots#done"], True)
            return f"qmembers.{member}.plots.{found.group(1)}.more", "có" if more else "không"
        asked = re.search(r"^Câu \d+/\d+: (.+)$", text, re.MULTILINE)
        if asked is None:
            return ("info", None) if "câu trả lời của hộ" in text else None  # the summary's first part
        label = asked.group(1)
        name, template = next(((n, t) for n, pattern, t in LABELS if pattern.match(label)), ("", ""))
        if not name:
            return "unexpected", None
        if member and template.replace("${m_name}", MEMBERS[member - 1].name).replace(
                "${plot_name}", _plot_name(member, plot)) != label:
            self.wrong_labels += 1
            self._odd("label", text)
        choices = {m.group(2): m.group(1) for m in re.finditer(r"^(\d+)\. (.+)$", text, re.MULTILINE)}
        typed, value = self._answer(name, member, plot, choices, text)
        if typed is None:
            return "unexpected", None
        place: Where = [name]
        if plot:
            place = ["members", member - 1, "plots", plot - 1, name]
        elif member:
            place = ["members", member - 1, name]
        household.expected[".".join(map(str, place))] = (place, value)
        if name == "water":  # the last question: the calculate is stored too
            ages = [m.age for m in MEMBERS[:self.plan.members]]
            household.expected["total_age"] = (["total_age"], sum(ages))
            if f"Tổng số tuổi cả nhà: {sum(ages)}\n" not in text:  # the note, above the question
                self.note_errors += 1
                self._odd("note", text)
        return f"q{'.'.join(map(str, place))}", typed

    def _answer(self, name: str, member: int, plot: int, choices: dict[str, str], text: str) -> tuple[str | None, Any]:
        """(what to type, the value stored) for this question; (None, None) when it cannot be answered."""
        who = MEMBERS[member - 1] if member else None

        def pick(*labels: str) -> tuple[str | None, Any]:
            numbers = [choices.get(label) for label in labels]
            if None in numbers:
                self._odd("choices", text)
                return None, None
            values = [VALUE[LIST_OF[name], label] for label in labels]
            return ", ".join(str(n) for n in numbers), values if name in MULTIPLE else values[0]

        if name == "hh_size":
            return str(self.plan.members), self.plan.members
        if name == "water":
            return pick(WATER)
        assert who is not None
        match name:
            case "m_name":
                return who.name, who.name
            case "sex":
                return pick(who.sex)
            case "age":
                return str(who.age), who.age
            case "relation":
                if sorted(choices) != sorted(label for label, low in MIN_AGE.items() if low <= who.age):
                    self.filter_errors += 1
                    self._odd("filter", text)
                return pick(who.relation)
            case "has_phone":
                return pick("Có" if who.phones else "Không")
            case "phone_kind":
                return pick(*who.phones)
            case "dob":
                return who.born, _date(who.born)
            case "plot_name":
                return _plot_name(member, plot), _plot_name(member, plot)
            case "plot_area":
                area = 1000 * plot + member + 0.5
                return f"{area:.1f}".replace(".", ","), area  # a Vietnamese decimal comma
            case "plot_crop":
                return pick(CROPS[(member + plot) % len(CROPS)])
        return None, None


# ==================================================================================================
# The orchestrator
# ==================================================================================================


async def import_and_open(url: str, residents: int) -> int:
    """The form imported as `langso survey import` keeps it, and a campaign of it in the seeded village."""
    with tempfile.TemporaryDirectory() as tmp:
        content = xlsform(Path(tmp), SURVEY, CHOICES, SETTINGS)
    survey = load_survey(FILENAME, content)
    campaign = await seed(url, residents, survey.code)  # migrates the database first
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            await keep(session, survey, FILENAME, content, datetime.now(UTC))
            await session.commit()
    finally:
        await engine.dispose()
    return campaign


@dataclass
class Check:
    """The database against what the residents answered."""

    expected: int = 0
    lost: list[str] = field(default_factory=list)  # missing, or another value, at its place
    extra_instances: int = 0  # a member or a plot nobody answered


def _at(answers: Any, place: Where) -> Any:
    for step in place:
        if isinstance(step, int):
            answers = answers[step] if isinstance(answers, list) and step < len(answers) else None
        else:
            answers = answers.get(step) if isinstance(answers, dict) else None
    return answers


def check(outcome: Outcome, plan: Plan) -> Check:
    result = Check()
    by_user: dict[int, dict[str, Any]] = outcome.final["by_user"]
    for user, expected in outcome.mind["expected"].items():
        answers = by_user.get(int(user), {})
        for place, value in expected:
            result.expected += 1
            stored = _at(answers, place)
            if stored != value and not (isinstance(value, float) and isinstance(stored, int | float)
                                        and abs(stored - value) < 1e-9):
                result.lost.append(f"{user} {'.'.join(map(str, place))}: {stored!r}, answered {value!r}")
        members = answers.get("members") or []
        result.extra_instances += max(0, len(members) - plan.members) + sum(
            max(0, len(m.get("plots") or []) - plots) for m, plots in zip(members, plan.plots, strict=False)
        )
    return result


def report(args: argparse.Namespace, plan: Plan, outcome: Outcome, result: Check, load: str, log: Path) -> None:
    stats, phase, bot = outcome.stats, outcome.phase, outcome.bot
    wall = max(phase.ended - phase.started, 1e-9)
    handled = sorted(at for at in outcome.inbox.values() if at is not None)
    low, high = percentile(handled, 10), percentile(handled, 90)
    steady = (0.8 * len(handled)) / max(high - low, 1e-9)
    answer_latencies = [seconds for _, seconds, answer in outcome.latencies if answer]
    mind = outcome.mind
    print(f"\nsurvey repeats [{args.residents} residents x {plan.turns} turns ({plan.members} members, plots "
          f"{'/'.join(map(str, plan.plots))}, {plan.answers} answers), one bot process, SQLite; bot "
          f"per_bot_per_second {BOT_LIMIT_PER_SECOND}, per_private_per_second 1; load before: {load}]")
    if phase.timed_out:
        print(f"  STOPPED at the {args.max_seconds:g} s limit ({stats['completed']} of {args.residents} residents done)")
    print(f"  turns handled: {phase.handled} in {wall:.1f} s -> {phase.handled / wall:.1f} turns/s over the phase; "
          f"steady part (10th-90th percentile of handling times, {high - low:.1f} s): {steady:.1f} turns/s "
          f"(goal >= 90)")
    print(f"  bot CPU in the phase: {phase.bot_cpu:.1f} s -> {phase.bot_cpu / max(phase.handled, 1) * 1000:.1f} ms "
          f"per turn (one core: at most {phase.handled / max(phase.bot_cpu, 1e-9):.0f} turns/s); the residents "
          f"(1 s per-chat pacing, {args.think:g} s reading each prompt) allow at most "
          f"~{args.residents / max(args.think, 1):.0f} turns/s; the fake server with the residents: "
          f"{phase.fake_cpu / max(phase.handled, 1) * 1000:.1f} ms per turn, same machine")
    print(f"  answer -> next prompt: p50 {percentile(answer_latencies, 50) * 1000:.0f} ms, "
          f"p99 {percentile(answer_latencies, 99) * 1000:.0f} ms over {len(answer_latencies)} answers")
    print(f"  bot peak RSS: {bot.peak_mb:.0f} MB")
    print(f"  answers lost or misplaced: {len(result.lost)} of {result.expected} (each looked up at its member and "
          f"plot in survey_response); instances too many: {result.extra_instances}; messages confirmed but never "
          f"handled: {phase.messages_lost}")
    for line in result.lost[:5]:
        print(f"    {line}")
    print(f"  residents completed: {stats['completed']} of {args.residents}; submitted: {outcome.final['submitted']}")
    if mind["wrong_labels"] or mind["filter_errors"] or mind["note_errors"]:
        print(f"  prompts read wrong: {mind['wrong_labels']} labels naming another member or plot, "
              f"{mind['filter_errors']} relation lists not as the age allows, {mind['note_errors']} wrong sums")
        for sample in mind["samples"]:
            print(f"    {sample!r}")
    report_oddities(outcome, log)


async def run(args: argparse.Namespace, plan: Plan, url: str, log: Path, load: str) -> bool:
    campaign = await import_and_open(url, args.residents)
    fake_server = [str(SCRIPT), "--fake-server", *(["--quick"] if args.quick else [])]
    outcome = await answering(args, url, log, campaign, fake_server, args.residents * plan.replies)
    result = check(outcome, plan)
    report(args, plan, outcome, result, load, log)
    return not result.lost and not result.extra_instances and outcome.stats["completed"] == args.residents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 residents, 2 members (< 60 s)")
    parser.add_argument("--residents", type=int, help="default 300 (--quick: 20)")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop the residents after this long")
    parser.add_argument("--ramp", type=float, default=0, help="start the residents over this many seconds")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds a resident reads each prompt before answering: at 1 s or more the bot's "
                             "1 message/s per chat never delays a reply, so latency is the bot's own")
    parser.add_argument("--log", type=Path, help="the bot's log (default: a new file in /tmp)")
    parser.add_argument("--profile", help="cProfile the bot into PROFILE.<pid> (slows it down)")
    parser.add_argument("--fake-server", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(kill_at=0)  # answering(): no kill here (bench/surveys.py tests that)
    args = parser.parse_args()
    plan = Plan.of(args.quick)
    if args.fake_server:
        fake_server_main(RepeatsMind(plan))
        return
    args.residents = args.residents or (20 if args.quick else 300)
    log = args.log or Path(tempfile.mkstemp(prefix="langso-survey-repeats-bot-", suffix=".log")[1])
    with tempfile.TemporaryDirectory(prefix="langso-survey-repeats-") as tmp:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        ok = asyncio.run(run(args, plan, f"sqlite:///{Path(tmp) / 'bench.db'}", log, load))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
