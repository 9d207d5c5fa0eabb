"""What residents send as survey answers besides text: the adapters turn Telegram's photos, voice notes,
videos and shared places (and Zalo's photos) into the chat contract; the bot fetches an answer's file
once into the media store, within seconds and across a restart, serves it to the export at an expiring
address, and erases it with the household's answers. A file no answer holds any more (sent again, skipped)
is deleted with the change; one the platform no longer has is taken out of its answer, and the resident who
sent it is told and asked again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import func, select

from bot.answer_media import AnswerMedia
from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.channels.zalo import ZaloChannel
from handlers import admin
from handlers.chat import Attachment, Incoming, Location, Outcome
from handlers.media import refusal_of
from handlers.people import person_for
from handlers.surveys.answer_files import answer_of, file_links, remember_file
from handlers.surveys.catalog import keep
from handlers.surveys.forms import load_survey
from storage import media
from storage.models import (
    AnswerFile,
    AnswerFileStatus,
    Campaign,
    Household,
    Media,
    MediaLink,
    ResponseStatus,
    SurveyResponse,
    utcnow,
)
from tests.conftest import TOKEN, settings_for
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.xlsforms import xlsform

RESIDENT = 301
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 30 + b"\xff\xd9"  # stands for a JPEG: every byte value
VOICE = b"OggS" + bytes(range(255, -1, -1)) * 12


# --- the adapters -------------------------------------------------------------------------------


Store = Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def _polled(poll: Callable[[Store], Coroutine[Any, Any, None]]) -> AsyncIterator[list[dict[str, Any]]]:
    """The updates a channel's long polling stores, while the block runs."""
    stored: list[dict[str, Any]] = []

    async def store(_key: str, payload: dict[str, Any]) -> None:
        stored.append(payload)

    task = asyncio.create_task(poll(store))
    try:
        yield stored
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_telegram_photo_voice_video_and_places_reach_handlers(fake: FakeTelegram) -> None:
    channel = TelegramChannel(TOKEN, fake.url, connections=2)
    await channel.start()
    try:
        async with _polled(channel.poll) as stored:
            fake.message(RESIDENT, RESIDENT, photo=True, content=PHOTO, caption="nhà tôi")
            fake.message(RESIDENT, RESIDENT, voice=True, content=VOICE)
            fake.message(RESIDENT, RESIDENT, video_note=True)
            fake.message(RESIDENT, RESIDENT, audio=True)
            fake.message(RESIDENT, RESIDENT, location=(22.4312, 104.1205), horizontal_accuracy=12.5)
            fake.message(RESIDENT, RESIDENT, location=(21.0285, 105.8542), venue="Nhà văn hóa thôn")
            await fake.wait_for(lambda: len(stored) == 6, timeout=10)
        photo, voice, note, audio, shared, venue = (channel.parse(payload) for payload in stored)
    finally:
        await channel.stop()
    assert isinstance(photo, Incoming)
    assert photo.text == "nhà tôi"
    assert photo.attachment is not None
    assert (photo.attachment.kind, photo.attachment.size, photo.attachment.mime) == ("photo", len(PHOTO), "image/jpeg")
    assert fake.files[photo.attachment.ref][1] == PHOTO  # the largest size's id: the file getFile serves
    assert voice is not None
    assert voice.attachment is not None
    assert (voice.attachment.kind, voice.attachment.size, voice.attachment.mime) == ("voice", len(VOICE), "audio/ogg")
    assert note is not None
    assert note.attachment is not None
    assert (note.attachment.kind, note.attachment.mime) == ("video", "video/mp4")  # a round video is a video
    assert audio is not None
    assert audio.attachment is not None
    assert (audio.attachment.kind, audio.attachment.filename) == ("audio", "bai_hat.mp3")
    assert shared is not None
    assert (shared.location, shared.attachment, shared.text) == (Location(22.4312, 104.1205, 12.5), None, "")
    assert venue is not None
    assert venue.location == Location(21.0285, 105.8542, None)
    assert photo.location is None


