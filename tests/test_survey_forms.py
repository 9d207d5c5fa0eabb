"""Survey files: the expression language, our TOML format and XLSForm workbooks (built here with
openpyxl, so no binary fixture is kept in the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest
import xlwt

from handlers.surveys import engine
from handlers.surveys.answers import settle
from handlers.surveys.definition import Group, Indicator, Option, QuestionType, Survey
from handlers.surveys.expr import ExprError, compile_expr
from handlers.surveys.form_files import pack, unpack
from handlers.surveys.forms import FormError, load_survey
from messages import render
from tests.cli_helpers import langso
from tests.xlsforms import xlsform

TODAY = "2026-03-01"
ANSWERS: dict[str, object] = {
    "members": 4,
    "area": 1.5,
    "internet": "fibre",
    "channels": ["zalo", "facebook"],
    "born": "1990-05-17",
    "phone": "0912345678",
    "count_text": "07",
    "empty": None,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${members} > 3", True),
        ("${members} >= 5", False),
        ("${members} = '4'", True),  # a numeric string compares as a number
        ("${count_text} = 7", True),
        ("${internet} = 'fibre'", True),
        ("${internet} != 'fibre'", False),
        ("${area} < 2 and ${area} > 1.4", True),
        ("${born} < '2000-01-01'", True),  # ISO dates order as text
        ("${empty} = ''", True),  # unanswered is the empty string
        ("${missing} = ''", True),
        ("${empty} != ''", False),
        ("${empty} > 0", False),  # but it has no order
        ("${empty} < 0", False),
        ("${empty} = 0", False),
        ("selected(${channels}, 'zalo')", True),
        ("selected(${channels}, 'tiktok')", False),
        ("selected(${internet}, 'fibre')", True),  # select_one answers are plain strings
        ("selected(${empty}, 'zalo')", False),
        ("count-selected(${channels})", 2),
        ("count-selected(${empty})", 0),
        ("string-length(${phone})", 10),
        ("not(selected(${channels}, 'tiktok')) and (${members} = 1 or ${members} = 4)", True),
        ("not(${empty})", True),
        ("${internet} = 'mobile' or ${members} < 2", False),
        ("1 + 2 * 3 = 7", True),  # precedence
        ("${members} div 8", 0.5),
        ("-7 mod 3", -1),  # XPath keeps the dividend's sign
        ("-${members} + 1", -3),
        ("${empty} + 1", None),
        ("${members} div 0", None),
        ("(${internet} = 'fibre') + (${internet} = 'both')", 1),  # a true comparison counts 1
        ("if(${members} > 3, 'big', 'small')", "big"),
        ("true() and not(false())", True),
        ("regex(${phone}, '0[0-9]{9}')", True),
        ("regex(${phone}, '[0-9]{3}')", False),  # the whole value must match
        ("regex(${empty}, '')", True),
        ("today() > ${born}", True),
        ("today()", "2026-03-01"),
    ],
)
def test_expression_values(text: str, expected: object) -> None:
    assert compile_expr(text).evaluate(ANSWERS, today=TODAY) == expected


def test_current_value_and_references() -> None:
    expr = compile_expr(". >= 1 and . <= ${members} and ${area} > 0")
    assert expr.references == frozenset({"members", "area"})
    assert expr.evaluate(ANSWERS, current=4, today=TODAY) is True
    assert expr.evaluate(ANSWERS, current=5, today=TODAY) is False
    assert expr.evaluate(ANSWERS, current=None, today=TODAY) is False


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        ("pulldata(${file}, 'name', 'id', ${members})", "arity", "pulldata"),  # the file is named, not computed
        ("instance(${list})/root/item", "arity", "instance"),
        ("instance('list')/root/item[name = 1", "unclosed", "]"),
        ("instance('list')/root/+", "syntax", "+"),
        ("/data/members > 1", "path", "/data/members"),
        ("members > 1", "path", "members"),
        ("because pyxform doesn't know", "words", "because"),  # prose in an expression cell
        ("${members} >", "syntax", ""),
        ("(${members} > 1", "unclosed", ")"),
        ("if(${members} < 1, 0, 1", "unclosed", ")"),
        ("${bad name} = 1", "bad_reference", "bad name"),
        ("selected(${channels})", "arity", "selected"),
        ("regex(., '[0-9')", "bad_regex", "[0-9"),
    ],
)
def test_expression_errors(text: str, reason: str, detail: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_expr(text)
    assert (caught.value.reason, caught.value.detail) == (reason, detail)


TOML = """
code = "thu-nghiem"
title = "Khảo sát thử"
purpose = "Thôn hỏi để thử."

