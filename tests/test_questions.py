"""The tech team's side of the handbook through the real clients: who hears of a question the handbook
cannot answer (tech team, else village head, else commune officials, else the asker is told so), the
/cauhoi list, saving an answer with a title and a confirmation, removing it, and long articles asked
in a group going to the asker's private chat."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from handlers import admin
from messages import when_vi
from storage.models import AuditEvent, HandbookEntry, HandbookQuestion, QuestionStatus
from tests.cli_helpers import langso
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, VILLAGE_GROUPS, Harness

UNANSWERABLE = "giá phân bón hôm nay bao nhiêu"
ANSWER = "Giá phân bón xem ở bảng tin hợp tác xã, cập nhật mỗi sáng."


def _new_questions(h: Harness, user: int) -> list[str]:
    return [m.text for m in h.fake.messages_to(user) if "Câu hỏi mới số" in (m.text or "")]


async def _questions(h: Harness) -> list[HandbookQuestion]:
    async with h.app.sessions() as session:
        return list((await session.exec(select(HandbookQuestion).order_by(col(HandbookQuestion.id)))).all())


async def _add_village(h: Harness, code: str, commune: str = "XA1") -> None:
    async with h.app.sessions() as session:
        if commune != "XA1":
            await admin.add_place(session, "commune", commune, "Xã Bình An", None)
        await admin.add_place(session, "village", code, f"Thôn {code}", commune)
        await session.commit()


async def _ask_from(h: Harness, village: str) -> str:
    """RESIDENT joins `village` and asks what the handbook cannot answer; the bot's reply."""
    await h.send(RESIDENT, f"/thamgia {village}")
    [handed] = await h.send(RESIDENT, UNANSWERABLE)
    return handed.text


async def test_a_village_with_a_tech_team_tells_only_the_team(harness: Harness) -> None:
    handed = await _ask_from(harness, "THON-1")
    assert "đã chuyển cho Tổ công nghệ số" in handed
    await harness.fake.wait_for(lambda: len(_new_questions(harness, TECH)) == 1)
    await harness.settle()
    assert _new_questions(harness, HEAD) == []
    assert _new_questions(harness, OFFICIAL) == []


async def test_a_village_without_tech_team_tells_its_head(harness: Harness) -> None:
    handed = await _ask_from(harness, "THON-2")
    assert "chuyển cho trưởng thôn" in handed
    await harness.fake.wait_for(lambda: len(_new_questions(harness, HEAD)) == 1)
    [told] = _new_questions(harness, HEAD)
    assert UNANSWERABLE in told
    assert "Thôn 2" in told
    assert "/traloi" in told
    [question] = await _questions(harness)
    [answered] = await harness.send(HEAD, f"/traloi {question.id} {ANSWER}")  # whoever is told may answer
    assert "Đã gửi câu trả lời" in answered.text
    assert _new_questions(harness, TECH) == []
    assert _new_questions(harness, OFFICIAL) == []


async def test_a_village_without_tech_team_or_head_tells_the_commune_officials(harness: Harness) -> None:
    await _add_village(harness, "THON-4")
    handed = await _ask_from(harness, "THON-4")
    assert "chuyển cho cán bộ xã" in handed
    await harness.fake.wait_for(lambda: len(_new_questions(harness, OFFICIAL)) == 1)
    [question] = await _questions(harness)
    [answered] = await harness.send(OFFICIAL, f"/traloi {question.id} {ANSWER}")
    assert "Đã gửi câu trả lời" in answered.text
    assert _new_questions(harness, HEAD) == []
    assert _new_questions(harness, TECH) == []


async def test_when_nobody_can_be_told_the_asker_hears_so_and_the_question_waits(harness: Harness) -> None:
    await _add_village(harness, "THON-X", commune="XA2")
    handed = await _ask_from(harness, "THON-X")
    assert "chưa có tổ công nghệ số, trưởng thôn hay cán bộ xã" in handed
    assert "vẫn được giữ lại" in handed
    [question] = await _questions(harness)
    assert question.status == QuestionStatus.OPEN
    for staff in (TECH, HEAD, OFFICIAL):  # nobody of another commune was told
        assert _new_questions(harness, staff) == []
    newcomer = 160
    async with harness.app.sessions() as session:
        await admin.grant_role(session, "telegram", str(newcomer), "commune_official", "XA2")
        await session.commit()
    [listing] = await harness.send(newcomer, "/cauhoi")
    assert f'{question.id}. "{UNANSWERABLE}"' in listing.text