def test_notices_still_carry_only_photos_and_documents() -> None:
    """A voice note or a video sent while writing a notice is refused as before (the type reply),
    rather than relayed into every village."""
    for kind in ("voice", "audio", "video"):
        why = refusal_of(Attachment(kind, "file-id", "telegram", size=1000))
        assert why is not None
        assert why.reason == "type"
    assert refusal_of(Attachment("photo", "file-id", "telegram", size=1000, mime="image/jpeg")) is None


async def test_zalo_image_is_a_photo_and_nothing_else_carries_a_place(zalo: FakeZalo) -> None:
    """The Zalo Bot Platform documents four events (text, image, sticker, unsupported): a photo comes
    as its URL; a place can only be typed there (coordinates or a map link), as text."""
    channel = ZaloChannel(zalo.token, zalo.url, connections=2)
    channel.poll_timeout = 1
    await channel.start()
    try:
        url = zalo.host("nha.jpg", PHOTO)
        async with _polled(channel.poll) as stored:
            zalo.push("message.image.received", "zl-1", "zl-1", photo_url=url, caption="ảnh nhà")
            zalo.push("message.text.received", "zl-1", "zl-1", text="22.4312, 104.1205")
            await zalo.wait_for(lambda: len(stored) == 2, timeout=10)
        image, typed = (channel.parse(payload) for payload in stored)
        assert image is not None
        assert image.attachment == Attachment("photo", url, "zalo")
        assert image.text == "ảnh nhà"
        fetched = await channel.fetch(image.attachment, 10 * 1024 * 1024)
        assert fetched is not None
        assert fetched.content == PHOTO
        assert typed is not None
        assert (typed.text, typed.location) == ("22.4312, 104.1205", None)
    finally:
        await channel.stop()


# --- the collector --------------------------------------------------------------------------------


@dataclass
class Bot:
    app: App
    telegram: FakeTelegram
    response_id: int
    household_id: int
    resident_id: int  # the person


async def _start(fake: FakeTelegram, database_url: str, port: int) -> App:
    settings = settings_for(database_url, fake.url, web={"port": port, "public_url": f"http://127.0.0.1:{port}"})
    app = App(settings)
    await app.start()
    return app


async def _seed(app: App) -> tuple[int, int, int]:
    """A village with a campaign, and the resident's household with an answer set begun: (response id,
    household id, the resident's person id)."""
    async with app.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        village = await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
        head = await person_for(session, "telegram", "900", "Trưởng thôn")
        household = Household(place_id=village.id, head_name="Lò Văn Páo", join_code="PAO123")
        session.add(household)
        await session.flush()
        resident = await person_for(session, "telegram", str(RESIDENT), "Páo", private=True)
        resident.household_id = household.id
        campaign = Campaign(survey_code="ho_gia_dinh", place_id=village.id, opened_by=head.id)
        session.add_all([resident, campaign])
        await session.flush()
        assert campaign.id is not None
        assert household.id is not None
        response = SurveyResponse(campaign_id=campaign.id, household_id=household.id, answers={"chu_ho": "Lò Văn Páo"})
        session.add(response)
        await session.commit()
        assert response.id is not None
        assert resident.id is not None
        return response.id, household.id, resident.id


@pytest.fixture
async def bot(fake: FakeTelegram, database_url: str, unused_tcp_port: int) -> AsyncIterator[Bot]:
    """On SQLite and on PostgreSQL (where the claim is one UPDATE ... RETURNING shared by processes)."""
    app = await _start(fake, database_url, unused_tcp_port)
    try:
        response_id, household_id, resident_id = await _seed(app)
        fake.add_private(RESIDENT)
        yield Bot(app, fake, response_id, household_id, resident_id)
    finally:
        await app.stop()


def _sent_file(fake: FakeTelegram, kind: str, content: bytes) -> Attachment:
    """A file the resident sent (the fake's getFile serves it), as the adapter describes it."""
    file_id = f"{kind}-{len(fake.files) + 1}"
    fake.files[file_id] = (f"{kind}s/file_{len(fake.files) + 1}.{'jpg' if kind == 'photo' else 'oga'}", content)
    return Attachment(kind, file_id, "telegram", size=len(content), mime="image/jpeg" if kind == "photo" else "audio/ogg")


