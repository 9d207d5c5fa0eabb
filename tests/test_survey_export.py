"""The answers exported as KoBoToolbox users expect: the households' sheet, one sheet per repeat (nested
too) whose rows point at their parent row, a geopoint's four number columns, a select_multiple's 0/1
columns, real date cells, media as links, labels or names; CSV the households' sheet only; an answer
that looks like a formula stays text."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlmodel import select

from handlers.surveys.definition import Group, Item, Option, Question, QuestionType, Repeat, Survey, flatten
from handlers.surveys.export import LABELS, ExportOptions, Submission, to_bytes, workbook
from handlers.surveys.reports import export
from messages import render
from storage.models import Campaign, Household, Person, Place, SurveyResponse, utcnow
from tests.cli_helpers import langso
from tests.harness import Harness

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
Q = QuestionType
MEMBER = ("members",)
PHONE = ("members", "phones")
ITEMS: tuple[Item, ...] = (
    Question("start", Q.METADATA, "", metadata="start"),
    Question("intro", Q.NOTE, "Cảm ơn nhà mình đã trả lời"),
    Group("house", "Nhà", children=(
        Question("loc", Q.GEOPOINT, "Vị trí nhà"),
        Question("internet", Q.SELECT_MULTIPLE, "Mạng internet",
                 choices=(Option("fibre", "Cáp quang"), Option("mobile", "Di động"), Option("none", "Không có"))),
        Question("visit", Q.DATE, "Ngày ghé thăm"),
        Question("opens", Q.TIME, "Giờ mở cửa"),
        Question("photo", Q.IMAGE, "Ảnh nhà"),
        Question("note_text", Q.TEXT, "Ghi chú"),
    )),
    Repeat("members", "Thành viên", children=(
        Question("m_name", Q.TEXT, "Họ tên", scope=MEMBER),
        Question("age", Q.INTEGER, "Tuổi", scope=MEMBER),
        Repeat("phones", "Điện thoại", scope=MEMBER, children=(
            Question("brand", Q.SELECT_ONE, "Hãng", scope=PHONE,
                     choices=(Option("samsung", "Sam Sung"), Option("oppo", "Oppo"))),
        )),
    )),
    Question("adults", Q.CALCULATE, "", calculation=None),
)
SURVEY = Survey("thanh-vien", "Khảo sát hộ gia đình", "", flatten(ITEMS), items=ITEMS)
PHOTO = {"kind": "photo", "platform": "telegram", "ref": "AgADBAAD", "filename": "nha-mai.jpg",
         "mime": "image/jpeg", "size": 52_113, "media_id": 17}
MAI = {
    "start": "2026-03-01T08:05:00", "loc": "22.43 104.12 310.5 4.8", "internet": ["fibre", "mobile"],
    "visit": "2026-03-01", "opens": "07:30:00", "photo": PHOTO, "note_text": '=HYPERLINK("http://x","bấm")',
    "members": [
        {"m_name": "Hà Thị Mai", "age": 41, "phones": [{"brand": "samsung"}, {"brand": "oppo"}], "phones#done": True},
        {"m_name": "Lò Văn Pọm", "age": 12, "phones": []},
    ],
    "members#done": True, "adults": 1,
}
POM = {"start": "2026-03-02T09:00:00", "loc": None, "internet": None, "visit": None, "opens": None, "photo": None,
       "note_text": "-5 con gà", "members": [{"m_name": "Lò Thị Hoa", "age": 30, "phones": [{"brand": "oppo"}]}],
       "adults": 1}


def _submissions() -> list[Submission]:
    updated = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    return [
        Submission("Thôn 1", Household(id=7, place_id=1, head_name="Hà Thị Mai", hamlet="Xóm Trên", join_code="A"),
                   SurveyResponse(id=1, campaign_id=1, household_id=7, answers=MAI, status="submitted",
                                  updated_at=updated)),
        Submission("Thôn 1", Household(id=9, place_id=1, head_name="Lò Văn Pọm", hamlet="", join_code="B"),
                   SurveyResponse(id=2, campaign_id=1, household_id=9, answers=POM, status="in_progress",
                                  updated_at=updated)),
    ]


def _address(media: Mapping[str, object]) -> str | None:
    return f"https://langso.example/tep/{media['media_id']}?h=abc"


def _xlsx(options: ExportOptions = LABELS) -> dict[str, Worksheet]:
    book = load_workbook(io.BytesIO(to_bytes(workbook(SURVEY, _submissions(), TZ, options), "xlsx")))
    return {page.title: page for page in book.worksheets}


def _records(page: Worksheet) -> list[dict[str, object]]:
    header, *rows = page.iter_rows(values_only=True)
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_each_repeat_is_a_sheet_whose_rows_point_at_the_household_or_the_enclosing_instance() -> None:
    pages = _xlsx()
    assert list(pages) == ["Khảo sát hộ gia đình", "Thành viên", "Điện thoại"]  # households first, as /xuat reads
    households = _records(pages["Khảo sát hộ gia đình"])
    assert [(h["Chủ hộ"], h["Số hộ"], h["_index"]) for h in households] == [("Hà Thị Mai", 7, 1), ("Lò Văn Pọm", 9, 2)]
    members = _records(pages["Thành viên"])
    assert [(m["Họ tên"], m["Tuổi"], m["_index"], m["_parent_table_name"], m["_parent_index"], m["_submission__id"])
            for m in members] == [
        ("Hà Thị Mai", 41, 1, "Khảo sát hộ gia đình", 1, 7),
        ("Lò Văn Pọm", 12, 2, "Khảo sát hộ gia đình", 1, 7),
        ("Lò Thị Hoa", 30, 3, "Khảo sát hộ gia đình", 2, 9),
    ]
    phones = _records(pages["Điện thoại"])
    # Mai's two phones hang on her row (1), Hoa's on hers (3); Pọm has none
    assert [(p["Hãng"], p["_index"], p["_parent_table_name"], p["_parent_index"], p["_submission__id"])
            for p in phones] == [("Sam Sung", 1, "Thành viên", 1, 7), ("Oppo", 2, "Thành viên", 1, 7),
                                 ("Oppo", 3, "Thành viên", 3, 9)]
    # the member's questions are on its sheet, not the households'; a note is never a column
    assert "Họ tên" not in households[0]
    assert "Cảm ơn nhà mình đã trả lời" not in households[0]


def test_cells_are_typed_geopoint_split_select_multiple_spread_and_media_linked() -> None:
    page = _xlsx(ExportOptions(link=_address))["Khảo sát hộ gia đình"]
    mai, pom = _records(page)
    assert mai["Vị trí nhà"] == "22.43 104.12 310.5 4.8"
    assert [mai[f"_Vị trí nhà_{p}"] for p in ("latitude", "longitude", "altitude", "precision")] == [
        22.43, 104.12, 310.5, 4.8]
    assert mai["Mạng internet"] == "Cáp quang Di động"  # KoBo joins the chosen labels with spaces
    assert [mai[f"Mạng internet/{c}"] for c in ("Cáp quang", "Di động", "Không có")] == [1, 1, 0]
    # skipped: empty, not "no" to every choice
    assert [pom[f"Mạng internet/{c}"] for c in ("Cáp quang", "Di động", "Không có")] == [None, None, None]
    assert pom["_Vị trí nhà_latitude"] is None
    header = [c.value for c in page[1]]
    visit = page.cell(2, header.index("Ngày ghé thăm") + 1)
    assert visit.value == datetime(2026, 3, 1)  # a date cell (openpyxl reads dates back as datetimes)
    assert visit.is_date
    assert visit.number_format == "dd/mm/yyyy"
    assert mai["Giờ mở cửa"] == time(7, 30)
    assert mai["start"] == datetime(2026, 3, 1, 8, 5)
    assert mai["Cập nhật lúc"] == datetime(2026, 3, 1, 8, 30)  # the village's time
    photo = page.cell(2, header.index("Ảnh nhà") + 1)
    assert photo.value == "nha-mai.jpg"
    assert photo.hyperlink.target == "https://langso.example/tep/17?h=abc"
    assert mai["adults"] == 1  # a calculation without a label is headed by its name


def test_without_an_address_a_media_cell_holds_the_file_name() -> None:
    page = _xlsx()["Khảo sát hộ gia đình"]
    header = [c.value for c in page[1]]
    photo = page.cell(2, header.index("Ảnh nhà") + 1)
    assert photo.value == "nha-mai.jpg"
    assert photo.hyperlink is None


def test_names_instead_of_labels() -> None:
    pages = _xlsx(ExportOptions("name", "name"))
    assert list(pages) == ["thanh-vien", "members", "phones"]
    [mai, _pom] = _records(pages["thanh-vien"])
    assert mai["internet"] == "fibre mobile"
    assert (mai["internet/fibre"], mai["internet/none"]) == (1, 0)
    assert mai["_loc_latitude"] == 22.43
    assert mai["Chủ hộ"] == "Hà Thị Mai"  # the bot's own columns keep their Vietnamese names
    assert [p["brand"] for p in _records(pages["phones"])] == ["samsung", "oppo", "oppo"]
    assert _records(pages["phones"])[0]["_parent_table_name"] == "members"


def test_an_answer_that_looks_like_a_formula_stays_text() -> None:
    page = _xlsx()["Khảo sát hộ gia đình"]
    header = [c.value for c in page[1]]
    cell = page.cell(2, header.index("Ghi chú") + 1)
    assert cell.data_type == "s"
    assert cell.value == '=HYPERLINK("http://x","bấm")'
    rows = list(csv.reader(io.StringIO(to_bytes(workbook(SURVEY, _submissions(), TZ), "csv").decode("utf-8-sig"))))
    column = rows[0].index("Ghi chú")
    assert [rows[1][column], rows[2][column]] == ['\'=HYPERLINK("http://x","bấm")', "'-5 con gà"]


def test_csv_is_the_households_sheet_with_iso_dates() -> None:
    text = to_bytes(workbook(SURVEY, _submissions(), TZ), "csv").decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    mai, pom = list(reader)
    assert "Họ tên" not in (reader.fieldnames or [])  # a member's answers only go to the XLSX's sheet of members
    assert mai["Ngày ghé thăm"] == date(2026, 3, 1).isoformat()
    assert mai["Giờ mở cửa"] == "07:30:00"
    assert mai["Cập nhật lúc"] == "2026-03-01T08:30:00"
    assert mai["Mạng internet/Di động"] == "1"
    assert pom["Mạng internet/Di động"] == ""
    assert pom["Trạng thái"] == "Đang trả lời"


async def test_cli_export_with_names_and_a_csv_that_says_which_repeats_it_leaves_out(
    harness: Harness, sqlite_url: str, tmp_path: Path
) -> None:
    assert harness.app is not None
    async with harness.app.sessions() as session:
        village = (await session.exec(select(Place).where(Place.code == "THON-1"))).one()
        head = Person(display_name="Trưởng thôn")
        mai = Household(place_id=village.id, head_name="Hà Thị Mai", join_code="K7Q2M9")
        session.add_all([head, mai])
        await session.flush()
        for code, answers in (("ho-gia-dinh", {"members": 5, "internet": "fibre", "sell_channels": ["zalo"]}),
                              (SURVEY.code, MAI)):
            campaign = Campaign(survey_code=code, place_id=village.id, opened_by=head.id)
            session.add(campaign)
            await session.flush()
            session.add(SurveyResponse(campaign_id=campaign.id, household_id=mai.id, answers=answers,
                                       status="submitted"))
        await session.commit()
        repeats = await export(session, SURVEY, [village], "csv", TZ, public_url="", now=utcnow())
    assert repeats.households == 1
    assert repeats.left_out == ["Thành viên", "Điện thoại"]
    told = render("export_written", path="ho.csv", households=1, left_out=repeats.left_out)
    assert "(Thành viên, Điện thoại) chỉ có trong tệp XLSX: chạy lại với --format xlsx" in told
    told = render("survey_export_ready", households=1, fmt="csv", left_out=repeats.left_out, code="THON-1")
    assert "(Thành viên, Điện thoại) chỉ có trong tệp XLSX: nhắn /xuat THON-1." in told

    out = tmp_path / "ho.xlsx"
    done = langso("export", "--survey", "ho-gia-dinh", "--place", "THON-1", "--names", "--out", str(out),
                  env={"LANGSO_DATABASE_URL": sqlite_url})
    assert done.returncode == 0, done.stderr
    assert "chỉ có trong tệp XLSX" not in done.stdout  # an XLSX leaves nothing out
    [row] = _records(load_workbook(out).active)
    assert (row["members"], row["internet"], row["sell_channels"]) == (5, "fibre", "zalo")
    assert row["sell_channels/zalo"] == 1
    assert row["Chủ hộ"] == "Hà Thị Mai"


def test_sheet_titles_excel_refuses_are_made_valid_and_distinct() -> None:
    long = "Người ở cùng nhà / tạm vắng [năm 2026]"  # '/', '[' and over 31 characters: Excel refuses it
    items: tuple[Item, ...] = (
        Repeat("residents", long, children=(Question("r_name", Q.TEXT, "Tên", scope=("residents",)),)),
        Repeat("absent", long, children=(Question("a_name", Q.TEXT, "Tên", scope=("absent",)),)),
    )
    survey = Survey("o-cung", "Người ở cùng", "", flatten(items), items=items)
    answers = {"residents": [{"r_name": "Mai"}], "absent": [{"a_name": "Pọm"}]}
    household = Household(id=3, place_id=1, head_name="Hà Thị Mai", join_code="C")
    response = SurveyResponse(id=3, campaign_id=1, household_id=3, answers=answers, status="submitted",
                              updated_at=datetime(2026, 3, 1, tzinfo=UTC))
    sheets = workbook(survey, [Submission("Thôn 1", household, response)], TZ)
    book = load_workbook(io.BytesIO(to_bytes(sheets, "xlsx")))
    assert book.sheetnames == ["Người ở cùng", "Người ở cùng nhà tạm vắng năm 2", "Người ở cùng nhà tạm vắng n (2)"]
    assert [_records(page)[0]["Tên"] for page in book.worksheets[1:]] == ["Mai", "Pọm"]