async def test_cauhoi_shows_who_asked_from_which_village_and_when(harness: Harness) -> None:
    await harness.send(RESIDENT, "/thamgia THON-1", first_name="Lan")
    await harness.send(RESIDENT, UNANSWERABLE, first_name="Lan")
    [listing] = await harness.send(TECH, "/cauhoi")
    [question] = await _questions(harness)
    when = when_vi(question.created_at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")))
    asker_line = listing.text.splitlines()[listing.text.splitlines().index(f'{question.id}. "{UNANSWERABLE}"') + 1]
    assert asker_line.strip() == f"Lan — Thôn 1 — {when}"


async def test_a_name_that_is_a_phone_number_is_not_shown(harness: Harness) -> None:
    await harness.send(RESIDENT, "/thamgia THON-1", first_name="0912345678")
    await harness.send(RESIDENT, UNANSWERABLE, first_name="0912345678")
    [listing] = await harness.send(TECH, "/cauhoi")
    assert "0912345678" not in listing.text
    assert "Người hỏi chưa có tên — Thôn 1" in listing.text


async def test_asking_where_the_answer_is_tells_the_asker_it_waits_and_sends_the_team_nothing_new(
    harness: Harness,
) -> None:
    await _ask_from(harness, "THON-1")
    [question] = await _questions(harness)
    await harness.fake.wait_for(lambda: len(_new_questions(harness, TECH)) == 1)
    when = when_vi(question.created_at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")))
    for impatient in ("sao ko ai tl z", "Nhắn từ sáng đến giờ sao chưa thấy ai trả lời?"):
        [told] = await harness.send(RESIDENT, impatient)
        assert f"Câu hỏi số {question.id} bạn gửi lúc {when} vẫn đang chờ" in told.text
        assert "/hoi" in told.text  # the way to send it as a question all the same
    [hello] = await harness.send(RESIDENT, "alo")
    assert "Làng số bot" in hello.text
    assert f"Câu hỏi số {question.id}" in hello.text
    # in a group, neighbours would read what someone waits for
    [in_group] = await harness.send(RESIDENT, "/hoi alo", chat=VILLAGE_GROUPS["THON-1"])
    assert "Làng số bot" in in_group.text
    assert "đang chờ" not in in_group.text
    await harness.settle()
    assert len(await _questions(harness)) == 1
    assert len(_new_questions(harness, TECH)) == 1
    # said with /hoi, it is a new question after all, for the handbook and so the team (a menu's last line)
    [asked] = await harness.send(RESIDENT, "/hoi sao ko ai tl z")
    assert "đang chờ" not in asked.text
    assert len(await _questions(harness)) == 2
    for open_question in await _questions(harness):
        await harness.send(TECH, f"/traloi {open_question.id} {ANSWER}")
    [hello] = await harness.send(RESIDENT, "alo")
    assert "đang chờ" not in hello.text


async def _answered_question(h: Harness) -> HandbookQuestion:
    await _ask_from(h, "THON-1")
    [question] = await _questions(h)
    await h.send(TECH, f"/traloi {question.id} {ANSWER}")
    return question


async def _entries(h: Harness) -> list[HandbookEntry]:
    async with h.app.sessions() as session:
        return list((await session.exec(select(HandbookEntry).order_by(col(HandbookEntry.id)))).all())


async def test_saving_an_answer_asks_a_title_shows_the_entry_and_saves_after_a_yes(harness: Harness) -> None:
    question = await _answered_question(harness)
    [asked] = await harness.send(TECH, f"/luuhuongdan {question.id}")
    assert 'Bot gợi ý: "Giá phân bón hôm nay bao nhiêu"' in asked.text
    [shown] = await harness.send(TECH, "Xem giá phân bón ở đâu")
    assert "📘 Xem giá phân bón ở đâu" in shown.text
    assert ANSWER in shown.text
    assert await _entries(harness) == []  # nothing saved before the yes
    [saved] = await harness.send(TECH, "1")
    [entry] = await _entries(harness)
    assert entry.title == "Xem giá phân bón ở đâu"
    assert f"bài số {entry.id}" in saved.text
    article, _feedback = await harness.send(RESIDENT, "xem giá phân bón ở đâu", expect=2)
    assert ANSWER in article.text
    [again] = await harness.send(TECH, f"/luuhuongdan {question.id}")
    assert "đã có trong sổ tay" in again.text  # not saved twice


async def test_no_at_the_confirmation_or_huy_saves_nothing(harness: Harness) -> None:
    question = await _answered_question(harness)
    await harness.send(TECH, f"/luuhuongdan {question.id}")
    await harness.send(TECH, "1")
    [kept] = await harness.send(TECH, "Không")
    assert "Chưa lưu gì" in kept.text
    await harness.send(TECH, f"/luuhuongdan {question.id}")
    await harness.send(TECH, "ok")
    await harness.send(TECH, "/huy")
    assert await _entries(harness) == []
    [handed] = await harness.send(RESIDENT, UNANSWERABLE)
    assert "đã chuyển" in handed.text  # the handbook still cannot answer it


async def test_a_removed_entry_is_no_longer_an_answer_for_the_bot_or_langso_ask(harness: Harness) -> None:
    question = await _answered_question(harness)
    await harness.send(TECH, f"/luuhuongdan {question.id}")
    await harness.send(TECH, "ok")
    await harness.send(TECH, "1")
    [entry] = await _entries(harness)

    [refused] = await harness.send(RESIDENT, "/xoahuongdan")
    assert "chỉ tổ công nghệ số" in refused.text.lower()
    [listing] = await harness.send(TECH, "/xoahuongdan")
    assert f"{entry.id}. Giá phân bón hôm nay bao nhiêu" in listing.text
    [confirm] = await harness.send(TECH, str(entry.id))
    assert "Xóa bài số" in confirm.text
    assert ANSWER in confirm.text
    [removed] = await harness.send(TECH, "1")
    assert "Đã xóa" in removed.text
    assert await _entries(harness) == []
    async with harness.app.sessions() as session:
        [event] = (await session.exec(select(AuditEvent).where(AuditEvent.action == "handbook_entry_removed"))).all()
    assert event.details["entry"] == entry.id

    [handed] = await harness.send(RESIDENT, UNANSWERABLE)
    assert "đã chuyển" in handed.text  # the live index forgot it
    ask = langso("ask", UNANSWERABLE, "--json", env={"LANGSO_DATABASE_URL": harness.settings.database_url})
    assert ask.returncode == 0, ask.stderr
    printed = json.loads(ask.stdout.splitlines()[-1])
    assert all(hit["id"] != f"hoi-dap-{entry.id}" for hit in printed["hits"])


async def test_removal_by_number_and_no_keeps_it(harness: Harness) -> None:
    question = await _answered_question(harness)
    await harness.send(TECH, f"/luuhuongdan {question.id}")
    await harness.send(TECH, "ok")
    await harness.send(TECH, "1")
    [entry] = await _entries(harness)
    [confirm] = await harness.send(TECH, f"/xoahuongdan {entry.id}")
    assert f"Xóa bài số {entry.id}" in confirm.text
    [kept] = await harness.send(TECH, "Không")
    assert "vẫn được giữ" in kept.text
    [unknown] = await harness.send(TECH, "/xoahuongdan 999")
    assert 'Không có bài số "999"' in unknown.text
    assert f"{entry.id}. " in unknown.text
    await harness.send(TECH, "/huy")
    assert [e.id for e in await _entries(harness)] == [entry.id]


async def test_a_long_article_asked_in_a_group_goes_to_the_askers_private_chat(harness: Harness) -> None:
    group = VILLAGE_GROUPS["THON-1"]
    await harness.send(RESIDENT, "/start", first_name="Lan")  # a private chat with the bot
    [pointer] = await harness.send(RESIDENT, "/hoi cach cai vneid", chat=group, first_name="Lan")
    assert pointer.text.startswith("Bác Lan ơi, bot đã gửi hướng dẫn vào tin nhắn riêng")
    await harness.fake.wait_for(lambda: harness.fake.messages_to(RESIDENT)[-1].text.startswith("📘"))
    assert "Cài ứng dụng VNeID" in harness.fake.messages_to(RESIDENT)[-1].text
    await harness.settle()
    assert [m.text for m in harness.fake.messages_to(group)][-1] == pointer.text  # nothing else in the group
