"""Files residents send as survey answers (image, audio, video and file questions).

The chat records the answer as the contract's dict (`answer_of`: media_id None) and, in the same
transaction, `remember_file`: a row the bot's collector (bot/answer_media.py) picks up within a second,
fetches from the platform once, keeps in the media store and writes the media_id into the answer. A row
rather than a scan of every response's JSON for media_id None: finding what is left to fetch is one
indexed query whatever the number of responses, a file that cannot be fetched is marked once and not
tried forever, and erasing a household's answers finds its files by response.

A file no answer holds any more (sent again, skipped, pruned as no longer relevant) is personal data
nobody can reach: `forget_dropped` deletes it with the turn that dropped it. One that cannot be fetched
is taken out of its answer (`unanswer`), so the survey asks the question again, and its sender is told
(`failed_notice`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import ColumnElement, delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.chat import Attachment
from handlers.media import MAX_BYTES as NOTICE_MAX_BYTES
from handlers.media import MB, ROUTE
from handlers.surveys import engine
from handlers.surveys.definition import Survey
from messages import render
from storage import media
from storage.models import AnswerFile, AnswerFileStatus, Media, SurveyResponse

# A photo as for notices (10 MB); anything else up to 20 MB, the most Telegram lets a bot download
# (getFile): a larger file could not be fetched at all. Zalo's bots receive photos only.
MAX_BYTES = {"photo": NOTICE_MAX_BYTES["photo"], "document": 20 * MB, "voice": 20 * MB, "audio": 20 * MB,
             "video": 20 * MB}

LINK_VALID = timedelta(days=30)  # an exported spreadsheet's links work this long


def limit_of(kind: str) -> int:
    """The most bytes an answer file of `kind` may have (the chat may refuse a larger one at once, from
    the size the platform says; the collector checks the bytes)."""
    return MAX_BYTES.get(kind, MAX_BYTES["document"])


def answer_of(attachment: Attachment) -> dict[str, object]:
    """The answer's value (survey_model.md): what the file is, media_id None until it is stored."""
    return {"kind": attachment.kind, "platform": attachment.platform, "ref": attachment.ref,
            "filename": attachment.filename, "mime": attachment.mime, "size": attachment.size, "media_id": None}


async def remember_file(
    session: AsyncSession, response_id: int, question: str, at: Sequence[int], attachment: Attachment, person_id: int
) -> None:
    """The file `attachment` that person `person_id` sent answers `question` (its name) in the repeat
    instances `at` of response `response_id`: to be fetched into the media store. Added to the session,
    committed with the turn, so the answer and its file row exist together or not at all."""
    session.add(AnswerFile(response_id=response_id, question=question, at=list(at), kind=attachment.kind,
                           platform=attachment.platform, ref=attachment.ref, person_id=person_id))


def held_refs(answers: Mapping[str, object]) -> set[str]:
    """The platform refs of the files the answers hold, inside repeat instances too (a file answer is
    the only dict with a "ref" that is not a repeat instance)."""
    refs: set[str] = set()
    for value in answers.values():
        if isinstance(value, Mapping) and isinstance(value.get("ref"), str):
            refs.add(value["ref"])
        elif isinstance(value, list):
            for instance in value:
                if isinstance(instance, Mapping):
                    refs |= held_refs(instance)
    return refs


async def forget_dropped(
    session: AsyncSession, response_id: int, before: Mapping[str, object], after: Mapping[str, object]
) -> int:
    """The files response `response_id`'s answers held `before` and no longer hold `after` go: their
    rows, and their stored bytes with every address they were served at (unless a notice or another
    answer uses the same bytes), in the caller's transaction. Comparing the answers costs no query in the
    turns (nearly all) that drop no file. Returns how many stored files were deleted."""
    gone = held_refs(before) - held_refs(after)
    if not gone:
        return 0
    return await _forget(session, col(AnswerFile.response_id) == response_id, col(AnswerFile.ref).in_(sorted(gone)))


async def _forget(session: AsyncSession, *where: ColumnElement[bool]) -> int:
    """The answer file rows `where` selects go, and the stored files only they used."""
    rows = await session.exec(delete(AnswerFile).where(*where).returning(col(AnswerFile.media_id)))
    return await media.drop_unused(session, sorted({m for m in rows.scalars() if m is not None}))