[choices]
yes_no = [ { value = "yes", label = "Có" }, { value = "no", label = "Không" } ]

[[questions]]
name = "members"
type = "integer"
label = "Nhà mình có mấy người?"
required = true
constraint = ". >= 1 and . <= 30"
constraint_message = "Từ 1 đến 30."

[[questions]]
name = "fibre"
type = "select_one"
label = "Có cáp quang không?"
choices = "yes_no"
relevant = "${members} > 1"

[[questions]]
name = "phone"
type = "phone"
label = "Số điện thoại?"
hint = "Không muốn cho thì bỏ qua."

[[indicators]]
code = "fibre"
title = "Hộ có cáp quang"
numerator = "${fibre} = 'yes'"
denominator = "1"
numerator_text = "số hộ có cáp quang"
denominator_text = "số hộ đã trả lời"
target = 80
"""


def test_toml_survey_loads() -> None:
    survey = load_survey("thu.toml", TOML.encode())
    assert (survey.code, survey.title, survey.purpose, survey.source) == (
        "thu-nghiem", "Khảo sát thử", "Thôn hỏi để thử.", "thu.toml",
    )
    members, fibre, phone = survey.questions
    assert members.required
    assert members.kind is QuestionType.INTEGER
    assert members.constraint == compile_expr(". >= 1 and . <= 30")
    assert fibre.choices == (Option("yes", "Có"), Option("no", "Không"))
    assert fibre.relevant is not None
    assert fibre.relevant.references == {"members"}
    assert (phone.kind, phone.hint, phone.required) == (QuestionType.PHONE, "Không muốn cho thì bỏ qua.", False)
    (indicator,) = survey.indicators
    assert indicator.target == 80.0
    assert indicator.numerator.evaluate({"fibre": "yes"}, today=TODAY) is True


def test_toml_unknown_key_fails() -> None:
    text = TOML.replace('hint = "Không muốn', 'colour = "red"\nhint = "Không muốn')
    with pytest.raises(FormError) as caught:
        load_survey("thu.toml", text.encode())
    error = caught.value
    assert (error.reason, error.table, error.row, error.column) == ("unknown_key", "questions", 3, "colour")
    assert 'mục [[questions]] thứ 3, khoá "colour"' in str(error)


@pytest.mark.parametrize("sentence", ["{numerator} hộ có cáp quang", "{numerator} trên {denominator} {hộ}"])
def test_an_indicator_sentence_without_both_numbers_fails(sentence: str) -> None:
    text = TOML.replace("target = 80", f'sentence = "{sentence}"\ntarget = 80')
    with pytest.raises(FormError) as caught:
        load_survey("thu.toml", text.encode())
    assert (caught.value.reason, caught.value.table, caught.value.column) == ("bad_sentence", "indicators", "sentence")
    assert "{numerator} và {denominator}" in str(caught.value)


def test_toml_unknown_top_level_key_and_bad_syntax_fail() -> None:
    with pytest.raises(FormError) as caught:
        load_survey("thu.toml", ("version = 2\n" + TOML).encode())
    assert (caught.value.reason, caught.value.column) == ("unknown_key", "version")
    with pytest.raises(FormError) as caught:
        load_survey("thu.toml", b"code = ")
    assert caught.value.reason == "bad_toml"


HEADER = ["type", "name", "label::English (en)", "label::Vietnamese (vi)", "required", "relevant"]
YES_NO = [["list_name", "name", "label::Vietnamese (vi)"], ["yn", "yes", "Có"], ["yn", "no", "Không"]]


def _load(content: bytes, filename: str = "ho.xlsx", media: dict[str, bytes] | None = None) -> Survey:
    return load_survey(filename, content, media)


def _refused(content: bytes, media: dict[str, bytes] | None = None) -> FormError:
    with pytest.raises(FormError) as caught:
        _load(content, media=media)
    return caught.value


def test_xlsform_loads_into_expected_survey(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            [*HEADER, "constraint", "constraint_message::Vietnamese (vi)", "hint", "appearance"],
            ["start", "start"],
            ["integer", "members", "People?", "Mấy người?", "yes", None, ". >= 1 and . <= 30", "Từ 1 đến 30.", "Gõ số"],
            [],
            ["select_multiple ch", "channels", "Where?", "Bán ở đâu?", "TRUE", None, None, None, None, "minimal"],
            ["begin group", "selling", "Selling", "Bán hàng", None, "${members} > 1"],
            ["select_one yn", "fibre", None, "Cáp quang?", "no", "selected(${channels}, 'zalo') or not(${members} = 2)"],
            ["end group"],
            ["note", "bye", None, "Cảm ơn!"],
            ["end", "end"],
        ],
        choices=[*YES_NO, ["ch", "zalo", "Zalo"], ["ch", "fb", "Facebook"]],
        settings=[["form_id", "form_title"], ["Ho_Gia_Dinh", "Khảo sát hộ"]],
        indicators=[
            ["code", "title", "numerator", "denominator", "numerator_text", "denominator_text", "target", "sentence"],
            ["fibre", "Hộ có cáp quang", "${fibre} = 'yes'", "1", "số hộ có cáp quang", "số hộ đã trả lời", 75,
             "{numerator} trên {denominator} hộ có cáp quang"],
        ],
    )
    survey = _load(content)
    assert (survey.code, survey.title, survey.purpose, survey.source) == (
        "ho-gia-dinh", "Khảo sát hộ", render("survey_default_purpose"), "ho.xlsx",
    )
    assert survey.languages == ("Vietnamese (vi)", "English (en)", "default")  # Vietnamese first, then form order
    assert [(q.name, q.kind) for q in survey.questions] == [
        ("start", QuestionType.METADATA), ("members", QuestionType.INTEGER), ("channels", QuestionType.SELECT_MULTIPLE),
        ("fibre", QuestionType.SELECT_ONE), ("bye", QuestionType.NOTE), ("end", QuestionType.METADATA),
    ]
    start, members, channels, fibre, bye, _end = survey.questions
    assert start.metadata == "start"
    assert (members.label, members.labels, members.hint, members.required) == (
        "Mấy người?", (("English (en)", "People?"),), "Gõ số", True,
    )
    assert (members.constraint, members.constraint_message) == (compile_expr(". >= 1 and . <= 30"), "Từ 1 đến 30.")
    assert (channels.required, channels.appearance, channels.choices) == (
        True, "minimal", (Option("zalo", "Zalo"), Option("fb", "Facebook")),
    )
    assert not fibre.required
    assert fibre.relevant == compile_expr("(${members} > 1) and (selected(${channels}, 'zalo') or not(${members} = 2))")
    assert fibre.relevant.evaluate({"members": 3, "channels": ["fb"]}, today=TODAY) is True
    assert fibre.relevant.evaluate({"members": 1, "channels": ["zalo"]}, today=TODAY) is False  # the group's holds
    group = survey.items[3]
    assert isinstance(group, Group)
    assert (group.name, group.label, group.labels) == ("selling", "Bán hàng", (("English (en)", "Selling"),))
    assert group.children == (fibre,)
    assert bye.label == "Cảm ơn!"
    assert survey.indicators == (
        Indicator(
            "fibre", "Hộ có cáp quang", compile_expr("${fibre} = 'yes'"), compile_expr("1"),
            "số hộ có cáp quang", "số hộ đã trả lời", 75.0, "{numerator} trên {denominator} hộ có cáp quang",
        ),
    )


def test_xlsform_purpose_from_settings(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [HEADER, ["integer", "members", None, "Mấy người?"]],
        settings=[["form_id", "form_title", "purpose"], ["ho", "Hộ", "Thôn hỏi để biết số người."]],
    )
    assert _load(content).purpose == "Thôn hỏi để biết số người."


def test_xlsform_without_settings_takes_pyxform_defaults_from_the_file_name(tmp_path: Path) -> None:
    """No settings sheet (111 of 132 real forms had none or used pyxform's own names): pyxform's
    id_string (the file name) is the code and the title."""
    content = xlsform(tmp_path, [["type", "name", "label"], ["integer", "members", "Mấy người?"]], settings=[])
    survey = _load(content, "Điều tra Hộ_2024 (v2).xlsx")
    assert (survey.code, survey.title, survey.languages) == ("dieu-tra-ho-2024-v2", "Điều tra Hộ_2024 (v2)", ())
    named = xlsform(tmp_path, [["type", "name", "label"], ["integer", "m", "M"]], settings=[["id_string", "title"], ["x_1", "X"]])
    assert (_load(named).code, _load(named).title) == ("x-1", "X")


def test_xlsform_geopoint_and_every_chat_type_import(tmp_path: Path) -> None:
    """Types the bot once refused now import with their kind (pyxform's older names too)."""
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label", "parameters", "appearance"],
            ["geopoint", "where", "Ở đâu?"], ["geotrace", "road", "Đường"], ["geoshape", "field", "Ruộng"],
            ["photo", "pic", "Ảnh"], ["audio", "voice", "Tiếng"], ["video", "clip", "Phim"], ["file", "doc", "Tệp"],
            ["time", "at", "Giờ"], ["dateTime", "when", "Lúc"], ["trigger", "ok", "Đồng ý"], ["barcode", "code", "Mã"],
            ["range", "score", "Điểm", "start=0 end=5"], ["rank pick", "order", "Xếp hạng"],
            ["select one from pick", "one", "Chọn"], ["select all that apply from pick", "many", "Chọn nhiều"],
            ["deviceid", "dev"], ["username", "user"], ["today", "day"], ["audit", "audit"],
        ],
        choices=[["list_name", "name", "label"], ["pick", "a", "A"], ["pick", "b", "B"]],
    )
    kinds = {q.name: (q.kind.value, q.metadata) for q in _load(content).questions}
    assert kinds == {
        "where": ("geopoint", ""), "road": ("geotrace", ""), "field": ("geoshape", ""), "pic": ("image", ""),
        "voice": ("audio", ""), "clip": ("video", ""), "doc": ("file", ""), "at": ("time", ""),
        "when": ("datetime", ""), "ok": ("acknowledge", ""), "code": ("barcode", ""), "score": ("range", ""),
        "order": ("rank", ""), "one": ("select_one", ""), "many": ("select_multiple", ""),
        "dev": ("metadata", "deviceid"), "user": ("metadata", "username"), "day": ("metadata", "today"),
        "audit": ("metadata", "audit"),
    }
    survey = _load(content)
    assert survey.by_name["score"].parameters == (("start", "0"), ("end", "5"), ("step", "1"))
    assert [c.value for c in survey.by_name["order"].choices] == ["a", "b"]


