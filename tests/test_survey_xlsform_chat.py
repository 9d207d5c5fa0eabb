"""An imported XLSForm answered over chat, end to end, on Telegram and on Zalo: a household form with a
member repeat whose count is an earlier answer, a sum over the members' ages shown in a later note, a
cascading choice (province → commune), a select_one with "other", a location, a photo, an open repeat
ended by "không", two languages; then the export holds every answer."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from openpyxl import load_workbook
from sqlmodel import select

from bot.app import App
from handlers import admin
from handlers.surveys.catalog import keep
from handlers.surveys.forms import load_survey
from handlers.surveys.reports import export_file
from storage.models import Campaign, Identity, Place, ResponseStatus, SurveyResponse
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.harness import HEAD, Harness
from tests.trust import link_code
from tests.xlsforms import xlsform

RESIDENT = 210
VI, TAY = "label::Vietnamese (vi)", "label::Tày (tay)"
HOUSEHOLD = [
    ["type", "name", VI, TAY, "required", "constraint", "calculation", "repeat_count", "choice_filter"],
    ["start", "start"],
    ["select_one province", "prov", "Tỉnh nào?", "[Tày] Tỉnh nào?", "yes"],
    ["select_one commune", "commune", "Xã nào?", "[Tày] Xã nào?", "yes", "", "", "", "prov = ${prov}"],
    ["integer", "hh_size", "Nhà mình có mấy người?", "[Tày] Mấy người?", "yes", ". >= 1 and . <= 10"],
    ["begin_repeat", "members", "Thành viên", "[Tày] Thành viên", "", "", "", "${hh_size}"],
    ["text", "m_name", "Họ tên", "[Tày] Họ tên", "yes"],
    ["integer", "age", "Tuổi của ${m_name}", "[Tày] Tuổi ${m_name}", "yes", ". >= 0 and . <= 120"],
    ["end_repeat"],
    ["calculate", "total_age", "", "", "", "", "sum(${age})"],
    ["note", "age_note", "Tổng số tuổi cả nhà: ${total_age}", "[Tày] Tổng: ${total_age}"],
    ["begin_group", "living", "Điều kiện sống", "[Tày] Điều kiện sống"],
    ["select_one water or_other", "water", "Nhà mình dùng nước gì?", "[Tày] Nước gì?", "yes"],
    ["geopoint", "home", "Vị trí nhà mình", "[Tày] Vị trí", "yes"],
    ["end_group"],
    ["image", "house_photo", "Ảnh ngôi nhà", "[Tày] Ảnh nhà", "yes"],
    ["begin_repeat", "animals", "Vật nuôi", "[Tày] Vật nuôi"],
    ["text", "a_kind", "Loại vật nuôi", "[Tày] Loại vật nuôi", "yes"],
    ["end_repeat"],
]
CHOICES = [
    ["list_name", "name", VI, TAY, "prov"],
    ["province", "lc", "Lào Cai", "Lào Cai"],
    ["province", "yb", "Yên Bái", "Yên Bái"],
    ["commune", "bat_xat", "Bát Xát", "Bát Xát", "lc"],
    ["commune", "sa_pa", "Sa Pa", "Sa Pa", "lc"],
    ["commune", "mu_cang_chai", "Mù Cang Chải", "Mù Cang Chải", "yb"],
    ["commune", "tram_tau", "Trạm Tấu", "Trạm Tấu", "yb"],
    ["water", "tap", "Nước máy", "[Tày] Nước máy"],
    ["water", "well", "Giếng", "[Tày] Giếng"],
]
TITLE = "Hộ gia đình và vật nuôi"
SETTINGS = [["form_id", "form_title"], ["ho_vat_nuoi", TITLE]]

Say = Callable[..., Awaitable[list[str]]]
Sent = Callable[[], Awaitable[list[str]]]


async def _answers(app: App) -> dict[str, object]:
    async with app.sessions() as session:
        [response] = (await session.exec(select(SurveyResponse))).all()
        return dict(response.answers)


async def _import(app: App, tmp_path: Path, rows: list[list[object]] = HOUSEHOLD,
                  choices: list[list[object]] = CHOICES, settings: list[list[object]] = SETTINGS) -> None:
    content = xlsform(tmp_path, rows, choices, settings)
    survey = load_survey("form.xlsx", content)
    if rows is HOUSEHOLD:
        assert survey.languages == ("Vietnamese (vi)", "Tày (tay)")  # not "default" from what pyxform adds
    async with app.sessions() as session:
        await keep(session, survey, "form.xlsx", content, datetime.now(UTC))
        await session.commit()


async def _open(say: Say, title: str = TITLE, village: str = "Thôn 1") -> None:
    """The village head opens the imported survey for Thôn 1 (or `village`) through the chat."""
    await say("/khaosat")
    [surveys] = await say("1")
    number = next(line.split(".")[0] for line in surveys.splitlines() if title in line)
    [asked] = await say(number)
    if "bao nhiêu hộ" not in asked:  # a head of several villages picks the village first
        await say(next(line.split(".")[0] for line in asked.splitlines() if line.endswith(village)))
    [opened] = await say("bỏ qua")
    assert "Đã mở" in opened


async def _answer_household(
    stored: Callable[[], Awaitable[dict[str, object]]], say: Say, send_location: Sent, send_photo: Sent,
    bad_place: str, restart: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """A resident answers the whole form, with a language switch, a back across members, a bad location
    (and, where the test can, a restart of the bot between two members' answers)."""
    for text in ("1", "1", "Lò Văn Pọm"):  # consent, a new household, its head
        await say(text)
    _created, language = await say("Xóm Trên", expect=2)
    assert "1. Tiếng Việt" in language
    assert "2. Tày" in language
    [prov] = await say("2")
    assert "[Tày] Tỉnh nào?" in prov
    [language] = await say("đổi ngôn ngữ")
    assert "2. Tày" in language
    [prov] = await say("1")
    assert "Tỉnh nào?" in prov
    assert "[Tày]" not in prov
    [commune] = await say("Yên Bái")
    assert "1. Mù Cang Chải" in commune  # only Yên Bái's communes, numbered afresh
    assert "2. Trạm Tấu" in commune
    assert "Bát Xát" not in commune
    await say("2")
    [name] = await say("2")  # two members
    assert "Thành viên 1/2" in name
    [age] = await say("Lò Thị Mai")
    assert "Tuổi của Lò Thị Mai" in age
    assert "Gõ một số từ 0 đến 120." in age  # the member's constraint, read in the instance
    assert "Thành viên 1/2" in age
    if restart is not None:  # the conversation is in the database: the new process asks the same slot
        await restart()
    [name] = await say("30")
    assert "Thành viên 2/2" in name
    await say("Lò Văn Pọm")
    [back] = await say("quay lại")
    assert "Câu trả lời đang lưu: Lò Văn Pọm" in back
    [back] = await say("quay lại")  # across members: the first member's age
    assert "Tuổi của Lò Thị Mai" in back
    assert "Thành viên 1/2" in back
    assert "Câu trả lời đang lưu: 30" in back
    [age] = await say("31")
    assert "Tuổi của Lò Văn Pọm" in age
    assert "Thành viên 2/2" in age
    [water] = await say("6")
    assert "Tổng số tuổi cả nhà: 37" in water  # the sum over the members, in the note before
    assert "📂 Điều kiện sống" in water  # entering a group says its heading
    assert "3. Khác" in water
    [other] = await say("3")
    [home] = await say("Nước suối")
    assert "Vị trí nhà mình" in home
    before = await stored()
    explained, again = await say(bad_place, expect=2)
    assert "⚠️ Bot chưa đọc được vị trí này" in explained
    assert "22.43, 104.12" in explained  # how to send one
    assert "Vị trí nhà mình" in again
    assert "📂" not in again  # the heading once
    assert await stored() == before  # nothing changed
    [photo] = await send_location()
    assert "Ảnh ngôi nhà" in photo
    [animal] = await send_photo()
    assert "Loại vật nuôi" in animal
    [more] = await say("Trâu")
    assert "Còn vật nuôi nào nữa không?" in more
    [summary] = await say("không")
    assert "Tuổi của Lò Văn Pọm (Thành viên 2) → 6" in summary
    assert "Xã nào? → Trạm Tấu" in summary
    assert "Nước suối" in summary
    assert "Ảnh ngôi nhà → 📷 đã gửi ảnh" in summary
    assert "Loại vật nuôi (Vật nuôi 1) → Trâu" in summary
    assert "1. Gửi câu trả lời" in summary
    [thanks] = await say("1")
    assert "Cảm ơn" in thanks
    assert other


async def _exported(app: App, survey_code: str) -> bytes:
    """Thôn 1's answers as the .xlsx an official downloads."""
    async with app.sessions() as session:
        villages = list((await session.exec(select(Place).where(Place.code == "THON-1"))).all())
        done = await export_file(session, app.surveys, villages, "THON-1", "xlsx", via="test", person_id=None,
                                 now=datetime.now(UTC), tz=app.settings.handler.timezone, public_url="",
                                 survey_code=survey_code)
        await session.commit()
    assert done is not None
    return done.content


async def _check_and_export(app: App, platform: str, latitude: str) -> None:
    async with app.sessions() as session:
        [response] = (await session.exec(select(SurveyResponse))).all()
    content = await _exported(app, "ho-vat-nuoi")
    answers = response.answers
    assert response.status == ResponseStatus.SUBMITTED
    assert (answers["prov"], answers["commune"], answers["hh_size"]) == ("yb", "tram_tau", 2)
    assert answers["members"] == [{"m_name": "Lò Thị Mai", "age": 31}, {"m_name": "Lò Văn Pọm", "age": 6}]
    assert answers["total_age"] == 37
    assert (answers["water"], answers["water_other"]) == ("other", "Nước suối")
    assert answers["home"].startswith(f"{latitude} 104.12 ")
    assert answers["house_photo"]["kind"] == "photo"
    assert answers["house_photo"]["platform"] == platform
    assert answers["animals"] == [{"a_kind": "Trâu"}]
    assert answers["animals#done"] is True
    columns = _columns(content)
    found = list(columns.values())
    assert columns["Họ tên"] == ["Lò Thị Mai", "Lò Văn Pọm"]  # the members' sheet
    assert [31, 6] in found  # their ages
    assert [37] in found  # the sum over them
    assert columns["Xã nào?"] == ["Trạm Tấu"]
    assert columns["Xin ghi rõ: Nhà mình dùng nước gì?"] == ["Nước suối"]
    assert [float(latitude)] in found  # the location's latitude column
    assert columns["Ảnh ngôi nhà"][0]  # the photo: its link, or the file's reference until it is stored
    assert columns["Loại vật nuôi"] == ["Trâu"]  # the open repeat's sheet


def _columns(content: bytes) -> dict[str, list[object]]:
    """Each column of the export under its header, whichever sheet it is on (the households' sheet, one
    sheet per repeat)."""
    book = load_workbook(io.BytesIO(content))
    columns: dict[str, list[object]] = {}
    for sheet in book.worksheets:
        header, *rows = list(sheet.iter_rows(values_only=True))
        for n, name in enumerate(header):
            columns[str(name)] = [row[n] for row in rows]
    return columns


async def test_a_household_form_is_answered_on_telegram_and_exported_with_every_answer(
    harness: Harness, tmp_path: Path
) -> None:
    await _import(harness.app, tmp_path)

    async def head(text: str, expect: int = 1) -> list[str]:
        return [m.text or "" for m in await harness.send(HEAD, text, expect=expect)]

    await _open(head)
    async with harness.app.sessions() as session:
        campaign = (await session.exec(select(Campaign).where(Campaign.survey_code == "ho-vat-nuoi"))).one()
    harness.fake.add_private(RESIDENT)
    await harness.send(RESIDENT, f"/start ks{campaign.id}")

    async def say(text: str, expect: int = 1) -> list[str]:
        return [m.text or "" for m in await harness.send(RESIDENT, text, expect=expect)]

    async def location() -> list[str]:
        return [m.text or "" for m in await harness.send(RESIDENT, location=(22.43, 104.12))]

    async def photo() -> list[str]:
        return [m.text or "" for m in await harness.send(RESIDENT, photo=True)]

    await _answer_household(lambda: _answers(harness.app), say, location, photo, "ở gần suối", restart=harness.restart)
    await _check_and_export(harness.app, "telegram", "22.43")


ZALO_HEAD, ZALO_RESIDENT = "zl-head", "zl-resident"


async def _zalo_village(app: App) -> None:
    """Thôn 1 of Xã Hòa Bình, whose head is on Zalo."""
    async with app.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
        await admin.grant_role(session, "zalo", ZALO_HEAD, "village_head", "THON-1")
        await session.commit()


async def _head_opens_and_resident_starts(head: Say, say: Say, title: str, hamlet: str) -> str:
    """The head opens survey `title` in Thôn 1; the resident consents and makes a household headed by Lò
    Văn Pọm in `hamlet`: what the bot asks next."""
    await _open(head, title)
    await say("/khaosat THON-1")
    for text in ("1", "1", "Lò Văn Pọm"):  # consent, "a new household", the head's name
        await say(text)
    _created, asked = await say(hamlet, expect=2)
    return asked


def _on_zalo(zalo: FakeZalo) -> Callable[..., Awaitable[list[str]]]:
    """Push one event from a Zalo user; the texts of the `expect` replies."""

    async def on_zalo(user: str, event: str, text: str | None, expect: int, **kw: object) -> list[str]:
        before = len(zalo.messages_to(user))
        zalo.push(event, user, user, text, **kw)  # type: ignore[arg-type]
        await zalo.wait_for(lambda: len(zalo.messages_to(user)) >= before + expect)
        return [m.text or "" for m in zalo.messages_to(user)[before:]]

    return on_zalo


async def test_the_same_form_is_answered_on_zalo_with_typed_coordinates_and_a_photo(
    app_on_both: App, zalo: FakeZalo, tmp_path: Path
) -> None:
    await _zalo_village(app_on_both)
    await _import(app_on_both, tmp_path)
    on_zalo = _on_zalo(zalo)

    async def head(text: str, expect: int = 1) -> list[str]:
        return await on_zalo(ZALO_HEAD, "message.text.received", text, expect)

    async def say(text: str, expect: int = 1) -> list[str]:
        return await on_zalo(ZALO_RESIDENT, "message.text.received", text, expect)

    async def location() -> list[str]:
        return await say("22.43, 104.12")

    async def photo() -> list[str]:
        url = zalo.host("nha.jpg", b"\xff\xd8\xff a house")
        return await on_zalo(ZALO_RESIDENT, "message.image.received", None, 1, photo_url=url)

    await _open(head)
    await say("/khaosat THON-1")
    await _answer_household(lambda: _answers(app_on_both), say, location, photo, "22.43")  # one number is no place
    await _check_and_export(app_on_both, "zalo", "22.43")


TOOLS = [
    ["list_name", "name", "label", "land"],
    ["land", "paddy", "Ruộng"], ["land", "hill", "Nương"],
    ["tool", "plough", "Cày", "paddy"], ["tool", "hoe", "Cuốc", "hill"], ["tool", "harrow", "Bừa", "paddy"],
    ["tool", "machete", "Dao phát", "hill"],
]
FIELDS = [
    ["type", "name", "label", "required", "default", "repeat_count", "required_message", "choice_filter"],
    ["select_one land", "land", "Nhà mình làm ruộng hay nương?", "yes"],
    ["select_multiple tool", "tools", "Nhà mình có những dụng cụ nào?", "yes", "", "", "", "land = ${land}"],
    ["integer", "children", "Nhà mình có mấy cháu đi học?", "yes", "2"],
    ["acknowledge", "ready", "Bạn lấy sẵn sổ hộ khẩu ra nhé.", "yes"],
    ["image", "papers", "Ảnh sổ hộ khẩu", "yes"],
    ["geoshape", "field", "Ranh giới mảnh ruộng", "yes"],
    ["begin_repeat", "plots", "Mảnh ruộng", "", "", "2"],
    ["begin_repeat", "crops", "Cây trồng"],
    ["text", "crop", "Trồng cây gì?", "yes", "", "", "Xin ghi tên một cây trồng trên mảnh này."],
    ["end_repeat"],
    ["end_repeat"],
]


async def test_a_default_kept_by_ok_a_file_of_the_wrong_kind_a_shape_point_by_point_and_nested_repeats(
    harness: Harness, tmp_path: Path
) -> None:
    await _import(harness.app, tmp_path, FIELDS, TOOLS, [["form_id", "form_title"], ["ruong", "Ruộng vườn"]])

    async def head(text: str, expect: int = 1) -> list[str]:
        return [m.text or "" for m in await harness.send(HEAD, text, expect=expect)]

    async def say(text: str | None = None, expect: int = 1, **kw: object) -> list[str]:
        return [m.text or "" for m in await harness.send(RESIDENT, text, expect=expect, **kw)]

    await _open(head, "Ruộng vườn")
    harness.fake.add_private(RESIDENT)
    await say("/khaosat THON-1")
    for text in ("1", "1", "Lò Văn Pọm"):
        await say(text)
    _created, _land = await say("bỏ qua", expect=2)
    [tools] = await say("Nương")
    assert "1. Cuốc" in tools  # the hill's tools only, numbered afresh, on the buttons too
    assert "2. Dao phát" in tools
    assert "Cày" not in tools
    question = harness.fake.messages_to(RESIDENT)[-1]
    await harness.press(RESIDENT, RESIDENT, question, "+2")
    assert "Đã chọn: Dao phát" in (harness.fake.answered_callbacks[-1].get("text") or "")
    await harness.press(RESIDENT, RESIDENT, question, "+done")
    await harness.fake.wait_for(lambda: "cháu đi học" in (harness.fake.messages_to(RESIDENT)[-1].text or ""))
    children = harness.fake.messages_to(RESIDENT)[-1].text or ""
    assert "Có sẵn: 2. Gõ “ok” để giữ" in children
    [ready] = await say("ok")
    assert "Bạn lấy sẵn sổ hộ khẩu ra nhé." in ready
    await harness.press(RESIDENT, RESIDENT, harness.fake.messages_to(RESIDENT)[-1], "ok")  # its one button
    await harness.fake.wait_for(lambda: "Ảnh sổ hộ khẩu" in (harness.fake.messages_to(RESIDENT)[-1].text or ""))
    explained, again = await say(voice=True, expect=2)  # a voice note for a photo question
    assert "⚠️ Câu này cần một ảnh" in explained
    assert "Ảnh sổ hộ khẩu" in again
    explained, _again = await say("ảnh đây", expect=2)
    assert "⚠️ Câu này cần một ảnh" in explained
    explained, _again = await say(photo=True, file_size=25_000_000, expect=2)  # more than a bot may fetch
    assert "⚠️ Tệp này lớn quá" in explained
    assert "papers" not in await _answers(harness.app)  # nothing taken
    [field] = await say(document=True, file_name="so-ho-khau.png", mime_type="image/png")  # a photo sent as a file
    assert "Ranh giới mảnh ruộng" in field
    assert "gõ “xong”" in field
    [kept] = await say(location=(22.43, 104.12))
    assert "điểm thứ 1" in kept
    [kept] = await say("22.44, 104.13")
    assert "cần ít nhất 3 điểm" in kept
    [explained] = await say("xong")  # two points are no area: the points are kept, one more is asked
    assert "⚠️" in explained
    [kept] = await say(location=(22.45, 104.12))
    assert "điểm thứ 3" in kept
    [crop] = await say("xong")
    assert "Mảnh ruộng 1/2" in crop
    assert "Cây trồng thứ 1" in crop
    explained, _again = await say("bỏ qua", expect=2)  # required: the form's own words say why
    assert "⚠️ Xin ghi tên một cây trồng trên mảnh này." in explained
    [more] = await say("Lúa")
    assert "Mảnh ruộng 1/2" in more
    assert "Còn cây trồng nào nữa không?" in more
    [crop] = await say("có")
    assert "Cây trồng thứ 2" in crop
    [more] = await say("quay lại")  # "có" by mistake: back to the question, the empty instance not counted
    assert "Đã có 1 cây trồng. Còn cây trồng nào nữa không?" in more
    [crop] = await say("có")
    assert "Cây trồng thứ 2" in crop
    await say("Ngô")
    [crop] = await say("khong")
    assert "Mảnh ruộng 2/2" in crop
    assert "Cây trồng thứ 1" in crop
    await say("Chè")
    [summary] = await say("không")
    assert "Trồng cây gì? (Mảnh ruộng 1, Cây trồng 2) → Ngô" in summary
    assert "Ranh giới mảnh ruộng → 📍 3 điểm" in summary
    number = next(line.split(".")[0] for line in summary.splitlines() if line.endswith("→ Ngô"))
    await say("2")  # correct one answer
    [asked] = await say(number)
    assert "Câu trả lời đang lưu: Ngô" in asked
    assert "Cây trồng thứ 2" in asked
    [summary] = await say("Sắn")
    assert "Trồng cây gì? (Mảnh ruộng 1, Cây trồng 2) → Sắn" in summary
    answers = await _answers(harness.app)
    assert answers["tools"] == ["machete"]
    assert answers["children"] == 2
    assert answers["ready"] == "OK"
    assert answers["papers"]["kind"] == "document"
    assert answers["papers"]["filename"] == "so-ho-khau.png"
    points = answers["field"].split(";")
    assert len(points) == 4  # an area is closed: its first point again at the end
    assert points[0] == points[-1]
    assert points[0].startswith("22.43 104.12")
    assert answers["plots"] == [
        {"crops": [{"crop": "Lúa"}, {"crop": "Sắn"}], "crops#done": True},
        {"crops": [{"crop": "Chè"}], "crops#done": True},
    ]


KINDS = [
    ["type", "name", "label", "required", "parameters"],
    ["time", "wake", "Nhà mình thường dậy lúc mấy giờ?", "yes"],
    ["datetime", "rain", "Trận mưa to gần nhất là lúc nào?", "yes"],
    ["date", "moved", "Nhà mình chuyển đến ngày nào?", "yes"],
    ["range", "signal", "Sóng điện thoại ở nhà mạnh mức nào?", "yes", "start=1 end=5 step=1"],
    ["rank crop", "income", "Xếp các cây theo thu nhập, nhiều nhất trước", "yes"],
    ["acknowledge", "agree", "Bạn đồng ý để thôn lưu các câu trả lời này.", "yes"],
    ["barcode", "meter", "Mã vạch trên công tơ điện", "yes"],
    ["geotrace", "road", "Đường vào nhà mình", "yes"],
]
CROPS = [["list_name", "name", "label"], ["crop", "rice", "Lúa"], ["crop", "corn", "Ngô"], ["crop", "tea", "Chè"]]


async def test_times_dates_a_range_a_rank_an_acknowledge_a_barcode_and_a_trace_typed_then_exported(
    harness: Harness, tmp_path: Path
) -> None:
    await _import(harness.app, tmp_path, KINDS, CROPS, [["form_id", "form_title"], ["nep_song", "Nếp sống"]])

    async def head(text: str, expect: int = 1) -> list[str]:
        return [m.text or "" for m in await harness.send(HEAD, text, expect=expect)]

    async def say(text: str | None = None, expect: int = 1, **kw: object) -> list[str]:
        return [m.text or "" for m in await harness.send(RESIDENT, text, expect=expect, **kw)]

    await _open(head, "Nếp sống")
    harness.fake.add_private(RESIDENT)
    await say("/khaosat THON-1")
    for text in ("1", "1", "Lò Văn Pọm"):
        await say(text)
    _created, wake = await say("bỏ qua", expect=2)
    assert "Gõ giờ, ví dụ: 8:30 hoặc 2 giờ chiều" in wake
    [rain] = await say("8 giờ sáng")
    assert "Trận mưa to gần nhất là lúc nào?" in rain
    yesterday = {(datetime.now(harness.app.settings.handler.timezone) - timedelta(days=1)).date()}
    [moved] = await say("hôm qua 7 giờ tối")
    yesterday.add((datetime.now(harness.app.settings.handler.timezone) - timedelta(days=1)).date())  # midnight
    assert "ngày/tháng/năm" in moved
    [signal] = await say("15/3/2024")
    assert "Gõ một số từ 1 đến 5." in signal
    before = await _answers(harness.app)
    explained, again = await say("9", expect=2)  # out of the range: said politely, nothing kept
    assert "⚠️ Câu này cần một số từ 1 đến 5" in explained
    assert "Sóng điện thoại ở nhà mạnh mức nào?" in again
    assert await _answers(harness.app) == before
    assert "signal" not in before
    [income] = await say("4")
    assert "1. Lúa\n2. Ngô\n3. Chè" in income
    [agree] = await say("2 1 3")
    assert "Gõ “ok” để xác nhận." in agree
    [meter] = await say("ok")
    assert "Mã vạch trên công tơ điện" in meter
    [road] = await say("8935049500018")
    assert "Gửi từng điểm một" in road
    [kept] = await say("22.43, 104.12")
    assert "điểm thứ 1" in kept
    [kept] = await say("22.44, 104.13")
    assert "điểm thứ 2" in kept
    [kept] = await say(location=(22.45, 104.14))
    assert "điểm thứ 3" in kept
    [summary] = await say("xong")
    assert "Nhà mình thường dậy lúc mấy giờ? → 08:00" in summary
    assert "Nhà mình chuyển đến ngày nào? → 15/03/2024" in summary
    assert "Xếp các cây theo thu nhập, nhiều nhất trước → Ngô, Lúa, Chè" in summary
    assert "Đường vào nhà mình → 📍 3 điểm" in summary
    [thanks] = await say("1")
    assert "Cảm ơn" in thanks
    answers = await _answers(harness.app)
    assert answers["wake"] == "08:00:00"
    assert answers["rain"] in {f"{day.isoformat()}T19:00:00" for day in yesterday}
    assert answers["moved"] == "2024-03-15"
    assert answers["signal"] == 4
    assert answers["income"] == ["corn", "rice", "tea"]  # in the order given
    assert answers["agree"] == "OK"
    assert answers["meter"] == "8935049500018"
    assert answers["road"] == "22.43 104.12 0 0;22.44 104.13 0 0;22.45 104.14 0 0"
    content = await _exported(harness.app, "nep-song")
    columns = _columns(content)
    assert columns["Nhà mình thường dậy lúc mấy giờ?"] == [time(8, 0)]  # real times and dates in the sheet
    assert columns["Trận mưa to gần nhất là lúc nào?"] in ([datetime.combine(day, time(19, 0))] for day in yesterday)
    assert columns["Nhà mình chuyển đến ngày nào?"] == [datetime(2024, 3, 15)]  # a date cell, read back as a datetime
    [header, row] = list(load_workbook(io.BytesIO(content)).active.iter_rows(min_row=1, max_row=2))
    shown = {str(title.value): cell.number_format for title, cell in zip(header, row, strict=True)}
    assert shown["Nhà mình thường dậy lúc mấy giờ?"] == "hh:mm:ss"
    assert shown["Trận mưa to gần nhất là lúc nào?"] == "dd/mm/yyyy hh:mm:ss"
    assert shown["Nhà mình chuyển đến ngày nào?"] == "dd/mm/yyyy"
    assert columns["Sóng điện thoại ở nhà mạnh mức nào?"] == [4]
    assert columns["Xếp các cây theo thu nhập, nhiều nhất trước"] == ["Ngô Lúa Chè"]  # KoBo's way: in order
    assert columns["Bạn đồng ý để thôn lưu các câu trả lời này."] == ["OK"]
    assert columns["Mã vạch trên công tơ điện"] == ["8935049500018"]  # text, not a number that loses digits
    assert columns["Đường vào nhà mình"] == ["22.43 104.12 0 0;22.44 104.13 0 0;22.45 104.14 0 0"]


GARDEN = [["type", "name", "label", "required"], ["geopoint", "garden", "Vườn nhà mình ở đâu?", "yes"],
          ["integer", "trees", "Vườn có bao nhiêu cây?", "yes"]]
MAPS_LINK = "https://www.google.com/maps/place/V%C6%B0%E1%BB%9Dn+nh%C3%A0/@22.4312,104.1234,17z/data=!3m1!4b1"


async def test_a_place_answered_on_zalo_with_a_google_maps_link(app_on_both: App, zalo: FakeZalo, tmp_path: Path) -> None:
    await _zalo_village(app_on_both)
    await _import(app_on_both, tmp_path, GARDEN, [], [["form_id", "form_title"], ["vuon", "Vườn nhà"]])
    on_zalo = _on_zalo(zalo)

    async def head(text: str, expect: int = 1) -> list[str]:
        return await on_zalo(ZALO_HEAD, "message.text.received", text, expect)

    async def say(text: str, expect: int = 1) -> list[str]:
        return await on_zalo(ZALO_RESIDENT, "message.text.received", text, expect)

    garden = await _head_opens_and_resident_starts(head, say, "Vườn nhà", "bỏ qua")
    assert "Vườn nhà mình ở đâu?" in garden
    explained, again = await say("https://maps.app.goo.gl/AbCdEf123", expect=2)  # a short link has no coordinates
    assert "⚠️ Bot chưa đọc được vị trí này" in explained
    assert "Vườn nhà mình ở đâu?" in again
    [trees] = await say(MAPS_LINK)
    assert "Vườn có bao nhiêu cây?" in trees
    answers = await _answers(app_on_both)
    assert answers["garden"] == "22.4312 104.1234 0 0"


WATER_FORM = [
    ["type", "name", VI, TAY, "required"],
    ["integer", "hh_size", "Nhà mình có mấy người?", "[Tày] Mấy người?", "yes"],
    ["select_one water", "water", "Nhà mình dùng nước gì?", "[Tày] Nước gì?", "yes"],
    ["text", "job", "Chủ hộ làm nghề gì?", "[Tày] Nghề gì?", "yes"],
]
WATER_CHOICES = [["list_name", "name", VI, TAY], *(row[:4] for row in CHOICES if row[0] == "water")]
SPOUSE = 211


async def _registered(harness: Harness, tmp_path: Path, form: list[list[str]], choices: list[list[str]],
                      form_id: str, title: str) -> tuple[Say, str]:
    """The form imported and opened for Thôn 1; RESIDENT registers a household. Returns how RESIDENT
    talks to the bot, and the bot's first message after the household is made."""
    await _import(harness.app, tmp_path, form, choices, [["form_id", "form_title"], [form_id, title]])

    async def head(text: str, expect: int = 1) -> list[str]:
        return [m.text or "" for m in await harness.send(HEAD, text, expect=expect)]

    async def say(text: str, expect: int = 1) -> list[str]:
        return [m.text or "" for m in await harness.send(RESIDENT, text, expect=expect)]

    await _open(head, title)
    harness.fake.add_private(RESIDENT)
    await say("/khaosat THON-1")
    for text in ("1", "1", "Lò Văn Pọm"):
        await say(text)
    _created, first = await say("Xóm Trên", expect=2)
    return say, first


async def _water_survey(harness: Harness, tmp_path: Path) -> Say:
    """Nước sạch (Vietnamese and Tày) opened for Thôn 1; RESIDENT registers a household and is asked
    which language. Returns how RESIDENT talks to the bot."""
    say, language = await _registered(harness, tmp_path, WATER_FORM, WATER_CHOICES, "nuoc", "Nước sạch")
    assert "2. Tày" in language
    return say


async def test_the_language_a_resident_chose_is_kept_when_they_come_back_to_the_survey(
    harness: Harness, tmp_path: Path
) -> None:
    say = await _water_survey(harness, tmp_path)
    [size] = await say("2")  # Tày
    assert "[Tày] Mấy người?" in size
    await say("4")
    [paused] = await say("/huy")
    assert "Đã tạm dừng" in paused
    await harness.restart()
    welcome, water = await say("/khaosat", expect=2)  # not asked again: the next question in Tày
    assert "[Tày] Nước gì?" in water
    assert "2. [Tày] Giếng" in water
    assert "Tày" in welcome  # the language kept, and how to change it
    assert "đổi ngôn ngữ" in welcome
    await say("2")
    [summary] = await say("Làm ruộng")
    assert "[Tày] Mấy người? → 4" in summary
    assert "[Tày] Nước gì? → [Tày] Giếng" in summary
    [thanks] = await say("1")  # sent: the conversation ends
    assert "Cảm ơn" in thanks
    await say("/khaosat")  # the sent set's menu
    [seen] = await say("1")  # view the answers
    assert "[Tày] Nước gì? → [Tày] Giếng" in seen
    [which] = await say("2")  # correct one
    assert "3. [Tày] Nghề gì? → Làm ruộng" in which
    [job] = await say("3")
    assert "[Tày] Nghề gì?" in job
    assert "Câu trả lời đang lưu: Làm ruộng" in job
    await say("/huy")
    [mine] = await say("/cuatoi")
    assert "[Tày] Mấy người? → 4" in mine
    await say("/khaosat")
    [language] = await say("đổi ngôn ngữ")  # at the sent set's menu too
    assert "2. Tày" in language
    [menu] = await say("1")
    assert "1. Xem câu trả lời" in menu
    [seen] = await say("1")
    assert "Nhà mình dùng nước gì? → Giếng" in seen


def _household_code(harness: Harness) -> str:
    """The code the bot gave the resident when they made their household."""
    created = harness.fake.messages_to(RESIDENT)[-2].text or ""
    return created.split("Mã hộ của bạn là ")[1][:11]


async def _spouse_joins(harness: Harness, code: str) -> str:
    """The spouse opens the survey in Thôn 1 and joins the household by its code: the language question."""
    harness.fake.add_private(SPOUSE)
    for text in ("/khaosat THON-1", "1", "2"):  # consent, "I have the household's code"
        await harness.send(SPOUSE, text)
    _joined, language = await harness.send(SPOUSE, code, expect=2)
    return language.text or ""


async def test_the_language_is_changed_at_the_summary_and_each_member_chooses_their_own(
    harness: Harness, tmp_path: Path
) -> None:
    say = await _water_survey(harness, tmp_path)
    code = _household_code(harness)
    for text in ("2", "4", "1"):  # Tày
        await say(text)
    [summary] = await say("Làm ruộng")
    assert "[Tày] Nghề gì? → Làm ruộng" in summary
    assert "đổi ngôn ngữ" in summary
    [language] = await say("đổi ngôn ngữ")
    assert "2. Tày" in language
    [summary] = await say("1")  # Tiếng Việt, back at the summary
    assert "Chủ hộ làm nghề gì? → Làm ruộng" in summary
    assert "[Tày]" not in summary
    assert "1. Gửi câu trả lời" in summary
    assert "2. Tày" in await _spouse_joins(harness, code)  # asked: the choice was not theirs
    [summary] = await harness.send(SPOUSE, "2")
    assert "[Tày] Nghề gì? → Làm ruộng" in (summary.text or "")
    await say("/huy")
    _welcome, summary_again = await say("/khaosat", expect=2)  # the resident's own choice stays theirs
    assert "Chủ hộ làm nghề gì? → Làm ruộng" in summary_again


async def test_a_member_who_moves_to_a_household_of_another_village_leaves_no_language_choice_behind(
    harness: Harness, tmp_path: Path
) -> None:
    say = await _water_survey(harness, tmp_path)
    code = _household_code(harness)
    [size] = await say("2")  # the resident reads the form in Tày
    assert "[Tày] Mấy người?" in size
    await _spouse_joins(harness, code)
    await harness.send(SPOUSE, "1")  # the spouse reads it in Tiếng Việt

    async def head(text: str, expect: int = 1) -> list[str]:
        return [m.text or "" for m in await harness.send(HEAD, text, expect=expect)]

    await _open(head, "Nước sạch", "Thôn 2")
    await say("/khaosat THON-2")  # the resident moves: a household of their own in Thôn 2
    for text in ("1", "1", "Lò Văn Pọm"):
        await say(text)
    _created, language = await say("Xóm Dưới", expect=2)
    assert "2. Tày" in language  # asked afresh in the new household
    async with harness.app.sessions() as session:
        thon_1 = (await session.exec(select(Place.id).where(Place.code == "THON-1"))).one()
        campaign = (await session.exec(select(Campaign.id).where(Campaign.place_id == thon_1))).one()
        left = (await session.exec(select(SurveyResponse).where(SurveyResponse.campaign_id == campaign))).one()
        spouse = (await session.exec(select(Identity.person_id).where(Identity.user_id == str(SPOUSE)))).one()
    assert left.answers["#language"] == {str(spouse): "Vietnamese (vi)"}  # only the spouse's, who stayed


async def test_a_member_who_leaves_with_undone_linked_accounts_leaves_no_language_choice_behind(
    app_on_both: App, fake: FakeTelegram, zalo: FakeZalo, tmp_path: Path
) -> None:
    """The Zalo member of a household links a Telegram account (the household goes with the join), which
    chooses its own language; once the accounts are separated, the household's answers keep no trace of
    that choice (a language can hint at who someone is), and the Zalo member's own choice still holds."""
    await _zalo_village(app_on_both)
    await _import(app_on_both, tmp_path, WATER_FORM, WATER_CHOICES, [["form_id", "form_title"], ["nuoc", "Nước sạch"]])
    on_zalo = _on_zalo(zalo)

    async def head(text: str, expect: int = 1) -> list[str]:
        return await on_zalo(ZALO_HEAD, "message.text.received", text, expect)

    async def say(text: str, expect: int = 1) -> list[str]:
        return await on_zalo(ZALO_RESIDENT, "message.text.received", text, expect)

    async def telegram(text: str, expect: int = 1) -> list[str]:
        before = len(fake.messages_to(RESIDENT))
        fake.message(RESIDENT, RESIDENT, text)
        await fake.wait_for(lambda: len(fake.messages_to(RESIDENT)) >= before + expect)
        return [m.text or "" for m in fake.messages_to(RESIDENT)[before:]]

    language = await _head_opens_and_resident_starts(head, say, "Nước sạch", "Xóm Trên")
    assert "2. Tày" in language
    [size] = await say("2")  # the Zalo member reads the form in Tày
    assert "[Tày] Mấy người?" in size
    await say("4")
    async with app_on_both.sessions() as session:
        member = (await session.exec(select(Identity.person_id).where(Identity.user_id == ZALO_RESIDENT))).one()

    fake.add_private(RESIDENT)
    [code] = await telegram("/lienket")  # the Telegram account, in no household, gives the code
    assert "Đã liên kết" in (await say(f"/lienket {link_code(code)}"))[0]
    _welcome, language = await telegram("/khaosat", expect=2)  # the household came with the join
    assert "2. Tày" in language
    [water] = await telegram("1")  # Tiếng Việt, chosen while joined
    assert "Nhà mình dùng nước gì?" in water
    chosen = (await _answers(app_on_both))["#language"]
    assert isinstance(chosen, dict)
    assert len(chosen) == 2

    assert "Đã tách" in (await telegram("/lienket tach"))[0]
    assert (await _answers(app_on_both))["#language"] == {str(member): "Tày (tay)"}  # the one who left: gone
    welcome, water = await say("/khaosat", expect=2)
    assert "Tày" in welcome
    assert "[Tày] Nước gì?" in water  # the Zalo member's choice still holds


NUMBERED = [
    ["type", "name", "label", "required", "relevant", "repeat_count", "constraint"],
    ["select_one yn", "sells", "Nhà mình có bán hàng qua mạng không?", "yes"],
    ["text", "where", "Bán ở đâu?", "yes", "${sells} = 'yes'"],
    ["note", "intro", "Giờ đến từng người trong nhà."],
    ["integer", "hh_size", "Nhà mình có mấy người?", "yes", "", "", ". >= 1 and . <= 10"],
    ["begin_group", "people", "Người trong nhà"],
    ["begin_repeat", "members", "Thành viên", "", "", "${hh_size}"],
    ["text", "m_name", "Họ tên", "yes"],
    ["end_repeat"],
    ["end_group"],
    ["acknowledge", "ready", "Còn hai câu nữa thôi.", "yes"],
    ["integer", "adults", "Mấy người lớn?", "yes", "", "", ". >= 0 and . <= ${hh_size}"],
    ["text", "job", "Chủ hộ làm nghề gì?", "yes"],
]
YES_NO = [["list_name", "name", "label"], ["yn", "yes", "Có"], ["yn", "no", "Không"]]


async def test_a_question_has_the_same_number_in_its_prompt_the_summary_and_the_correction(
    harness: Harness, tmp_path: Path
) -> None:
    """A question skipped by `relevant`, a note, a group, a repeat of three members and an acknowledge:
    "Câu N" in a prompt is N in the summary, and typing N corrects that very answer."""
    say, sells = await _registered(harness, tmp_path, NUMBERED, YES_NO, "so_cau", "Đánh số")
    assert "Câu 1/" in sells
    [size] = await say("2")  # no: "Bán ở đâu?" is not asked, and has no number
    assert "Câu 2/" in size
    [name] = await say("3")  # three members, each with their own number
    assert "Câu 3/8: Họ tên" in name
    assert "Thành viên 1/3" in name
    await say("Mai")
    [name] = await say("Pọm")
    assert "Câu 5/8: Họ tên" in name
    assert "Thành viên 3/3" in name
    [ready] = await say("Páo")
    assert "Câu 6/8: Còn hai câu nữa thôi." in ready
    [adults] = await say("ok")
    assert "Câu 7/8: Mấy người lớn?" in adults
    assert "bằng số đã trả lời ở câu 2" in adults  # the household's size, as numbered
    [job] = await say("2")
    assert "Câu 8/8: Chủ hộ làm nghề gì?" in job
    [summary] = await say("Làm nương")
    for line in ("1. Nhà mình có bán hàng qua mạng không? → Không", "2. Nhà mình có mấy người? → 3",
                 "3. Họ tên (Thành viên 1) → Mai", "4. Họ tên (Thành viên 2) → Pọm", "5. Họ tên (Thành viên 3) → Páo",
                 "6. Còn hai câu nữa thôi. → OK", "7. Mấy người lớn? → 2", "8. Chủ hộ làm nghề gì? → Làm nương"):
        assert line in summary
    [which] = await say("2")  # correct one
    assert "(1–8)" in which
    [name] = await say("4")
    assert "Câu 4/8: Họ tên" in name
    assert "Thành viên 2/3" in name
    assert "Câu trả lời đang lưu: Pọm" in name