async def _answer(app: App, response_id: int, answers: dict[str, Any], *files: tuple[str, tuple[int, ...], Attachment],
                  sender: int | None = None) -> None:
    """What the survey chat does with a media answer: the value with media_id None, and the file row
    (`sender`: the person who sent the files, else the resident of _seed)."""
    async with app.sessions() as session:
        response = await session.get(SurveyResponse, response_id)
        assert response is not None
        response.answers = answers
        session.add(response)
        person = sender or (await person_for(session, "telegram", str(RESIDENT))).id
        assert person is not None
        for question, at, attachment in files:
            await remember_file(session, response_id, question, at, attachment, person)
        await session.commit()


async def _answers(app: App, response_id: int) -> dict[str, Any]:
    async with app.sessions() as session:
        response = await session.get(SurveyResponse, response_id)
        assert response is not None
        return response.answers


async def _rows(app: App) -> list[AnswerFile]:
    async with app.sessions() as session:
        return list((await session.exec(select(AnswerFile).order_by(AnswerFile.id))).all())


async def _until(check: Callable[[], Coroutine[Any, Any, bool]], timeout: float = 10.0) -> float:
    """Seconds until `check` holds."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError("not within the time allowed")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        return response.status, await response.read()


async def _link(app: App, response_id: int, answer: dict) -> str | None:
    """The export's address of an answer's file, as the export makes it."""
    async with app.sessions() as session:
        link = await file_links(session, [response_id], utcnow(), app.settings.handler.links.console_url)
        await session.commit()
    return link(answer)


async def test_a_photo_and_a_voice_note_in_a_repeat_are_stored_within_seconds(bot: Bot) -> None:
    photo = _sent_file(bot.telegram, "photo", PHOTO)
    voice = _sent_file(bot.telegram, "voice", VOICE)
    members = [{"ten": "Páo"}, {"ten": "Mai", "loi_chao": answer_of(voice)}]
    await _answer(bot.app, bot.response_id, {"chu_ho": "Lò Văn Páo", "anh_nha": answer_of(photo), "members": members},
                  ("anh_nha", (), photo), ("loi_chao", (1,), voice))

    async def stored() -> bool:
        answers = await _answers(bot.app, bot.response_id)
        return bool(answers["anh_nha"]["media_id"]) and bool(answers["members"][1]["loi_chao"]["media_id"])

    seconds = await _until(stored)
    assert seconds < 3.0  # the collector looks every second
    answers = await _answers(bot.app, bot.response_id)
    assert answers["members"][0] == {"ten": "Páo"}  # nothing else in the answers changed
    assert answers["anh_nha"] == {**answer_of(photo), "media_id": answers["anh_nha"]["media_id"]}
    assert sorted(bot.telegram.downloads) == ["photos/file_1.jpg", "voices/file_2.oga"]  # each fetched once
    assert {row.status for row in await _rows(bot.app)} == {AnswerFileStatus.STORED}
    async with bot.app.sessions() as session:  # the export's link: an address for each stored file
        link = await file_links(session, [bot.response_id], utcnow(), bot.app.settings.handler.links.console_url)
        await session.commit()
    assert link({**answers["anh_nha"], "media_id": None}) is None  # not stored (yet): its name alone
    assert link({"media_id": 10_000}) is None  # only these responses' files
    for answer, content, mime in ((answers["anh_nha"], PHOTO, "image/jpeg"),
                                  (answers["members"][1]["loi_chao"], VOICE, "audio/ogg")):
        url = link(answer)
        assert url is not None
        assert url.endswith(("/file_1.jpg", "/file_2.oga"))
        async with aiohttp.ClientSession() as client, client.get(url) as response:
            assert (response.status, await response.read(), response.content_type) == (200, content, mime)
    # the media store's pruning (files no notice of the last keep_days uses) leaves answers' files alone
    async with bot.app.sessions() as session:
        assert await media.prune(session, utcnow() + timedelta(days=365), utcnow()) == 0


async def test_a_file_the_platform_no_longer_has_is_asked_for_once_and_its_sender_told_once(bot: Bot) -> None:
    gone = Attachment("photo", "AgACAgUAAxkBAAI-expired", "telegram", size=1000, mime="image/jpeg")
    before = len(bot.telegram.messages_to(RESIDENT))
    await _answer(bot.app, bot.response_id, {"anh_nha": answer_of(gone)}, ("anh_nha", (), gone))

    await _until(_no_rows(bot))
    await asyncio.sleep(1.5)  # rounds go on: the file is not asked for again, nor its sender told again
    assert [m for m, params in bot.telegram.calls if m == "getFile"] == ["getFile"]
    [told] = bot.telegram.messages_to(RESIDENT)[before:]
    assert "không tải về được" in (told.text or "")
    assert "anh_nha" not in await _answers(bot.app, bot.response_id)


async def test_a_file_that_failed_before_answers_were_cleared_is_taken_out_of_its_answer(bot: Bot) -> None:
    """A row an earlier version marked failed (its answer kept the file, nobody recorded as its sender)."""
    gone = Attachment("photo", "AgACAgUAAxkBAAI-expired", "telegram", size=1000, mime="image/jpeg")
    async with bot.app.sessions() as session:
        response = await session.get(SurveyResponse, bot.response_id)
        assert response is not None
        response.answers = {"anh_nha": answer_of(gone), "chu_ho": "Lò Văn Páo"}
        session.add_all([response, AnswerFile(response_id=bot.response_id, question="anh_nha", kind="photo",
                                              platform="telegram", ref=gone.ref, status=AnswerFileStatus.FAILED)])
        await session.commit()
    await _until(_no_rows(bot))
    assert await _answers(bot.app, bot.response_id) == {"chu_ho": "Lò Văn Páo"}
    assert [m for m, _ in bot.telegram.calls if m in ("getFile", "sendMessage")] == []  # not fetched; nobody to tell


async def test_an_answer_changed_before_its_file_came_keeps_nothing(bot: Bot) -> None:
    first = _sent_file(bot.telegram, "photo", PHOTO)
    second = _sent_file(bot.telegram, "photo", PHOTO[::-1])
    # the resident sent one photo, then another for the same question before the first was fetched
    await _answer(bot.app, bot.response_id, {"anh_nha": answer_of(second)}, ("anh_nha", (), first), ("anh_nha", (), second))

    async def settled() -> bool:
        return all(row.status != AnswerFileStatus.PENDING for row in await _rows(bot.app))

    await _until(settled)
    assert [row.ref for row in await _rows(bot.app)] == [second.ref]  # the first's row is deleted, not kept
    assert [row.status for row in await _rows(bot.app)] == [AnswerFileStatus.STORED]
    async with bot.app.sessions() as session:
        assert (await session.exec(select(Media.size))).all() == [len(PHOTO)]


async def test_a_restart_mid_fetch_still_stores_the_file(fake: FakeTelegram, sqlite_url: str, unused_tcp_port: int) -> None:
    app = await _start(fake, sqlite_url, unused_tcp_port)
    try:
        response_id, _, _ = await _seed(app)
        photo = _sent_file(fake, "photo", PHOTO)
        fake.response_delay = 30.0  # Telegram answers nothing for now: getFile hangs
        await _answer(app, response_id, {"anh_nha": answer_of(photo)}, ("anh_nha", (), photo))

        async def claimed() -> bool:
            return [row.claimed_until is not None for row in await _rows(app)] == [True]

        await _until(claimed)
    finally:
        stopping = time.monotonic()
        await app.stop()
    assert time.monotonic() - stopping < 10  # the fetch under way was given up, not waited for
    fake.response_delay = 0.0
    app = await _start(fake, sqlite_url, unused_tcp_port)
    try:
        async def stored() -> bool:
            return bool((await _answers(app, response_id))["anh_nha"]["media_id"])

        assert await _until(stored) < 3.0  # the claim the stopped run held is released at start
        assert fake.downloads == ["photos/file_1.jpg"]
    finally:
        await app.stop()


async def test_erasure_takes_the_stored_file_and_its_address(bot: Bot) -> None:
    photo = _sent_file(bot.telegram, "photo", PHOTO)
    await _answer(bot.app, bot.response_id, {"anh_nha": answer_of(photo)}, ("anh_nha", (), photo))

    async def stored() -> bool:
        return bool((await _answers(bot.app, bot.response_id))["anh_nha"]["media_id"])

    await _until(stored)
    url = await _link(bot.app, bot.response_id, (await _answers(bot.app, bot.response_id))["anh_nha"])
    assert url is not None
    assert await _get(url) == (200, PHOTO)

    for text in ("/xoadulieu", "1"):
        before = len(bot.telegram.messages_to(RESIDENT))
        bot.telegram.message(RESIDENT, RESIDENT, text)
        await bot.telegram.wait_for(lambda: len(bot.telegram.messages_to(RESIDENT)) > before)  # noqa: B023
    assert "1 ảnh, ghi âm, video hay tệp" in (bot.telegram.messages_to(RESIDENT)[-1].text or "")
    assert await _get(url) == (404, b"404: Not Found")
    async with bot.app.sessions() as session:
        for model in (Media, MediaLink, AnswerFile, SurveyResponse):
            assert (await session.exec(select(func.count()).select_from(model))).one() == 0


async def _nobody_told(person_id: int, text: str) -> Outcome:
    raise AssertionError(f"every file is fetched here: nobody is told of a failure ({person_id}: {text})")


async def test_processes_sharing_postgresql_fetch_each_file_once(
    fake: FakeTelegram, postgres_url: str, unused_tcp_port: int
) -> None:
    """Three collectors (the bot's own and two more, as other processes would run) claim at the same
    time: each file is downloaded by one of them only."""
    app = await _start(fake, postgres_url, unused_tcp_port)
    try:
        response_id, _, _ = await _seed(app)
        files = [_sent_file(fake, "photo", PHOTO + bytes([n])) for n in range(12)]
        others = [AnswerMedia(app.engine, app.sessions, {"telegram": app.remotes["telegram"]}, app.clock,
                              sole_process=False, surveys=app.surveys, timezone=app.settings.handler.timezone,
                              tell=_nobody_told) for _ in range(2)]
        stop = asyncio.Event()
        running = [asyncio.create_task(other.run(stop)) for other in others]
        members = [{"anh": answer_of(file)} for file in files]
        await _answer(app, response_id, {"members": members}, *(("anh", (n,), f) for n, f in enumerate(files)))

        async def stored() -> bool:
            return all(m["anh"]["media_id"] for m in (await _answers(app, response_id))["members"])

        await _until(stored)
        stop.set()
        await asyncio.gather(*running)
    finally:
        await app.stop()
    assert sorted(fake.downloads) == sorted({path for path, _ in fake.files.values()})


# --- answers changed over chat: what they no longer hold goes; what cannot be fetched is asked again ---


FORM = [["type", "name", "label"], ["image", "anh_nha", "Ảnh ngôi nhà"], ["text", "ghi_chu", "Ghi chú"]]


async def _survey_over_chat(bot: Bot, tmp_path: Path, form: list[list[object]] = FORM,
                            choices: list[list[object]] | None = None) -> None:
    """The resident's campaign runs an imported form (FORM: a photo question, then a text one)."""
    content = xlsform(tmp_path, form, choices, [["form_id", "form_title"], ["anh_nha", "Ảnh nhà"]])
    survey = load_survey("anh.xlsx", content)
    async with bot.app.sessions() as session:
        await keep(session, survey, "anh.xlsx", content, utcnow())
        campaign = (await session.exec(select(Campaign))).one()
        response = await session.get(SurveyResponse, bot.response_id)
        assert response is not None
        campaign.survey_code, response.answers = survey.code, {}
        session.add_all([campaign, response])
        await session.commit()


async def _say(bot: Bot, text: str | None = None, expect: int = 1, **kw: Any) -> str:
    """The resident writes (or sends a file) in their private chat; the bot's `expect` replies."""
    before = len(bot.telegram.messages_to(RESIDENT))
    bot.telegram.message(RESIDENT, RESIDENT, text, **kw)
    await bot.telegram.wait_for(lambda: len(bot.telegram.messages_to(RESIDENT)) >= before + expect)
    return "\n".join(m.text or "" for m in bot.telegram.messages_to(RESIDENT)[before:])


async def _stored_photo(bot: Bot) -> dict[str, Any]:
    """The photo answer, once the collector has stored it."""
    async def stored() -> bool:
        answer = (await _answers(bot.app, bot.response_id)).get("anh_nha")
        return isinstance(answer, dict) and bool(answer["media_id"])

    await _until(stored)
    return (await _answers(bot.app, bot.response_id))["anh_nha"]


def _no_rows(bot: Bot) -> Callable[[], Coroutine[Any, Any, bool]]:
    async def none_left() -> bool:
        return await _rows(bot.app) == []

    return none_left


async def _stored_bytes(bot: Bot) -> list[bytes]:
    async with bot.app.sessions() as session:
        return list((await session.exec(select(Media.content).order_by(Media.id))).all())


async def test_a_photo_sent_again_or_skipped_leaves_no_old_file_behind(bot: Bot, tmp_path: Path) -> None:
    await _survey_over_chat(bot, tmp_path)
    assert "Ảnh ngôi nhà" in await _say(bot, "/khaosat")
    assert "Ghi chú" in await _say(bot, photo=True, content=PHOTO)
    first = await _stored_photo(bot)
    old_url = await _link(bot.app, bot.response_id, first)
    assert old_url is not None
    assert await _get(old_url) == (200, PHOTO)

    assert "Ảnh ngôi nhà" in await _say(bot, "quay lại")  # the resident sends another photo instead
    assert "Ghi chú" in await _say(bot, photo=True, content=VOICE)
    second = await _stored_photo(bot)
    assert second["ref"] != first["ref"]
    assert await _get(old_url) == (404, b"404: Not Found")  # the old photo's bytes and address are gone
    assert await _stored_bytes(bot) == [VOICE]
    assert [row.ref for row in await _rows(bot.app)] == [second["ref"]]
    new_url = await _link(bot.app, bot.response_id, second)
    assert new_url is not None
    assert await _get(new_url) == (200, VOICE)

    assert "Ảnh ngôi nhà" in await _say(bot, "quay lại")  # then skips the question after all
    assert "Ghi chú" in await _say(bot, "bỏ qua")
    assert (await _answers(bot.app, bot.response_id))["anh_nha"] is None
    assert await _get(new_url) == (404, b"404: Not Found")
    assert await _stored_bytes(bot) == []
    assert await _rows(bot.app) == []


async def test_a_photo_an_earlier_answer_made_irrelevant_is_deleted(bot: Bot, tmp_path: Path) -> None:
    form = [["type", "name", "label", "relevant"], ["select_one yn", "co_anh", "Có ảnh nhà không?"],
            ["image", "anh_nha", "Ảnh ngôi nhà", "${co_anh} = 'co'"], ["text", "ghi_chu", "Ghi chú"]]
    await _survey_over_chat(bot, tmp_path, form, [["list_name", "name", "label"], ["yn", "co", "Có"],
                                                   ["yn", "khong", "Không"]])
    assert "Có ảnh nhà không?" in await _say(bot, "/khaosat")
    assert "Ảnh ngôi nhà" in await _say(bot, "1")
    assert "Ghi chú" in await _say(bot, photo=True, content=PHOTO)
    url = await _link(bot.app, bot.response_id, await _stored_photo(bot))
    assert url is not None
    await _say(bot, "quay lại")
    assert "Có ảnh nhà không?" in await _say(bot, "quay lại")
    assert "Ghi chú" in await _say(bot, "2")  # no photo after all: the engine drops the answer
    assert "anh_nha" not in await _answers(bot.app, bot.response_id)
    assert await _get(url) == (404, b"404: Not Found")
    assert await _stored_bytes(bot) == []
    assert await _rows(bot.app) == []


async def _photo_the_platform_loses(bot: Bot) -> tuple[str, str]:
    """The resident sends a photo Telegram no longer serves by the time the bot asks for it: the next
    question, and what they are told of the photo."""
    before = len(bot.telegram.messages_to(RESIDENT))
    bot.telegram.message(RESIDENT, RESIDENT, photo=True, content=PHOTO)
    bot.telegram.files.popitem()
    await bot.telegram.wait_for(lambda: len(bot.telegram.messages_to(RESIDENT)) >= before + 2)
    asked, told = (m.text or "" for m in bot.telegram.messages_to(RESIDENT)[before:])
    return asked, told


async def test_a_photo_the_platform_no_longer_has_is_asked_for_again(bot: Bot, tmp_path: Path) -> None:
    await _survey_over_chat(bot, tmp_path)
    assert "Ảnh ngôi nhà" in await _say(bot, "/khaosat")
    asked, told = await _photo_the_platform_loses(bot)
    assert "Ghi chú" in asked
    assert "Ảnh bạn gửi cho câu “Ảnh ngôi nhà” (khảo sát Ảnh nhà) không tải về được" in told
    assert "nhắn /khaosat" in told
    assert "anh_nha" not in await _answers(bot.app, bot.response_id)  # unanswered: no name of a file nobody has
    await _until(_no_rows(bot))  # the sender told, nothing is kept of it
    assert "Ảnh ngôi nhà" in await _say(bot, "/khaosat")  # asked again
    assert "Ghi chú" in await _say(bot, photo=True, content=PHOTO)
    assert (await _stored_photo(bot))["media_id"]


async def test_a_resident_who_chose_another_language_is_told_of_a_failed_photo_in_it(bot: Bot, tmp_path: Path) -> None:
    form = [["type", "name", "label::Vietnamese (vi)", "label::Tày (tay)"],
            ["image", "anh_nha", "Ảnh ngôi nhà", "[Tày] Ảnh nhà"], ["text", "ghi_chu", "Ghi chú", "[Tày] Ghi chú"]]
    await _survey_over_chat(bot, tmp_path, form)
    assert "2. Tày" in await _say(bot, "/khaosat")
    assert "[Tày] Ảnh nhà" in await _say(bot, "2")
    asked, told = await _photo_the_platform_loses(bot)
    assert "[Tày] Ghi chú" in asked
    assert "câu “[Tày] Ảnh nhà”" in told  # the question as they were asked it
    assert "Ảnh ngôi nhà" not in told


async def test_a_sent_answer_set_whose_photo_failed_asks_for_it_then_stays_sent(bot: Bot, tmp_path: Path) -> None:
    await _survey_over_chat(bot, tmp_path)
    gone = Attachment("photo", "AgACAgUAAxkBAAI-expired", "telegram", size=1000, mime="image/jpeg")
    async with bot.app.sessions() as session:
        response = await session.get(SurveyResponse, bot.response_id)
        assert response is not None
        response.status, response.submitted_at = ResponseStatus.SUBMITTED, utcnow()
        session.add(response)
        await session.commit()
    before = len(bot.telegram.messages_to(RESIDENT))
    await _answer(bot.app, bot.response_id, {"anh_nha": answer_of(gone), "ghi_chu": "nhà sàn"}, ("anh_nha", (), gone))
    await bot.telegram.wait_for(lambda: len(bot.telegram.messages_to(RESIDENT)) > before)
    assert "không tải về được" in (bot.telegram.messages_to(RESIDENT)[-1].text or "")
    asked = await _say(bot, "/khaosat", expect=2)
    assert "Ảnh ngôi nhà" in asked  # not the sent set's menu: the photo first
    assert "Bạn muốn làm gì?" not in asked
    assert "Đã lưu" in await _say(bot, photo=True, content=PHOTO)
    async with bot.app.sessions() as session:
        response = await session.get(SurveyResponse, bot.response_id)
        assert response is not None
        assert response.status == ResponseStatus.SUBMITTED
        assert response.answers["ghi_chu"] == "nhà sàn"