def test_xlsform_repeats_with_count_nested_and_xpath_paths(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label", "repeat_count", "relevant", "calculation", "constraint", "required"],
            ["integer", "hh_size", "Số người"],
            ["begin repeat", "members", "Thành viên", "${hh_size}"],
            ["text", "m_name", "Tên"],
            ["integer", "age", "Tuổi của ${m_name}", None, None, None, ". < 120"],
            ["begin_repeat", "phones", "Điện thoại", None, "../age > 15"],
            ["text", "number", "Số máy", None, None, None, None, "../../age > 17"],
            ["end_repeat"],
            ["end repeat"],
            ["calculate", "total_age", None, None, None, "sum(/data/members/age)"],
        ],
    )
    survey = _load(content)
    members, phones = survey.repeats["members"], survey.repeats["phones"]
    assert (members.count, members.scope, phones.scope) == (compile_expr("${hh_size}"), (), ("members",))
    assert phones.relevant == compile_expr("${age} > 15")
    assert survey.by_name["number"].scope == ("members", "phones")
    assert survey.by_name["number"].required_if == compile_expr("${age} > 17")
    assert not survey.by_name["number"].required
    assert survey.by_name["age"].label == "Tuổi của ${m_name}"
    assert survey.by_name["total_age"].calculation == compile_expr("sum(${age})")
    assert [type(item).__name__ for item in survey.items] == ["Question", "Repeat", "Question"]