def scope_of(answers: Mapping[str, object], question: str, at: Sequence[int]) -> dict[str, object] | None:
    """The dict that holds `question`'s answer in the repeat instances `at` (the answers themselves
    outside repeats), found without the form: a name is unique over the whole form, so only one repeat's
    instance `at[0]`, and so on down, can hold it."""
    if not at:
        return answers if question in answers else None  # type: ignore[return-value]  # a JSON object
    for value in answers.values():
        if isinstance(value, list) and len(value) > at[0] and isinstance(value[at[0]], dict):
            found = scope_of(value[at[0]], question, at[1:])
            if found is not None:
                return found
    return None


def file_answer(answers: Mapping[str, object], question: str, at: Sequence[int], ref: str) -> dict[str, object] | None:
    """The answer's file dict if it is still the file `ref` (the resident may have sent another since, or
    gone back and skipped the question)."""
    scope = scope_of(answers, question, at)
    value = scope.get(question) if scope is not None else None
    return value if isinstance(value, dict) and value.get("ref") == ref else None


def unanswer(answers: dict[str, object], question: str, at: Sequence[int], ref: str) -> bool:
    """Take the file `ref` out of `question`'s answer, if it still is that file: the question is
    unanswered again (the survey asks it when the resident goes on). Whether it was."""
    scope = scope_of(answers, question, at)
    if scope is None or file_answer(answers, question, at, ref) is None:
        return False
    del scope[question]
    return True


def failed_notice(survey: Survey | None, question: str, at: Sequence[int], answers: Mapping[str, object], kind: str,
                  today: str, language: str = "") -> str:
    """What the resident who sent a file that cannot be fetched is told: which question (and member) to
    answer again, and how; the question as they were asked it, in the language they chose ("": the
    form's first)."""
    found = survey.by_name.get(question) if survey is not None else None
    if survey is None or found is None:  # the form changed since: its name is all there is
        return render("survey_file_failed", kind=kind, question=question, title="")
    slot = engine.Slot(found, tuple(at))
    asked = render("survey_slot_label", label=engine.label_of(survey, slot, answers, today, language),
                   instances=engine.instance_labels(survey, slot, answers, today, language))
    return render("survey_file_failed", kind=kind, question=asked, title=survey.title)


async def erase_files(session: AsyncSession, household_id: int) -> int:
    """The household's answer files go, and their stored bytes with every address they were served at
    (unless a notice or another answer uses the same bytes): before its answers themselves. Returns how
    many stored files were deleted."""
    # the answers locked first, as a turn and the collector lock them: one storing a file now is waited
    # for, and a turn cannot add a file row between this delete and the answers'
    responses = list((await session.exec(
        select(SurveyResponse.id).where(SurveyResponse.household_id == household_id).with_for_update()
    )).all())
    return await _forget(session, col(AnswerFile.response_id).in_(responses))


async def file_links(
    session: AsyncSession, response_ids: Collection[int], now: datetime, public_url: str
) -> Callable[[Mapping[str, object]], str | None]:
    """The export's `link`: an address on the bot's web server, valid for LINK_VALID, for each file these
    responses hold in the media store, made now (the export's callable is synchronous and runs off the
    event loop); None for any other answer (not stored yet, or failed: the export shows its name). No
    addresses without [web] public_url: a path alone would open nothing from a spreadsheet. The links
    are committed with the caller's session."""
    if not public_url or not response_ids:
        return lambda _answer: None
    stored = (await session.exec(
        select(AnswerFile.media_id, Media.filename).distinct()
        .join(Media, col(Media.id) == AnswerFile.media_id)
        .where(col(AnswerFile.response_id).in_(response_ids), AnswerFile.status == AnswerFileStatus.STORED)
        .order_by(col(AnswerFile.media_id))
    )).all()
    urls: dict[int, str] = {}
    for media_id, filename in stored:
        if media_id is not None:
            link_id, token = await media.new_link(session, media_id, now + LINK_VALID)
            urls[media_id] = f"{public_url}{ROUTE}/{link_id}/{token}/{quote(filename)}"

    def link(answer: Mapping[str, object]) -> str | None:
        media_id = answer.get("media_id")
        return urls.get(media_id) if isinstance(media_id, int) else None

    return link
