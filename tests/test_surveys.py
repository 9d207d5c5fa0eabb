"""Household surveys through the fake Telegram server: a village head opens the survey, residents answer
it by numbers and by buttons, go back, get re-asked, resume after a restart, share one household; the
scorecard, the export, the reminders and the deletion."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, time
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App
from bot.config import ConfigError
from bot.reminders import JOB_PREFIX as REMINDER_JOB
from handlers import admin
from handlers.chat import ChatKind, Incoming
from handlers.context import HandlerSettings, QuietHours, Turn
from handlers.handbook.search import Handbook
from handlers.surveys import engine
from handlers.surveys.answering import locked_response
from handlers.surveys.catalog import Catalog, shipped
from handlers.surveys.scorecard import scorecard
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import (
    Campaign,
    Conversation,
    ExportRecord,
    Household,
    Person,
    Reminder,
    ReminderPlan,
    ResponseStatus,
    SurveyResponse,
    utcnow,
)
from tests.cli_helpers import langso
from tests.conftest import settings_for
from tests.fake_zalo import FakeZalo
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, VILLAGE_GROUPS, Harness
from tests.survey_answers import ANSWERS
from tests.xlsforms import xlsform

NEIGHBOUR = 201  # another resident of THON-1
SPOUSE = 202  # joins RESIDENT's household



async def open_survey(h: Harness, village: str = "THON-1") -> Campaign:
    """The village head opens the household survey for `village` through the chat."""
    [menu] = await h.send(HEAD, "/khaosat")
    assert "1. Mở khảo sát cho thôn" in menu.text
    [surveys] = await h.send(HEAD, "1")
    assert "Khảo sát chuyển đổi số hộ gia đình" in surveys.text
    [villages] = await h.send(HEAD, "1")
    number = next(line.split(".")[0] for line in villages.text.splitlines() if line.endswith(f"Thôn {village[-1]}"))
    [expected] = await h.send(HEAD, number)
    assert "bao nhiêu hộ" in expected.text
    [opened] = await h.send(HEAD, "40")
    assert "Đã mở" in opened.text
    async with h.app.sessions() as session:
        return (await session.exec(select(Campaign).order_by(Campaign.id.desc()))).first()


async def register(h: Harness, user: int, campaign: Campaign, head: str = "Lò Văn Pọm") -> str:
    """A resident follows the deep link, consents and registers a new household; returns its code."""
    h.fake.add_private(user)
    [consent] = await h.send(user, f"/start ks{campaign.id}")
    assert "đồng ý" in consent.text.lower()
    assert "/xoadulieu" in consent.text
    [_kind] = await h.send(user, "1")
    await h.send(user, "1")  # a new household
    await h.send(user, head)
    created, _first = await h.send(user, "Xóm Trên", expect=2)
    return re.search(r"Mã hộ của bạn là (\d{3} \d{3} \d{3})", created.text).group(1)


async def answer_all(h: Harness, user: int, answers: list[str]) -> str:
    last = None
    for text in answers:
        [last] = await h.send(user, text)
    return last.text


async def responses(h: Harness) -> list[SurveyResponse]:
    async with h.app.sessions() as session:
        return list((await session.exec(select(SurveyResponse).order_by(SurveyResponse.id))).all())


async def test_head_opens_survey_and_invitation_with_deep_link_reaches_the_village_group(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await harness.wait_groups([VILLAGE_GROUPS["THON-1"]])
    [invitation] = harness.fake.messages_to(VILLAGE_GROUPS["THON-1"])
    assert "Khảo sát chuyển đổi số hộ gia đình" in invitation.text
    assert f"https://t.me/langso_test_bot?start=ks{campaign.id}" in invitation.text
    assert "/khaosat THON-1" in invitation.text  # the way in without the link
    assert not harness.fake.messages_to(VILLAGE_GROUPS["THON-2"])  # only the village it was opened for
    [again] = await open_survey_again(harness)
    assert "đã mở" in again.text


async def open_survey_again(h: Harness) -> list:
    await h.send(HEAD, "/khaosat")
    await h.send(HEAD, "1")
    await h.send(HEAD, "1")
    villages = h.fake.messages_to(HEAD)[-1]
    number = next(line.split(".")[0] for line in villages.text.splitlines() if line.endswith("Thôn 1"))
    return await h.send(HEAD, number)


async def test_a_resident_answers_everything_by_numbers_and_submits(harness: Harness) -> None:
    campaign = await open_survey(harness)
    code = await register(harness, NEIGHBOUR, campaign)
    summary = await answer_all(harness, NEIGHBOUR, ANSWERS)
    assert "1. Nhà mình có mấy người? → 5" in summary
    assert "(bỏ qua)" in summary
    assert "1. Gửi câu trả lời" in summary
    [thanks] = await harness.send(NEIGHBOUR, "1")
    assert "Cảm ơn" in thanks.text
    assert code in thanks.text
    [response] = await responses(harness)
    assert response.status == ResponseStatus.SUBMITTED
    assert response.answers["members"] == 5
    assert response.answers["internet"] == "fibre"
    assert response.answers["help_wanted"] == [q.value for q in _choices("help_wanted")][0:3:2]
    assert "sell_channels" not in response.answers  # skipped by the form's logic
    assert response.answers["phone"] is None  # "bỏ qua" on an optional question


def _choices(name: str):
    return shipped()["ho-gia-dinh"].by_name[name].choices


async def test_invalid_answers_are_explained_and_asked_again_and_change_nothing(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    explained, again = await harness.send(NEIGHBOUR, "nhiều lắm", expect=2)
    assert "con số" in explained.text
    assert "Câu 1/" in again.text
    explained, again = await harness.send(NEIGHBOUR, "45", expect=2)  # outside the form's constraint
    assert "⚠️" in explained.text
    assert "Câu 1/" in again.text
    await harness.send(NEIGHBOUR, "năm")  # a number in words is a number
    explained, again = await harness.send(NEIGHBOUR, "7", expect=2)  # more adults than members
    assert "Câu 2/" in again.text
    explained, again = await harness.send(NEIGHBOUR, "bỏ qua", expect=2)  # a required question
    assert "cần có câu trả lời" in explained.text
    [response] = await responses(harness)
    assert response.answers == {"members": 5}


async def test_quay_lai_goes_back_one_question_and_the_new_answer_replaces_the_old(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ["5", "4"])
    [back] = await harness.send(NEIGHBOUR, "quay lại")
    assert "Câu 2/" in back.text
    assert "Câu trả lời đang lưu: 4" in back.text
    [next_question] = await harness.send(NEIGHBOUR, "3")
    assert "Câu 3/" in next_question.text
    [response] = await responses(harness)
    assert response.answers == {"members": 5, "adults": 3}


async def test_buttons_answer_single_and_multiple_choice_questions(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    question = harness.fake.messages_to(NEIGHBOUR)[-1]
    for text in ANSWERS[:4]:
        [question] = await harness.send(NEIGHBOUR, text)
    await harness.press(NEIGHBOUR, NEIGHBOUR, question, "1")  # internet: fibre, by button
    await harness.settle()
    question = harness.fake.messages_to(NEIGHBOUR)[-1]
    assert "Câu 6/" in question.text
    for text in ANSWERS[5:12]:
        [question] = await harness.send(NEIGHBOUR, text)
    assert "Chọn một hoặc nhiều" in question.text
    await harness.press(NEIGHBOUR, NEIGHBOUR, question, "+2")
    await harness.press(NEIGHBOUR, NEIGHBOUR, question, "+4")
    assert "Đã chọn" in (harness.fake.answered_callbacks[-1].get("text") or "")
    await harness.press(NEIGHBOUR, NEIGHBOUR, question, "+done")
    await harness.settle()
    [response] = await responses(harness)
    assert response.answers["internet"] == "fibre"
    assert response.answers["help_wanted"] == [c.value for c in _choices("help_wanted")][1:4:2]


async def test_an_interrupted_survey_resumes_at_the_next_question_after_a_restart(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS[:3])
    await harness.restart()
    [question] = await harness.send(NEIGHBOUR, ANSWERS[3])  # the answer to question 4, sent to the new process
    assert "Câu 5/" in question.text
    welcome, question = await harness.send(NEIGHBOUR, "/khaosat", expect=2)  # or coming back by command
    assert "quay lại" in welcome.text.lower()
    assert "Câu 5/" in question.text
    [response] = await responses(harness)
    assert list(response.answers) == ["members", "adults", "smartphone_adults", "smartphones"]


async def test_two_members_share_one_household_answer_set(harness: Harness) -> None:
    campaign = await open_survey(harness)
    code = await register(harness, RESIDENT, campaign)
    await answer_all(harness, RESIDENT, ANSWERS[:2])
    harness.fake.add_private(SPOUSE)
    await harness.send(SPOUSE, "/khaosat THON-1")
    await harness.send(SPOUSE, "1")  # consent
    await harness.send(SPOUSE, "2")  # "my family already answered: I have the code"
    [wrong] = await harness.send(SPOUSE, "000000")
    assert "không tìm thấy" in wrong.text.lower()
    joined, question = await harness.send(SPOUSE, code, expect=2)
    assert "Lò Văn Pọm" in joined.text
    assert "Câu 3/" in question.text
    await answer_all(harness, SPOUSE, ANSWERS[2:])
    await harness.send(SPOUSE, "1")
    [response] = await responses(harness)
    assert response.status == ResponseStatus.SUBMITTED
    assert response.answers["members"] == 5
    async with harness.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Household))).one() == 1
    [mine] = await harness.send(RESIDENT, "/cuatoi")
    assert "đã gửi" in mine.text
    assert code in mine.text
    assert "2 người" in mine.text


async def test_summary_correction_changes_one_answer(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "2")  # correct one
    [question] = await harness.send(NEIGHBOUR, "5")
    assert "Câu 5/" in question.text
    assert "Câu trả lời đang lưu: Cáp quang" in question.text
    [summary] = await harness.send(NEIGHBOUR, "4")  # no internet at home
    assert "1. Gửi câu trả lời" in summary.text
    await harness.send(NEIGHBOUR, "1")
    [response] = await responses(harness)
    assert response.answers["internet"] == "none"
    assert response.status == ResponseStatus.SUBMITTED


async def test_residents_cannot_export_or_see_other_households(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign, head="Hà Thị Mai")
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "1")
    for command in ("/xuat", "/xuat THON-1", "/baocao", "/tiendo"):
        [refused] = await harness.send(RESIDENT, command)
        assert "dành cho trưởng thôn" in refused.text
        assert not [m for m in harness.fake.messages_to(RESIDENT) if m.document]
    [mine] = await harness.send(RESIDENT, "/cuatoi")
    assert "Hà Thị Mai" not in mine.text
    assert "chưa khai hộ nào" in mine.text
    async with harness.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(ExportRecord))).one() == 0


async def test_staff_export_xlsx_and_csv_with_labels_and_every_export_is_recorded(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign, head="Hà Thị Mai")
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "1")
    ready, document = await harness.send(TECH, "/xuat THON-1", expect=2)
    assert "1 hộ" in ready.text
    assert document.document
    assert document.params["document"].filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(document.params["document"].content))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][:3] == ("Thôn", "Số hộ", "Chủ hộ")
    assert "Nhà mình có mấy người?" in rows[0]
    exported = dict(zip(rows[0], rows[1], strict=True))
    assert exported["Thôn"] == "Thôn 1"
    assert exported["Chủ hộ"] == "Hà Thị Mai"
    assert exported["Nhà mình có mấy người?"] == 5  # numbers stay numbers
    assert exported["Nhà mình dùng mạng (internet) loại nào?"].startswith("Cáp quang")  # the label, not "fibre"
    _ready, document = await harness.send(OFFICIAL, "/xuat XA1 csv", expect=2)
    text = document.params["document"].content.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert len(table) == 2
    assert "Hà Thị Mai" in table[1]
    async with harness.app.sessions() as session:
        records = list((await session.exec(select(ExportRecord).order_by(ExportRecord.id))).all())
    assert [(r.format, r.households, r.via) for r in records] == [("xlsx", 1, "telegram"), ("csv", 1, "telegram")]


async def test_deletion_removes_the_households_rows(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "1")
    [confirm] = await harness.send(NEIGHBOUR, "/xoadulieu")
    assert "1. Xóa hẳn" in confirm.text
    [kept] = await harness.send(NEIGHBOUR, "2")
    assert "giữ nguyên" in kept.text.lower()
    assert len(await responses(harness)) == 1
    await harness.send(NEIGHBOUR, "/xoadulieu")
    [deleted] = await harness.send(NEIGHBOUR, "1")
    assert "Đã xóa" in deleted.text
    assert await responses(harness) == []
    async with harness.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Household))).one() == 0
    [mine] = await harness.send(NEIGHBOUR, "/cuatoi")
    assert "chưa khai hộ nào" in mine.text


async def test_progress_and_one_reminder_per_household_per_day(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS[:3])  # unfinished
    await register(harness, RESIDENT, campaign, head="Hà Thị Mai")
    await answer_all(harness, RESIDENT, ANSWERS)
    await harness.send(RESIDENT, "1")  # finished
    [progress] = await harness.send(HEAD, "/tiendo")
    assert "Thôn 1" in progress.text
    assert "1 hộ đã gửi, 1 hộ đang trả lời dở, 2 hộ đã khai" in progress.text
    assert "khoảng 40 hộ" in progress.text
    for _ in range(2):  # asked twice the same day: the household hears it once
        await harness.send(HEAD, "/tiendo")
        await harness.send(HEAD, "1")
        [planned] = await harness.send(HEAD, "ngay")
        assert "nhắc" in planned.text
        await harness.fake.wait_for(lambda: any("Nhắc nhẹ" in (m.text or "") for m in harness.fake.messages_to(NEIGHBOUR)))
    await harness.eventually(lambda: _reminders(harness), 1)
    reminders = [m for m in harness.fake.messages_to(NEIGHBOUR) if "Nhắc nhẹ" in (m.text or "")]
    assert len(reminders) == 1
    assert "/khaosat THON-1" in reminders[0].text
    assert not [m for m in harness.fake.messages_to(RESIDENT) if "Nhắc nhẹ" in (m.text or "")]


async def _reminders(h: Harness) -> int:
    async with h.app.sessions() as session:
        return (await session.exec(select(func.count()).select_from(Reminder).where(Reminder.status == "sent"))).one()


async def test_scorecard_equals_hand_computed_values_and_comes_with_a_chart(harness: Harness) -> None:
    campaign = await open_survey(harness)
    # household A: 5 members, 4 adults, 3 smartphones, fibre, in Zalo group, 2 pay, 3 VNeID, 4 health, online yes
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "1")
    # household B: 2 members, 2 adults, 0 smartphones, no internet, not in group, 0 pay, 1 VNeID, 2 health, no
    await register(harness, RESIDENT, campaign, head="Hà Thị Mai")
    await answer_all(harness, RESIDENT, ["2", "2", "0", "bỏ qua", "4", "2", "0", "1", "2", "2", "2", "3", "1"])
    await harness.send(RESIDENT, "bỏ qua")
    await harness.send(RESIDENT, "1")
    report, chart = await harness.send(HEAD, "/baocao THON-1", expect=2)
    # by hand: smartphones 3/6 = 50% ❌; payment 2/6 = 33% ❌; fibre 1/2 = 50% ❌; health 6/7 = 86% ❌;
    # VNeID 4/6 = 67% ❌; Zalo group 1/2 = 50% ❌; online services 1/2 = 50% ✅ (target 50)
    lines = report.text.splitlines()
    assert "🏘 Thôn 1 — 2 hộ đã gửi câu trả lời" in lines
    assert "⚠️ Mới có 2 trên 40 hộ trả lời: số liệu chưa đại diện" in report.text  # 2 of the 40 the head expects
    for line in (  # each indicator in the survey file's own words, with its numbers
        "❌ 3 trên 6 người từ 15 tuổi có điện thoại thông minh riêng (50%, mục tiêu 80%)",
        "❌ 2 trên 6 người từ 15 tuổi có tài khoản ngân hàng, ví điện tử hoặc Mobile Money (33%, mục tiêu 80%)",
        "❌ 1 trên 2 hộ có mạng cáp quang kéo vào nhà (50%, mục tiêu 80%)",
        "❌ 6 trên 7 người có sổ sức khỏe điện tử (86%, mục tiêu 90%)",
        "❌ 4 trên 6 người từ 15 tuổi có tài khoản VNeID mức 2 (67%, mục tiêu 80%)",
        "❌ 1 trên 2 hộ có người trong nhóm Zalo của thôn (50%, mục tiêu 80%)",
        "✅ 1 trên 2 hộ có người làm thủ tục hành chính trên mạng trong 12 tháng qua (50%, mục tiêu 50%)",
    ):
        assert line in lines, line
    assert "smartphone_adults" not in report.text
    assert " / " not in report.text
    assert chart.photo == "<upload>"
    survey = shipped()["ho-gia-dinh"]
    scores = {s.indicator.code: s for s in scorecard(survey, [r.answers for r in await responses(harness)], {}, "2026-11-23")}
    assert (scores["health_record_people"].numerator, scores["health_record_people"].denominator) == (6, 7)
    assert round(scores["payment_adults"].percent) == 33
    assert scores["online_services_households"].met


async def test_commune_official_sees_every_village_side_by_side(harness: Harness) -> None:
    await open_survey(harness, "THON-1")
    await open_survey(harness, "THON-2")
    report, chart = await harness.send(OFFICIAL, "/baocao", expect=2)
    assert all(f"🏘 Thôn {n}" in report.text for n in (1, 2))
    assert "Chưa hộ nào gửi câu trả lời" in report.text
    assert chart.photo == "<upload>"


MARKET = [
    ["type", "name", "label", "label::Vietnamese (vi)", "required", "relevant", "constraint", "constraint_message"],
    ["start", "start"],
    ["select_one yn", "sells", "Sells?", "Nhà mình có bán hàng qua mạng không?", "yes"],
    ["select_multiple where", "where", "Where?", "Bán ở đâu?", "yes", "${sells} = 'yes'"],
    ["integer", "orders", "Orders", "Mỗi tháng được mấy đơn?", "no", "selected(${where}, 'zalo') and not(${sells} = 'no')",
     ". >= 0 and . <= 1000", "Số đơn từ 0 đến 1000."],
    ["date", "since", "Since", "Bắt đầu bán từ ngày nào?", "no", "${sells} = 'yes'"],
    ["note", "bye", "Thanks", "Cảm ơn nhà mình!"],
]
MARKET_CHOICES = [
    ["list_name", "name", "label", "label::Vietnamese (vi)"],
    ["yn", "yes", "Yes", "Có"], ["yn", "no", "No", "Không"],
    ["where", "zalo", "Zalo", "Zalo"], ["where", "shopee", "Shopee", "Sàn Shopee"],
]


async def test_an_imported_xlsform_with_skip_logic_runs_in_the_chat(harness: Harness, tmp_path, sqlite_url: str) -> None:
    path = tmp_path / "ban-hang.xlsx"
    path.write_bytes(xlsform(tmp_path, MARKET, MARKET_CHOICES, [["form_id", "form_title"], ["ban_hang", "Bán hàng qua mạng"]]))
    env = {"LANGSO_DATABASE_URL": sqlite_url}
    imported = langso("survey", "import", str(path), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "ban-hang" in imported.stdout
    assert "Bán hàng qua mạng" in imported.stdout
    listed = langso("survey", "list", env=env)
    assert "ban-hang" in listed.stdout
    assert "ho-gia-dinh" in listed.stdout

    await harness.send(HEAD, "/khaosat")
    [surveys] = await harness.send(HEAD, "1")  # the running bot sees the import without a restart
    number = next(line.split(".")[0] for line in surveys.text.splitlines() if "Bán hàng qua mạng" in line)
    await harness.send(HEAD, number)
    await harness.send(HEAD, "1")  # Thôn 1
    await harness.send(HEAD, "bỏ qua")
    async with harness.app.sessions() as session:
        campaign = (await session.exec(select(Campaign).where(Campaign.survey_code == "ban-hang"))).one()
    await register(harness, NEIGHBOUR, campaign)
    [language] = harness.fake.messages_to(NEIGHBOUR)[-1:]  # the form has English and Vietnamese labels
    assert "1. Tiếng Việt" in language.text
    assert "2. Ngôn ngữ gốc của biểu mẫu" in language.text  # its plain `label` column
    [sells] = await harness.send(NEIGHBOUR, "1")
    assert "Nhà mình có bán hàng qua mạng không?" in sells.text
    [where] = await harness.send(NEIGHBOUR, "1")  # sells: yes -> "where" is asked
    assert "Bán ở đâu?" in where.text
    assert "2. Sàn Shopee" in where.text
    [since] = await harness.send(NEIGHBOUR, "2")  # Shopee only: the orders question is skipped
    assert "Bắt đầu bán từ ngày nào?" in since.text
    explained, _again = await harness.send(NEIGHBOUR, "31/02/2024", expect=2)
    assert "ngày/tháng/năm" in explained.text
    [summary] = await harness.send(NEIGHBOUR, "15/3/2024")
    assert "Bắt đầu bán từ ngày nào? → 15/03/2024" in summary.text
    assert "đơn" not in summary.text
    await harness.send(NEIGHBOUR, "quay lại")  # back to the date, then back again to "where"
    [where] = await harness.send(NEIGHBOUR, "quay lại")
    assert "Bán ở đâu?" in where.text
    [orders] = await harness.send(NEIGHBOUR, "1, 2")  # now Zalo too: the orders question appears
    assert "Mỗi tháng được mấy đơn?" in orders.text
    explained, _again = await harness.send(NEIGHBOUR, "5000", expect=2)
    assert "Số đơn từ 0 đến 1000." in explained.text
    await harness.send(NEIGHBOUR, "30")
    await harness.send(NEIGHBOUR, "1")
    [response] = await responses(harness)
    started = response.answers.pop("start")  # the form's `start` metadata: filled by the bot, never asked
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", started)
    assert list(response.answers.pop("#language").values()) == ["Vietnamese (vi)"]  # the resident's choice, kept
    assert response.answers == {"sells": "yes", "where": ["zalo", "shopee"], "since": "2024-03-15", "orders": 30}
    assert response.status == ResponseStatus.SUBMITTED


def test_an_xlsform_with_an_unsupported_type_is_refused_naming_its_row(tmp_path, sqlite_url: str) -> None:
    path = tmp_path / "ban-hang.xlsx"
    path.write_bytes(xlsform(tmp_path, [*MARKET[:3], ["signature", "shop", "Shop", "Chủ cửa hàng ký"]], MARKET_CHOICES))
    refused = langso("survey", "import", str(path), env={"LANGSO_DATABASE_URL": sqlite_url})
    assert refused.returncode == 1
    assert 'trang "survey", dòng 4, cột "type"' in refused.stderr
    assert "signature" in refused.stderr
    listed = langso("survey", "list", env={"LANGSO_DATABASE_URL": sqlite_url})
    assert "ban-hang" not in listed.stdout


async def test_cli_export_writes_the_file_and_records_it(harness: Harness, tmp_path, sqlite_url: str) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign, head="Hà Thị Mai")
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "1")
    out = tmp_path / "thon1.csv"
    done = langso("export", "--survey", "ho-gia-dinh", "--place", "THON-1", "--format", "csv", "--out", str(out),
                  env={"LANGSO_DATABASE_URL": sqlite_url})
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 2
    assert "Hà Thị Mai" in rows[1]
    unknown = langso("export", "--survey", "khong-co", "--place", "THON-1", env={"LANGSO_DATABASE_URL": sqlite_url})
    assert unknown.returncode == 1
    assert "ho-gia-dinh" in unknown.stderr
    async with harness.app.sessions() as session:
        [record] = (await session.exec(select(ExportRecord))).all()
    assert (record.via, record.format, record.households, record.person_id) == ("cli", "csv", 1, None)


async def test_closing_a_survey_stops_answers_and_reopening_keeps_them(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS[:2])
    [progress] = await harness.send(HEAD, "/tiendo")
    assert "2. Đóng khảo sát ở Thôn 1" in progress.text
    [closed] = await harness.send(HEAD, "2")
    assert "Đã đóng" in closed.text
    [gone] = await harness.send(NEIGHBOUR, "3")  # the next answer finds the survey closed
    assert "không còn mở" in gone.text
    [link] = await harness.send(NEIGHBOUR, f"/start ks{campaign.id}")
    assert "đã đóng" in link.text
    reopened = await open_survey(harness)
    assert reopened.id == campaign.id
    welcome, question = await harness.send(NEIGHBOUR, "/khaosat", expect=2)
    assert "2 câu" in welcome.text
    assert "Câu 3/" in question.text


async def test_a_households_answer_set_is_locked_while_one_member_answers(postgres_url: str) -> None:
    """Two members' turns on one answer set at once: the second waits for the first to commit and
    then sees its answer, so neither overwrites the other (PostgreSQL: several bot processes)."""
    await asyncio.to_thread(upgrade, postgres_url)
    engine = create_engine(postgres_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            await admin.add_place(session, "commune", "XA1", "Xã 1", None)
            village = await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
            person = Person()
            session.add(person)
            await session.flush()
            household = Household(place_id=village.id, head_name="A", join_code="123456")
            campaign = Campaign(survey_code="ho-gia-dinh", place_id=village.id, opened_by=person.id)
            session.add_all([household, campaign])
            await session.flush()
            session.add(SurveyResponse(campaign_id=campaign.id, household_id=household.id))
            await session.commit()

        def turn_in(session: AsyncSession) -> Turn:
            incoming = Incoming("telegram", "1", ChatKind.PRIVATE, "1")
            settings = HandlerSettings(ZoneInfo("Asia/Ho_Chi_Minh"), QuietHours(time(0), time(0)))
            return Turn(incoming, session, person, settings, utcnow(), Handbook([]), Catalog())

        async with sessions() as first, sessions() as second:
            mine = await locked_response(turn_in(first), campaign, household)
            other = asyncio.create_task(locked_response(turn_in(second), campaign, household))
            await asyncio.sleep(0.5)
            assert not other.done()  # the second member's turn waits for the row
            mine.answers = {"members": 5}
            first.add(mine)
            await first.commit()
            theirs = await asyncio.wait_for(other, 5)
            assert theirs.answers == {"members": 5}  # and starts from the first member's answer
    finally:
        await engine.dispose()


async def test_targets_in_config_toml_override_the_survey_files(fake, sqlite_url: str) -> None:
    h = Harness(fake, settings_for(sqlite_url, fake.url, targets={"online_services_households": 75}))
    await h.start()
    try:
        await h.seed_commune()
        campaign = await open_survey(h)
        await register(h, NEIGHBOUR, campaign)
        await answer_all(h, NEIGHBOUR, ANSWERS)
        await h.send(NEIGHBOUR, "1")
        report, _chart = await h.send(HEAD, "/baocao THON-1", expect=2)
        assert "✅ 1 trên 1 hộ có người làm thủ tục hành chính trên mạng trong 12 tháng qua (100%, mục tiêu 75%)" in report.text
        assert "mục tiêu 80%)" in report.text  # the others keep the survey file's targets
    finally:
        await h.stop()


def test_a_bad_target_in_config_toml_is_named() -> None:
    with pytest.raises(ConfigError, match=r"targets\.smartphone_adults"):
        settings_for("sqlite:///x.db", targets={"smartphone_adults": 180})


async def test_commands_with_households_data_stay_out_of_groups(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign, head="Hà Thị Mai")
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "1")
    group = VILLAGE_GROUPS["THON-1"]
    before = len(harness.fake.messages_to(group))
    for user, command in ((TECH, "/xuat"), (NEIGHBOUR, "/cuatoi"), (NEIGHBOUR, "/xoadulieu")):
        [refused] = await harness.send(user, command, chat=group)
        assert "tin nhắn riêng" in refused.text
    sent = harness.fake.messages_to(group)[before:]
    assert not [m for m in sent if m.document]
    assert not [m for m in sent if "Hà Thị Mai" in (m.text or "")]
    assert len(await responses(harness)) == 1


async def test_a_reminder_at_a_set_time_survives_a_restart_and_runs_once(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS[:3])
    await harness.send(HEAD, "/tiendo")
    await harness.send(HEAD, "1")
    [planned] = await harness.send(HEAD, "8h sáng mai")
    assert "sẽ nhắc" in planned.text
    assert "08:00" in planned.text
    await harness.restart()
    async with harness.app.sessions() as session:
        [plan] = (await session.exec(select(ReminderPlan))).all()
    job = harness.app.recurring.scheduler.get_job(f"{REMINDER_JOB}{plan.id}")
    assert job is not None
    assert job.next_run_time.astimezone(UTC) == plan.run_at
    assert not [m for m in harness.fake.messages_to(NEIGHBOUR) if "Nhắc nhẹ" in (m.text or "")]
    assert await harness.app.reminders.run(plan.id) == 1  # what the job does at 8:00
    assert await harness.app.reminders.run(plan.id) == 0  # a plan runs once
    reminders = [m for m in harness.fake.messages_to(NEIGHBOUR) if "Nhắc nhẹ" in (m.text or "")]
    assert len(reminders) == 1
    await harness.restart()
    assert harness.app.recurring.scheduler.get_job(f"{REMINDER_JOB}{plan.id}") is None


async def test_a_reply_that_could_not_be_sent_goes_out_after_a_restart(harness: Harness) -> None:
    """The turn's replies are kept with it until they went out: the answer is stored, the next question
    could not be sent (Telegram failing), and the restarted bot sends it."""
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    before = len(harness.fake.messages_to(NEIGHBOUR))
    harness.fake.fail_next(NEIGHBOUR, "500", times=3)  # every quick retry of the reply fails
    harness.fake.message(NEIGHBOUR, NEIGHBOUR, "5")
    await harness.settle()
    [response] = await responses(harness)
    assert response.answers == {"members": 5}
    assert len(harness.fake.messages_to(NEIGHBOUR)) == before  # the person saw nothing yet
    await harness.restart()
    await harness.fake.wait_for(lambda: len(harness.fake.messages_to(NEIGHBOUR)) == before + 1)
    resent = harness.fake.messages_to(NEIGHBOUR)[-1].text
    assert "Câu 2/" in resent
    assert "gửi lại tin này" in resent
    await harness.restart()  # sent once: not again
    await harness.settle()
    assert len(harness.fake.messages_to(NEIGHBOUR)) == before + 1


async def test_household_codes_cannot_be_guessed_in_one_go(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, RESIDENT, campaign)
    harness.fake.add_private(SPOUSE)
    for text in ("/khaosat THON-1", "1", "2"):
        await harness.send(SPOUSE, text)
    for guess in ("111111", "222222", "333333", "444444"):
        [wrong] = await harness.send(SPOUSE, guess)
        assert "không tìm thấy" in wrong.text.lower()
    [locked] = await harness.send(SPOUSE, "555555")
    assert "sai mã hộ nhiều lần" in locked.text
    async with harness.app.sessions() as session:
        spouse = (await session.exec(select(Person).where(Person.household_id.is_not(None)))).all()
    assert len(spouse) == 1  # only the resident who registered belongs to the household


@pytest.mark.parametrize(
    ("question", "typed", "picked"),
    [
        ("internet", "cáp quang", "fibre"),
        ("internet", "cap quang", "fibre"),
        ("internet", "  Cáp   QUANG ", "fibre"),
        ("internet", "cap qunag", "fibre"),  # two letters swapped
        ("internet", "cả hai", "both"),
        ("internet", "4g", "mobile"),  # the first words of a long label
        ("internet", "3", "both"),  # numbers as before
        ("internet", "mạng", None),  # in "Cáp quang (mạng …)" and "Không có mạng": ambiguous
        ("internet", "wifi", None),
        ("sell_channels", "zalo, facebook", ["zalo", "facebook"]),
        ("sell_channels", "Zalo và Facebok", ["zalo", "facebook"]),
        ("sell_channels", "shopee", ["marketplace"]),  # a word inside the label
        ("sell_channels", "zalo, Sàn Shopee, Lazada, TikTok Shop", ["zalo", "marketplace"]),  # commas in a label
        ("sell_channels", "1 3", ["zalo", "tiktok"]),
        ("sell_channels", "zalo, chợ", None),  # one part names nothing: nothing is picked
        ("help_wanted", "vneid, lua dao", ["vneid", "scam"]),
    ],
)
def test_typed_words_pick_choices_as_numbers_do(question: str, typed: str, picked: object) -> None:
    survey = shipped()["ho-gia-dinh"]
    value = engine.parse_answer(survey, engine.Slot(survey.by_name[question]), typed, {}, "2026-11-23")
    if picked is None:
        assert isinstance(value, engine.Invalid)
    else:
        assert value == picked


async def test_a_resident_types_the_options_words_and_an_ambiguous_one_is_asked_again(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS[:4])
    explained, again = await harness.send(NEIGHBOUR, "mạng", expect=2)
    assert "“mạng” có thể là:" in explained.text
    assert "1. Cáp quang (mạng kéo dây vào nhà)" in explained.text
    assert "4. Không có mạng" in explained.text
    assert "2. Chỉ dùng" not in explained.text
    assert "Câu 5/" in again.text
    [response] = await responses(harness)
    assert "internet" not in response.answers  # nothing stored
    [question] = await harness.send(NEIGHBOUR, "Cap quang")
    assert "Câu 6/" in question.text
    for text in [*ANSWERS[5:10], "có"]:  # sells online: "có" is the option's word
        [question] = await harness.send(NEIGHBOUR, text)
    assert "Nhà mình bán hàng ở đâu trên mạng?" in question.text
    [question] = await harness.send(NEIGHBOUR, "zalo, san shopee")
    assert "Câu 13/" in question.text
    [response] = await responses(harness)
    assert response.answers["internet"] == "fibre"
    assert response.answers["sells_online"] == "yes"
    assert response.answers["sell_channels"] == ["zalo", "marketplace"]


async def test_number_hints_state_the_limits_and_bo_qua_is_said_once(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    first = harness.fake.messages_to(NEIGHBOUR)[-1].text
    assert "Gõ một số từ 1 đến 30." in first
    assert "ví dụ" not in first
    [adults] = await harness.send(NEIGHBOUR, "4")
    assert "Gõ một số từ 1 đến 4 (tối đa 4, bằng số đã trả lời ở câu 1)." in adults.text
    [smartphone_adults] = await harness.send(NEIGHBOUR, "3")
    assert "từ 0 đến 3 (tối đa 3, bằng số đã trả lời ở câu 2)" in smartphone_adults.text
    assert "ví dụ: 4" not in smartphone_adults.text
    [smartphones] = await harness.send(NEIGHBOUR, "2")
    assert "từ 2 đến 50 (ít nhất 2, bằng số đã trả lời ở câu 3)" in smartphones.text
    assert smartphones.text.count("bỏ qua") == 1  # the form's hint says it; the bot does not say it again
    explained, again = await harness.send(NEIGHBOUR, "1", expect=2)  # fewer phones than people with one
    assert "ít nhất bằng số người có máy riêng" in explained.text
    assert "Câu 4/" in again.text
    for text in [*ANSWERS[3:13]]:
        [question] = await harness.send(NEIGHBOUR, text)
    assert "Câu 14/14" in question.text  # the "where do you sell" question was not asked: no number
    assert question.text.count("bỏ qua") == 1
    said = " ".join(m.text or "" for m in harness.fake.messages_to(NEIGHBOUR))
    assert '"' not in said  # one quote style: “…”


async def test_a_household_that_has_sent_can_view_correct_one_answer_or_leave(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS)
    await harness.send(NEIGHBOUR, "1")
    [sent] = await responses(harness)
    [offer] = await harness.send(NEIGHBOUR, "/khaosat")
    assert "hộ đã gửi câu trả lời lúc" in offer.text
    assert "hỏi tiếp" not in offer.text
    assert "1. Xem câu trả lời của hộ" in offer.text
    assert "2. Sửa một câu" in offer.text
    assert "3. Thôi" in offer.text
    [unknown] = await harness.send(NEIGHBOUR, "7")
    assert "1 đến 3" in unknown.text
    [view] = await harness.send(NEIGHBOUR, "1")
    assert "5. Nhà mình dùng mạng (internet) loại nào? → Cáp quang" in view.text
    assert "3. Thôi" in view.text
    [which] = await harness.send(NEIGHBOUR, "2")
    assert "1. Nhà mình có mấy người? → 5" in which.text
    assert "sửa câu số mấy" in which.text
    [offer] = await harness.send(NEIGHBOUR, "quay lại")  # changed their mind: the menu again
    assert "2. Sửa một câu" in offer.text
    await harness.send(NEIGHBOUR, "2")
    [question] = await harness.send(NEIGHBOUR, "5")
    assert "Câu 5/" in question.text
    assert "Câu trả lời đang lưu: Cáp quang" in question.text
    explained, _again = await harness.send(NEIGHBOUR, "wifi", expect=2)  # the same checks as the first time
    assert "⚠️" in explained.text
    [saved] = await harness.send(NEIGHBOUR, "không có mạng")
    assert "Đã lưu câu sửa" in saved.text
    assert "sửa lần cuối lúc" in saved.text
    [corrected] = await responses(harness)
    assert corrected.answers["internet"] == "none"
    assert corrected.status == ResponseStatus.SUBMITTED
    assert corrected.submitted_at == sent.submitted_at
    assert corrected.updated_at > sent.submitted_at
    [left] = await harness.send(NEIGHBOUR, "3")
    assert "giữ như đã gửi" in left.text
    [answer] = await harness.send(NEIGHBOUR, "2")  # the menu is closed: "2" is no longer a choice
    assert "Đã lưu" not in answer.text
    assert "sửa câu số mấy" not in answer.text


async def test_staff_menus_have_a_way_out(harness: Harness) -> None:
    campaign = await open_survey(harness)
    [progress] = await harness.send(HEAD, "/tiendo")
    assert "3. Thôi" in progress.text
    assert [b["text"] for row in progress.reply_markup["inline_keyboard"] for b in row][-1] == "3. Thôi"
    await harness.press(HEAD, HEAD, progress, "3")  # the button, as on Telegram
    await harness.settle()
    assert "không làm gì thêm" in harness.fake.messages_to(HEAD)[-1].text
    for steps in (["/khaosat", "3"], ["/khaosat", "1", "2"], ["/khaosat", "1", "1", "4"]):  # menu, survey, village
        for text in steps:
            [reply] = await harness.send(HEAD, text)
        assert "không làm gì thêm" in reply.text, steps
    async with harness.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Conversation))).one() == 0
        kept = await session.get(Campaign, campaign.id)
    assert kept.closed_at is None
    assert len(await harness.send(HEAD, "/tiendo")) == 1


ZALO_HEAD, ZALO_RESIDENT = "zl-head", "zl-resident"


async def _on_zalo(zalo: FakeZalo, user: str, text: str, expect: int = 1) -> list[str]:
    before = len(zalo.messages_to(user))
    zalo.push("message.text.received", user, user, text)
    await zalo.wait_for(lambda: len(zalo.messages_to(user)) >= before + expect)
    return [m.text or "" for m in zalo.messages_to(user)[before:]]


async def test_on_zalo_words_and_numbers_answer_and_a_sent_household_corrects_one_answer(
    app_on_both: App, zalo: FakeZalo
) -> None:
    async with app_on_both.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
        await admin.grant_role(session, "zalo", ZALO_HEAD, "village_head", "THON-1")
        await session.commit()
    for text in ("/khaosat", "1", "1"):  # open the household survey, the head's one village
        await _on_zalo(zalo, ZALO_HEAD, text)
    [opened] = await _on_zalo(zalo, ZALO_HEAD, "bỏ qua")
    assert "Đã mở" in opened
    [progress] = await _on_zalo(zalo, ZALO_HEAD, "/tiendo")
    assert "3. Thôi" in progress
    [left] = await _on_zalo(zalo, ZALO_HEAD, "thôi")  # the item's word works as its number
    assert "không làm gì thêm" in left

    await _on_zalo(zalo, ZALO_RESIDENT, "/khaosat THON-1")
    for text in ("đồng ý", "1", "Lò Văn Pọm"):
        await _on_zalo(zalo, ZALO_RESIDENT, text)
    await _on_zalo(zalo, ZALO_RESIDENT, "bỏ qua", expect=2)
    words = [*ANSWERS[:4], "cap quang", "co", *ANSWERS[6:10], "không", "co roi", "vneid, lua dao", "bỏ qua"]
    for text in words:
        [last] = await _on_zalo(zalo, ZALO_RESIDENT, text)
    assert "Cáp quang (mạng kéo dây vào nhà)" in last
    assert "Nhận biết lừa đảo qua mạng" in last
    await _on_zalo(zalo, ZALO_RESIDENT, "1")  # send
    [offer] = await _on_zalo(zalo, ZALO_RESIDENT, "/khaosat")
    assert "1. Xem câu trả lời của hộ" in offer
    assert "3. Thôi" in offer
    await _on_zalo(zalo, ZALO_RESIDENT, "2")
    await _on_zalo(zalo, ZALO_RESIDENT, "5")
    [saved] = await _on_zalo(zalo, ZALO_RESIDENT, "ca hai")
    assert "Đã lưu câu sửa" in saved
    async with app_on_both.sessions() as session:
        [response] = (await session.exec(select(SurveyResponse))).all()
    assert response.status == ResponseStatus.SUBMITTED
    assert response.answers["internet"] == "both"
    assert response.answers["help_wanted"] == ["vneid", "scam"]
    assert response.answers["digital_address"] == "yes"
