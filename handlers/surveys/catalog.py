"""The surveys the bot can run: the files shipped in messages/surveys/, and those imported with
`langso survey import` into the database (an import with the same code replaces the shipped one)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.surveys.definition import Survey
from handlers.surveys.form_files import pack, unpack
from handlers.surveys.forms import SUFFIXES, load_survey
from storage.models import SurveyForm

SHIPPED = Path(__file__).resolve().parents[2] / "messages" / "surveys"


def shipped() -> dict[str, Survey]:
    surveys = (load_survey(p.name, p.read_bytes()) for p in sorted(SHIPPED.iterdir()) if p.suffix in SUFFIXES)
    return {s.code: s for s in surveys}


class Catalog:
    def __init__(self) -> None:
        self._shipped = shipped()
        self._surveys = dict(self._shipped)
        self._seen: tuple[int, datetime | None] = (0, None)

    async def refresh(self, session: AsyncSession) -> None:
        """Take in imports made since the last look (by the CLI, or another bot process): one cheap
        query when nothing changed."""
        rows = await session.exec(select(func.count(), func.max(SurveyForm.imported_at)))
        seen = tuple(rows.one())
        if seen == self._seen:
            return
        forms = await session.exec(select(SurveyForm))
        imported = {}
        for form in forms.all():
            survey = load_survey(form.filename, *unpack(form.content))
            imported[survey.code] = survey
        self._surveys = {**self._shipped, **imported}
        self._seen = seen  # type: ignore[assignment]

    def is_shipped(self, code: str) -> bool:
        return code in self._shipped

    def get(self, code: str) -> Survey | None:
        return self._surveys.get(code)

    def title(self, code: str) -> str:
        survey = self._surveys.get(code)
        return survey.title if survey else code

    def all(self) -> list[Survey]:
        return sorted(self._surveys.values(), key=lambda s: s.title)


async def keep(
    session: AsyncSession, survey: Survey, filename: str, content: bytes, at: datetime,
    media: Mapping[str, bytes] | None = None,
) -> None:
    """An imported form goes into the database with the files it names (every process's catalog takes
    it in at its next refresh), replacing an earlier import of the same code."""
    form = await session.get(SurveyForm, survey.code) or SurveyForm(code=survey.code, filename=filename, content=b"")
    form.filename, form.content, form.imported_at = filename, pack(content, media or {}), at
    session.add(form)
