"""/baocao: the smart-village scorecard, as text and as a chart; /xuat: the answers as a file for the
people responsible for that place, every copy recorded. `langso export` shares `export`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit
from handlers.chat import ChatKind, Outgoing, Upload
from handlers.context import Turn
from handlers.people import place_by_code
from handlers.surveys.answer_files import file_links
from handlers.surveys.campaigns import staff_villages
from handlers.surveys.catalog import Catalog
from handlers.surveys.chart import bar_chart
from handlers.surveys.definition import Survey
from handlers.surveys.engine import number_text
from handlers.surveys.export import FORMATS, LABELS, ExportOptions, Submission, to_bytes, workbook
from handlers.surveys.scorecard import Score, representative, scorecard
from messages import label
from storage.models import Campaign, ExportRecord, Household, Place, ResponseStatus, SurveyResponse


async def latest_campaigns(session: AsyncSession, villages: list[Place]) -> tuple[str, dict[int, Campaign]] | None:
    """The survey most recently opened in these villages, and each village's latest campaign of it."""
    rows = await session.exec(
        select(Campaign).where(col(Campaign.place_id).in_([v.id for v in villages])).order_by(col(Campaign.id).desc())
    )
    campaigns = list(rows.all())
    if not campaigns:
        return None
    code = campaigns[0].survey_code
    latest: dict[int, Campaign] = {}
    for campaign in campaigns:
        if campaign.survey_code == code:
            latest.setdefault(campaign.place_id, campaign)
    return code, latest


async def surveys_opened_in(session: AsyncSession, villages: list[Place]) -> list[str]:
    """The codes of the surveys ever opened in these villages, the most recently opened first."""
    rows = await session.exec(
        select(Campaign.survey_code, func.max(Campaign.id))
        .where(col(Campaign.place_id).in_([v.id for v in villages]))
        .group_by(col(Campaign.survey_code))
        .order_by(func.max(Campaign.id).desc())
    )
    return [code for code, _ in rows.all()]


async def submitted_answers(session: AsyncSession, campaign: Campaign) -> list[dict[str, object]]:
    rows = await session.exec(
        select(SurveyResponse.answers).where(
            SurveyResponse.campaign_id == campaign.id, SurveyResponse.status == ResponseStatus.SUBMITTED
        )
    )
    return [dict(answers) for answers in rows.all()]


@dataclass(frozen=True)
class VillageScores:
    village: Place
    households: int
    expected: int | None  # as the head estimated when opening the survey
    scores: list[Score]

    @property
    def representative(self) -> bool:
        return representative(self.households, self.expected)


async def village_scores(
    session: AsyncSession, surveys: Catalog, villages: list[Place], targets: Mapping[str, float], today: str
) -> tuple[Survey, list[VillageScores]] | None:
    """The scorecard of the survey most recently opened in `villages`, one row per village that has it
    (/baocao and the web console's survey page). None when none of them has a campaign."""
    found = await latest_campaigns(session, villages)
    survey = surveys.get(found[0]) if found else None
    if found is None or survey is None:
        return None
    opened = [(v, found[1][v.id]) for v in villages if v.id in found[1]]
    answers = [await submitted_answers(session, campaign) for _, campaign in opened]

    def score() -> list[VillageScores]:  # pure Python over every household's answers: off the event loop
        return [VillageScores(village, len(sets), campaign.expected_households, scorecard(survey, sets, targets, today))
                for (village, campaign), sets in zip(opened, answers, strict=True)]

    return survey, await asyncio.to_thread(score)


async def chart(survey: Survey, results: list[VillageScores]) -> bytes:
    """The scorecard as a PNG, drawn in a worker thread (matplotlib takes a while)."""
    return await asyncio.to_thread(
        bar_chart, survey.title, [(r.village.name, r.scores) for r in results], label("target")
    )


async def report(turn: Turn, args: str) -> None:
    """/baocao [MÃ]: a village head sees their village; a commune official every village side by side."""
    villages = await staff_villages(turn.session, await turn.actor(), "follow", args.strip())
    if not villages:
        turn.say("survey_staff_only")
        return
    today = turn.local(turn.now).date().isoformat()
    found = await village_scores(turn.session, turn.surveys, villages, turn.settings.targets, today)
    if found is None:
        turn.say("survey_no_campaign")
        return
    survey, results = found
    turn.say("survey_report", title=survey.title, villages=results, chart=turn.incoming.sends_files,
             number=number_text)
    if not turn.incoming.sends_files:
        return
    png = await chart(survey, results)
    turn.reply.messages.append(Outgoing(turn.incoming.chat, "", upload=Upload("photo", "baocao.png", png)))


@dataclass(frozen=True)
class Exported:
    content: bytes
    households: int
    place_ids: list[int]  # the villages whose households are in the file, ascending
    left_out: list[str]  # the repeats' sheets a CSV cannot hold (it is the households' sheet only)