def test_xlsform_translations_single_colon_and_required_message(tmp_path: Path) -> None:
    """`label:English` (single colon, no :: anywhere) is a translation for pyxform; the languages come
    out Vietnamese first whatever the form's default."""
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label:English", "label:Tiếng Việt", "hint:English", "bind:required",
             "bind:jr:requiredMsg:Tiếng Việt"],
            ["text", "who", "Who?", "Ai?", "Your name", "yes", "Xin cho biết tên."],
        ],
        settings=[["form_id", "default_language"], ["ten", "English"]],
    )
    survey = _load(content)
    (who,) = survey.questions
    assert survey.languages == ("Tiếng Việt", "English")
    assert (who.label, who.labels) == ("Ai?", (("English", "Who?"),))
    assert (who.hint, who.hints) == ("Your name", (("English", "Your name"),))
    assert (who.required, who.required_message) == (True, "Xin cho biết tên.")
    assert who.label_in("English") == "Who?"


def test_xlsform_or_other_gets_our_vietnamese_labels(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [HEADER, ["select_one yn or_other", "net", "Internet?", "Có mạng không?"]],
        choices=[["list_name", "name", "label::Vietnamese (vi)", "label::English (en)"], ["yn", "yes", "Có", "Yes"]],
    )
    net, other = _load(content).questions
    assert [(c.value, c.label, c.labels) for c in net.choices] == [
        ("yes", "Có", (("English (en)", "Yes"),)), ("other", "Khác (ghi rõ)", (("English (en)", "Other"),)),
    ]
    assert (other.name, other.kind, other.other_of) == ("net_other", QuestionType.TEXT, "net")
    assert other.label == "Xin ghi rõ: Có mạng không?"
    assert other.relevant == compile_expr("selected(${net}, 'other')")


