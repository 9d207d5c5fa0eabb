"""A survey form uploaded in the web console, with the files it reads (select_one_from_file's lists,
pulldata's and instance()'s tables). They are read and checked exactly as `langso survey import --media`
does (`load_survey`: a FormError names the sheet, row and column of the first problem) and kept the same
way (`catalog.keep`); as the catalog is shared by every commune, the permission core decides
who may add or replace a survey, and the import is audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit
from handlers.permissions import Actor, Spot, may_import_survey
from handlers.surveys.catalog import Catalog, keep
from handlers.surveys.definition import Survey
from handlers.surveys.forms import load_survey
from storage.models import Campaign, Place


class ImportVerdict(StrEnum):
    IMPORTED = "imported"
    NOT_ALLOWED = "not_allowed"
    SHIPPED = "shipped"  # the code of a survey the bot ships: only the operator replaces it


@dataclass(frozen=True)
class Imported:
    verdict: ImportVerdict
    survey: Survey
    replaced: bool = False  # an earlier survey with the same code (form_id) was replaced


async def import_form(
    session: AsyncSession, actor: Actor, surveys: Catalog, filename: str, content: bytes, now: datetime,
    media: Mapping[str, bytes] | None = None,
) -> Imported:
    """`media`: the files the form reads, by bare file name. Raises FormError when the form is not one the
    bot can run (a file it reads missing or unreadable included); nothing is kept then."""
    survey = load_survey(filename, content, media)
    if surveys.is_shipped(survey.code):
        return Imported(ImportVerdict.SHIPPED, survey)
    opened_in = (await session.exec(
        select(Place).join(Campaign, col(Campaign.place_id) == Place.id).where(Campaign.survey_code == survey.code)
    )).all()
    if not may_import_survey(actor, [Spot.of(p) for p in opened_in]):
        return Imported(ImportVerdict.NOT_ALLOWED, survey)
    await surveys.refresh(session)
    replaced = surveys.get(survey.code) is not None
    await keep(session, survey, filename, content, now, media)
    await audit.record(session, "survey_imported", actor_id=actor.person_id, at=now, survey=survey.code,
                       questions=len(survey.questions), replaced=replaced, files=len(media or {}))
    return Imported(ImportVerdict.IMPORTED, survey, replaced)