async def export(
    session: AsyncSession, survey: Survey, villages: list[Place], fmt: str, tz: ZoneInfo,
    options: ExportOptions = LABELS, *, public_url: str, now: datetime,
) -> Exported:
    """`public_url`: where the bot's web server is reached, for the links to answer files ("": none)."""
    rows = await session.exec(
        select(Place, Household, SurveyResponse)
        .join(Household, col(Household.id) == SurveyResponse.household_id)
        .join(Campaign, col(Campaign.id) == SurveyResponse.campaign_id)
        .join(Place, col(Place.id) == Campaign.place_id)
        .where(Campaign.survey_code == survey.code, col(Campaign.place_id).in_([v.id for v in villages]))
        .order_by(Place.name, Household.head_name, col(Household.id))
    )
    found = list(rows.all())
    link = await file_links(session, [r.id for _, _, r in found if r.id is not None], now, public_url)
    options = replace(options, link=link)
    # off the event loop: a commune's XLSX (3,000 households, 130,000 cells) takes seconds to write
    sheets = await asyncio.to_thread(workbook, survey, [Submission(p.name, h, r) for p, h, r in found], tz, options)
    content = await asyncio.to_thread(to_bytes, sheets, fmt)
    left_out = [s.title for s in sheets[1:]] if fmt == "csv" else []
    return Exported(content, len(found), sorted({p.id for p, _, _ in found}), left_out)


async def record_export(
    session: AsyncSession, exported: Exported, *, survey: Survey, scope: Place, fmt: str, via: str,
    person_id: int | None, at: datetime,
) -> None:
    """Every copy of households' answers is written down: by whom, how, and which places' households
    left the bot in it (not merely the place asked for)."""
    session.add(ExportRecord(person_id=person_id, via=via, survey_code=survey.code, place_id=scope.id,
                             place_ids=exported.place_ids, format=fmt, households=exported.households, at=at))
    await audit.record(session, "export", actor_id=person_id, at=at, place_id=scope.id, survey=survey.code,
                       via=via, format=fmt, households=exported.households, places=exported.place_ids)


@dataclass(frozen=True)
class ExportFile:
    name: str  # e.g. "lang-so-thon-1-20250301.xlsx"
    content: bytes
    households: int
    left_out: list[str]  # the repeats' sheets a CSV leaves out


async def export_file(
    session: AsyncSession, surveys: Catalog, villages: list[Place], code: str, fmt: str, *, via: str,
    person_id: int | None, now: datetime, tz: ZoneInfo, public_url: str, survey_code: str = "",
) -> ExportFile | None:
    """/xuat's and the web console's file of `villages`' answers (the villages a person may export,
    narrowed to the place `code` names: `staff_villages(..., "export", code)`), recorded. The survey is
    `survey_code`, else the one most recently opened there; None when there is none."""
    if survey_code:
        survey = surveys.get(survey_code)
    else:
        found = await latest_campaigns(session, villages)
        survey = surveys.get(found[0]) if found else None
    if survey is None:
        return None
    exported = await export(session, survey, villages, fmt, tz, public_url=public_url, now=now)
    place = await _named_place(session, code, villages)
    await record_export(session, exported, survey=survey, scope=place, fmt=fmt, via=via, person_id=person_id, at=now)
    stamp = now.astimezone(tz).strftime("%Y%m%d")
    return ExportFile(f"{survey.code}-{place.code}-{stamp}.{fmt}".lower(), exported.content, exported.households,
                      exported.left_out)


async def export_command(turn: Turn, args: str) -> None:
    """/xuat [MÃ] [csv]"""
    if turn.incoming.chat_kind is ChatKind.GROUP:  # the file holds households' answers: never in a group
        turn.say("survey_private_data")
        return
    words = args.split()
    fmt = next((w.lower() for w in words if w.lower() in FORMATS), "xlsx")
    code = next((w for w in words if w.lower() not in FORMATS), "")
    villages = await staff_villages(turn.session, await turn.actor(), "export", code)
    if not villages:
        turn.say("survey_staff_only")
        return
    if not turn.incoming.sends_files:
        turn.say("survey_export_no_files", code=code or villages[0].code, fmt=fmt)
        return
    done = await export_file(turn.session, turn.surveys, villages, code, fmt, via=turn.incoming.platform,
                             person_id=turn.person.id, now=turn.now, tz=turn.settings.timezone,
                             public_url=turn.settings.links.console_url)
    if done is None:
        turn.say("survey_no_campaign")
        return
    turn.say("survey_export_ready", households=done.households, fmt=fmt, left_out=done.left_out, code=code)
    turn.reply.messages.append(Outgoing(turn.incoming.chat, "", upload=Upload("document", done.name, done.content)))


async def _named_place(session: AsyncSession, code: str, villages: list[Place]) -> Place:
    """What the export is of, for the record: the place asked for, else the one village, else its commune."""
    place = await place_by_code(session, code) if code else None
    if place is None and len(villages) > 1 and villages[0].parent_id is not None:
        place = await session.get(Place, villages[0].parent_id)
    return place or villages[0]