def test_xlsform_same_name_in_two_groups_is_renamed(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label", "relevant"],
            ["begin group", "grp1", "Chủ hộ"], ["text", "name", "Tên"], ["end group"],
            ["begin group", "grp2", "Vợ/chồng"], ["text", "name", "Tên"], ["text", "x.y-z", "Ghi chú", "../name != ''"],
            ["end group"],
        ],
    )
    survey = _load(content)
    assert [q.name for q in survey.questions] == ["name", "grp2_name", "x.y-z"]
    assert survey.by_name["x.y-z"].relevant == compile_expr("${grp2_name} != ''")  # the path says which one


def test_xlsform_relevant_naming_a_later_question_is_accepted(tmp_path: Path) -> None:
    """ODK allows it; over chat the later answer is still empty when the question is asked."""
    content = xlsform(
        tmp_path,
        [HEADER, ["integer", "members", None, "Mấy người?", None, "${adults} > 0"], ["integer", "adults", None, "Người lớn?"]],
    )
    relevant = _load(content).by_name["members"].relevant
    assert relevant is not None
    assert relevant.evaluate({}, today=TODAY) is False


def test_xlsform_select_one_from_file_reads_the_media_csv(tmp_path: Path) -> None:
    content = xlsform(tmp_path, [["type", "name", "label"], ["select_one_from_file villages.csv", "village", "Thôn?"]])
    csv_file = "name,label,commune\nban-pho,Bản Phố,bac-ha\nna-hoi,Na Hối,bac-ha\n".encode()
    village = _load(content, media={"villages.csv": csv_file}).by_name["village"]
    assert village.choices == (
        Option("ban-pho", "Bản Phố", columns=(("commune", "bac-ha"),)),
        Option("na-hoi", "Na Hối", columns=(("commune", "bac-ha"),)),
    )
    error = _refused(content)
    assert (error.row, error.column, error.reason, error.value) == (2, "type", "missing_file", "villages.csv")
    assert "--media" in str(error)


