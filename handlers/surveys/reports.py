"""/baocao: the smart-village scorecard, as text and as a chart; /xuat: the answers as a file for the
people responsible for that place, every copy recorded. `langso export` shares `export`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit
from handlers.chat import ChatKind, Outgoing, Upload
from handlers.context import Turn
from handlers.people import place_by_code
from handlers.surveys.campaigns import staff_villages
from handlers.surveys.chart import bar_chart
from handlers.surveys.definition import Survey
from handlers.surveys.export import FORMATS, Table, table, to_bytes
from handlers.surveys.engine import number_text
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


async def report(turn: Turn, args: str) -> None:
    """/baocao [MÃ]: a village head sees their village; a commune official every village side by side."""
    villages = await staff_villages(turn.session, await turn.actor(), "follow", args.strip())
    if not villages:
        turn.say("survey_staff_only")
        return
    found = await latest_campaigns(turn.session, villages)
    survey = turn.surveys.get(found[0]) if found else None
    if found is None or survey is None:
        turn.say("survey_no_campaign")
        return
    today = turn.local(turn.now).date().isoformat()
    results = []
    for village in villages:
        campaign = found[1].get(village.id)
        if campaign is None:
            continue
        answers = await submitted_answers(turn.session, campaign)
        scores = scorecard(survey, answers, turn.settings.targets, today)
        results.append(VillageScores(village, len(answers), campaign.expected_households, scores))
    turn.say("survey_report", title=survey.title, villages=results, chart=turn.incoming.sends_files,
             number=number_text)
    if not turn.incoming.sends_files:
        return
    chart = await asyncio.to_thread(
        bar_chart, survey.title, [(r.village.name, r.scores) for r in results], label("target")
    )
    turn.reply.messages.append(Outgoing(turn.incoming.chat, "", upload=Upload("photo", "baocao.png", chart)))


@dataclass(frozen=True)
class Exported:
    content: bytes
    households: int
    place_ids: list[int]  # the villages whose households are in the file, ascending


async def export(session: AsyncSession, survey: Survey, villages: list[Place], fmt: str, tz: ZoneInfo) -> Exported:
    rows = await session.exec(
        select(Place, Household, SurveyResponse)
        .join(Household, col(Household.id) == SurveyResponse.household_id)
        .join(Campaign, col(Campaign.id) == SurveyResponse.campaign_id)
        .join(Place, col(Place.id) == Campaign.place_id)
        .where(Campaign.survey_code == survey.code, col(Campaign.place_id).in_([v.id for v in villages]))
        .order_by(Place.name, Household.head_name, col(Household.id))
    )
    found = list(rows.all())
    data = table(survey, [(h, r) for _, h, r in found], tz)
    data = Table([label("col_village"), *data.header], [[p.name, *row] for (p, _, _), row in zip(found, data.rows, strict=True)])
    return Exported(to_bytes(data, fmt, survey.title), len(found), sorted({p.id for p, _, _ in found}))


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
    found = await latest_campaigns(turn.session, villages)
    survey = turn.surveys.get(found[0]) if found else None
    if survey is None:
        turn.say("survey_no_campaign")
        return
    exported = await export(turn.session, survey, villages, fmt, turn.settings.timezone)
    place = await _named_place(turn.session, code, villages)
    await record_export(turn.session, exported, survey=survey, scope=place, fmt=fmt, via=turn.incoming.platform,
                        person_id=turn.person.id, at=turn.now)
    stamp = turn.local(turn.now).strftime("%Y%m%d")
    name = f"{survey.code}-{place.code}-{stamp}.{fmt}".lower()
    turn.say("survey_export_ready", households=exported.households, fmt=fmt)
    turn.reply.messages.append(Outgoing(turn.incoming.chat, "", upload=Upload("document", name, exported.content)))


async def _named_place(session: AsyncSession, code: str, villages: list[Place]) -> Place:
    """What the export is of, for the record: the place asked for, else the one village, else its commune."""
    place = await place_by_code(session, code) if code else None
    if place is None and len(villages) > 1 and villages[0].parent_id is not None:
        place = await session.get(Place, villages[0].parent_id)
    return place or villages[0]