def test_cli_import_with_media_keeps_the_choices_file_for_every_process(tmp_path: Path, sqlite_url: str) -> None:
    """`langso survey import FORM --media DIR`: the CSV is kept with the form, so `survey list` (a
    process that reads the form back from the database) can build its choices."""
    form = tmp_path / "thon.xlsx"
    form.write_bytes(xlsform(tmp_path, [["type", "name", "label"], ["select_one_from_file villages.csv", "village", "Thôn?"]],
                             settings=[["form_id", "form_title"], ["chon_thon", "Chọn thôn"]]))
    env = {"LANGSO_DATABASE_URL": sqlite_url}
    assert langso("db", "upgrade", env=env).returncode == 0
    refused = langso("survey", "import", str(form), env=env)
    assert refused.returncode == 1
    assert "--media" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 3  # no warning, no traceback
    media = tmp_path / "media"
    media.mkdir()
    (media / "villages.csv").write_text("name,label\nban-pho,Bản Phố\n", encoding="utf-8")
    imported = langso("survey", "import", str(form), "--media", str(media), env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr == ""
    listed = langso("survey", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "chon-thon" in listed.stdout


def test_a_form_and_its_files_pack_into_one_stored_content(tmp_path: Path) -> None:
    content = xlsform(tmp_path, [["type", "name", "label"], ["select_one_from_file v.xml", "village", "Thôn?"]])
    xml = "<root><item><name>a</name><label>Bản A</label></item></root>".encode()
    assert unpack(content) == (content, {})  # a workbook alone is stored as itself
    stored = pack(content, {"v.xml": xml})
    assert unpack(stored) == (content, {"v.xml": xml})
    assert load_survey("ho.xlsx", *unpack(stored)).by_name["village"].choices == (Option("a", "Bản A"),)


def test_xlsform_select_one_external_reads_the_external_choices_sheet(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [["type", "name", "label", "choice_filter"], ["select_one prov", "prov", "Tỉnh"],
         ["select_one_external dist", "dist", "Huyện", "prov=${prov}"]],
        choices=[["list_name", "name", "label"], ["prov", "lc", "Lào Cai"]],
        sheets={"external_choices": [["list_name", "name", "label", "prov"], ["dist", "bh", "Bắc Hà", "lc"]]},
    )
    dist = _load(content).by_name["dist"]
    assert [(c.value, c.label, dict(c.columns).get("prov")) for c in dist.choices] == [("bh", "Bắc Hà", "lc")]


def test_xlsform_signature_is_refused_with_its_row(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path, [["type", "name", "label", "appearance"], ["text", "n", "Tên"], [], ["image", "sign", "Ký tên", "signature"]]
    )
    error = _refused(content)
    assert (error.sheet, error.row, error.column, error.reason) == ("survey", 4, "appearance", "drawn_image")
    assert 'trang "survey", dòng 4, cột "appearance"' in str(error)


def test_xlsform_bad_expression_names_its_cell(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [[*HEADER, "constraint"], ["text", "id", None, "Mã?", None, None, "no_such_function('x', .)"]],
    )
    error = _refused(content)
    assert (error.row, error.column, error.reason) == (2, "constraint", "unknown_function")
    assert '"no_such_function"' in str(error)


def test_xlsform_expression_too_deep_says_how_to_fix_it(tmp_path: Path) -> None:
    """The expression language's bounds reach the author as a sentence, not as a machine code."""
    deep = "(" * 40 + "1" + ")" * 40
    content = xlsform(tmp_path, [["type", "name", "label", "calculation"], ["text", "n", "Tên"], ["calculate", "c", None, deep]])
    error = _refused(content)
    assert (error.row, error.column, error.reason) == (3, "calculation", "too_deep")
    assert "lồng nhau quá 32 tầng" in str(error)
    assert "too_deep" not in str(error)


@pytest.mark.parametrize(
    ("survey", "row", "words"),
    [
        ([HEADER, ["begin group", "g"], ["integer", "members", None, "Mấy người?"]], 2, "end_group"),  # never closed
        ([HEADER, ["integer", "members", None, "Mấy người?"], ["integer", "members", None, "Lại?"]], 3, "members"),
        ([HEADER, ["select_one nolist", "x", None, "X?"]], 2, "nolist"),
        ([["name", "label"], ["x", "X"]], None, "type"),
    ],
)
def test_xlsform_rejected_by_pyxform_in_three_lines(
    tmp_path: Path, survey: list[list[object]], row: int | None, words: str
) -> None:
    error = _refused(xlsform(tmp_path, survey, YES_NO))
    assert (error.reason, error.row) == ("pyxform", row)
    assert words in error.value
    message = str(error)
    assert len(message.splitlines()) <= 3
    assert "http" not in message
    assert "Traceback" not in message


def test_xlsform_import_warns_nothing(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    """openpyxl's and pyxform's warnings (here: a data validation, an untranslated or_other) stay quiet."""
    content = xlsform(tmp_path, [HEADER, ["select_one yn or_other", "net", "Internet?", "Mạng?"], ["image", "p", None, "Ảnh"]],
                      choices=YES_NO)
    _load(content)
    assert not recwarn.list


def test_unknown_format() -> None:
    with pytest.raises(FormError) as caught:
        load_survey("ho.csv", b"type,name")
    assert (caught.value.reason, caught.value.value) == ("unknown_format", ".csv")


VILLAGES = [
    ["list_name", "name", "label", "district", "households"],
    ["village", "ban-pho", "Bản Phố", "bac-ha", 120],
    ["village", "na-hoi", "Na Hối", "bac-ha", 80],
    ["village", "sa-pa", "Sa Pa", "sa-pa", 300],
]


def test_xlsform_instance_reads_a_choice_list_by_its_columns(tmp_path: Path) -> None:
    """instance('list')/root/item[…]/column over the form's own choices: a name looked up, a count and
    a sum over a district (its predicate itself a lookup), a position, two columns, nothing found."""
    item = "instance('village')/root/item"
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label", "calculation"],
            ["select_one village", "village", "Thôn?"],
            ["calculate", "households", None, f"{item}[name = ${{village}}]/households"],
            ["calculate", "neighbours", None, f"count({item}[district = {item}[name = ${{village}}]/district])"],
            ["calculate", "district_households", None, f"sum({item}[district = 'bac-ha']/households)"],
            ["calculate", "second", None, f"{item}[2]/label"],
            ["calculate", "last", None, f"{item}[position() = count({item})]/name"],
            ["calculate", "big", None, f"{item}[district = 'bac-ha' and households > 100]/label"],
            ["calculate", "nowhere", None, f"concat('[', {item}[name = 'nowhere']/label, ']')"],
        ],
        choices=VILLAGES,
    )
    form = _load(content)
    answers = settle(form, {"village": "na-hoi"}, TODAY)
    read = ("households", "neighbours", "district_households", "second", "last", "big", "nowhere")
    assert {key: answers[key] for key in read} == {
        "households": "80", "neighbours": 2, "district_households": 200, "second": "Na Hối", "last": "sa-pa",
        "big": "Bản Phố", "nowhere": "[]",
    }  # fmt: skip
    assert settle(form, {"village": "sa-pa"}, TODAY)["neighbours"] == 1


def test_xlsform_pulldata_reads_the_csv_given_at_import(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label", "calculation"],
            ["text", "crop", "Cây gì?"],
            ["decimal", "price", "Giá (nghìn đồng/kg)", "pulldata('prices', 'price', 'crop', ${crop})"],
            ["note", "say", "Giá ${crop}: ${price}"],
        ],
    )
    prices = b"crop,price\nngo,7.5\nlua,9\n"
    form = _load(content, media={"prices.csv": prices})
    assert settle(form, {"crop": "lua"}, TODAY)["price"] == 9  # a read-only decimal: a number, not the text "9"
    assert settle(form, {"crop": "ngo"}, TODAY)["price"] == 7.5
    assert settle(form, {"crop": "che"}, TODAY)["price"] is None  # no such row
    error = _refused(content)
    assert (error.row, error.column, error.reason, error.value) == (3, "calculation", "missing_file", "prices.csv")
    assert "--media" in str(error)


def test_xlsform_xml_external_reads_another_forms_records(tmp_path: Path) -> None:
    """An xml-external (KoBoToolbox's dynamic data, exported as a file): paths inside the predicate and
    after it, a count of the records, a record's nested field."""
    data = "instance('last_round')/root/data"
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label", "calculation"],
            ["xml-external", "last_round"],
            ["integer", "hh", "Mã hộ?"],
            ["integer", "size", "Số người (sửa nếu khác)", f"{data}[hh/id = current()/../hh]/hh/size"],
            ["calculate", "rounds", None, f"count({data}[hh/id = ${{hh}}])"],
        ],
    )
    records = (
        b"<root><data><hh><id>7</id><size>5</size></hh></data><data><hh><id>8</id><size>3</size></hh></data>"
        b"<data><hh><id>7</id><size>6</size></hh></data></root>"
    )
    form = _load(content, media={"last_round.xml": records})
    answers = settle(form, {"hh": 7}, TODAY)
    assert (answers["size"], answers["rounds"]) == (5, 2)  # the first record's size, as an integer
    error = _refused(content)
    assert (error.row, error.column, error.reason, error.value) == (4, "calculation", "missing_file", "last_round.xml")
    bad = _refused(content, media={"last_round.xml": b"<root><data>"})
    assert (bad.reason, bad.value) == ("bad_file", "last_round.xml")


def test_xlsform_a_bare_word_in_required_or_relevant_is_false_as_in_odk(tmp_path: Path) -> None:
    """`required: basic` (osm-fieldwork's waterpoints form) is, for ODK, a path to no node: false. pyxform's
    yes/TRUE/no in a relevant are true() and false()."""
    content = xlsform(
        tmp_path,
        [
            ["type", "name", "label", "required", "relevant"],
            ["text", "model", "Mức dữ liệu?", "basic"],
            ["text", "hidden", "Không bao giờ hỏi", None, "advanced"],
            ["text", "shown", "Luôn hỏi", "TRUE", "yes"],
            ["text", "never", "Cũng không hỏi", None, "NO"],
        ],
    )
    form = _load(content)
    model, hidden, shown, never = form.questions
    assert (model.required, model.required_if, shown.required) == (False, None, True)
    answers = {"model": None}
    slot = engine.next_slot(form, answers, TODAY)
    assert slot is not None
    assert slot.question is shown
    assert engine.next_slot(form, {**answers, "shown": "x"}, TODAY) is None
    assert (hidden.relevant, never.relevant) == (compile_expr("false()"), compile_expr("false()"))


def test_xlsform_choice_filter_reads_a_label_in_a_named_language(tmp_path: Path) -> None:
    """`label::English != ''` (pyxform's xl_date_ambiguous form): the choice's label in that language."""
    content = xlsform(
        tmp_path,
        [["type", "name", "label::English", "label::Vietnamese", "choice_filter"],
         ["select_one fruit", "fruit", "Fruit?", "Quả gì?", "label::English != '' and label::Vietnamese != 'Na'"]],
        choices=[["list_name", "name", "label::English", "label::Vietnamese"],
                 ["fruit", "mango", "Mango", "Xoài"], ["fruit", "custard", "", "Na"], ["fruit", "plum", "", "Mận"]],
    )
    form = _load(content)
    slot = engine.next_slot(form, {}, TODAY)
    assert slot is not None
    assert [option.value for option in engine.choices_of(form, slot, {}, TODAY, "Vietnamese")] == ["mango"]


@pytest.mark.parametrize(
    ("calculation", "reason", "says"),
    [
        ("if(${n} < 1, 0, 1", "unclosed", 'thiếu dấu đóng ngoặc ")"'),  # onadata's error_test_form
        ("because pyxform doesn't know what to do", "words", 'bắt đầu bằng "because"'),  # pyxform's bad_calc
    ],
)
def test_xlsform_a_broken_expression_pyxform_lets_through_is_refused_in_words(
    tmp_path: Path, calculation: str, reason: str, says: str
) -> None:
    content = xlsform(
        tmp_path, [["type", "name", "label", "calculation"], ["integer", "n", "Số?"], ["calculate", "c", None, calculation]]
    )
    error = _refused(content)
    assert (error.row, error.column, error.reason) == (3, "calculation", reason)
    assert says in str(error)
    assert reason not in str(error)  # a sentence, not the reason's code


def test_xls_form_indicators_sheet_is_read(tmp_path: Path) -> None:
    """An .xls (the format of older XLSForms) gets its indicators too: xlrd reads the sheet openpyxl cannot."""
    book = xlwt.Workbook()
    sheets = {
        "survey": [["type", "name", "label"], ["select_one yn", "fibre", "Cáp quang?"]],
        "choices": [["list_name", "name", "label"], ["yn", "yes", "Có"], ["yn", "no", "Không"]],
        "indicators": [
            ["code", "title", "numerator", "denominator", "numerator_text", "denominator_text", "target"],
            ["fibre", "Hộ có cáp quang", "${fibre} = 'yes'", "1", "số hộ có cáp quang", "số hộ đã trả lời", 75],
        ],
    }
    for name, rows in sheets.items():
        sheet = book.add_sheet(name)
        for number, row in enumerate(rows):
            for column, value in enumerate(row):
                sheet.write(number, column, value)
    path = tmp_path / "ho.xls"
    book.save(str(path))
    (indicator,) = load_survey("ho.xls", path.read_bytes()).indicators
    assert (indicator.code, indicator.title, indicator.numerator, indicator.target) == (
        "fibre", "Hộ có cáp quang", compile_expr("${fibre} = 'yes'"), 75.0,
    )


def test_a_lookup_where_no_list_or_file_can_be_read_is_refused(tmp_path: Path) -> None:
    """An indicator sums over many households and a TOML form has no files: instance() or pulldata()
    there would read nothing, so the cell is refused rather than silently empty."""
    content = xlsform(
        tmp_path,
        [["type", "name", "label"], ["select_one village", "village", "Thôn?"]],
        choices=VILLAGES,
        indicators=[
            ["code", "title", "numerator", "denominator", "numerator_text", "denominator_text", "target"],
            ["big", "Thôn lớn", "instance('village')/root/item[name = ${village}]/households > 100", "1", "a", "b", 50],
        ],
    )
    error = _refused(content)
    assert (error.sheet, error.row, error.column, error.reason, error.value) == (
        "indicators", 2, "numerator", "unknown_function", "instance",
    )
    with pytest.raises(FormError) as caught:
        load_survey("thu.toml", TOML.replace('"${members} > 1"', "\"pulldata('f', 'a', 'b', ${members}) = 1\"").encode())
    assert (caught.value.column, caught.value.reason, caught.value.value) == ("relevant", "unknown_function", "pulldata")
