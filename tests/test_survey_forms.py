"""Survey files: the expression language, our TOML format and XLSForm workbooks (built here with
openpyxl, so no binary fixture is kept in the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.surveys.definition import Indicator, Option, Question, QuestionType, Survey
from handlers.surveys.expr import ExprError, compile_expr
from handlers.surveys.forms import FormError, load_survey
from messages import render
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
        ("pulldata('households', 'name', 'id', ${members})", "unknown_function", "pulldata"),
        ("count(instance('list')/root/item)", "unknown_function", "count"),
        ("instance('list')", "unknown_function", "instance"),
        ("/data/members > 1", "path", "/data/members"),
        ("members > 1", "path", "members"),
        ("${members} >", "syntax", ""),
        ("(${members} > 1", "syntax", ""),
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


def test_xlsform_loads_into_expected_survey(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            [*HEADER, "constraint", "constraint_message::Vietnamese (vi)", "hint", "appearance"],
            ["start", "start"],
            ["integer", "members", "People?", "Mấy người?", "yes", None, ". >= 1 and . <= 30", "Từ 1 đến 30.", "Gõ số"],
            [],
            ["select_multiple ch", "channels", "Where?", "Bán ở đâu?", "TRUE", None, None, None, None, "minimal"],
            ["begin group", "selling", None, None, None, "${members} > 1"],
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
    survey = load_survey("ho.xlsx", content)
    relevant = "(${members} > 1) and (selected(${channels}, 'zalo') or not(${members} = 2))"
    assert survey == Survey(
        code="ho-gia-dinh",
        title="Khảo sát hộ",
        purpose=render("survey_default_purpose"),
        questions=(
            Question(
                "members", QuestionType.INTEGER, "Mấy người?", hint="Gõ số", required=True,
                constraint=compile_expr(". >= 1 and . <= 30"), constraint_message="Từ 1 đến 30.",
            ),
            Question(
                "channels", QuestionType.SELECT_MULTIPLE, "Bán ở đâu?", required=True,
                choices=(Option("zalo", "Zalo"), Option("fb", "Facebook")),
            ),
            Question(
                "fibre", QuestionType.SELECT_ONE, "Cáp quang?", choices=(Option("yes", "Có"), Option("no", "Không")),
                relevant=compile_expr(relevant),
            ),
            Question("bye", QuestionType.NOTE, "Cảm ơn!"),
        ),
        indicators=(
            Indicator(
                "fibre", "Hộ có cáp quang", compile_expr("${fibre} = 'yes'"), compile_expr("1"),
                "số hộ có cáp quang", "số hộ đã trả lời", 75.0, "{numerator} trên {denominator} hộ có cáp quang",
            ),
        ),
        source="ho.xlsx",
    )
    fibre = survey.by_name["fibre"].relevant
    assert fibre is not None
    assert fibre.evaluate({"members": 3, "channels": ["fb"]}, today=TODAY) is True
    assert fibre.evaluate({"members": 2, "channels": ["fb"]}, today=TODAY) is False
    assert fibre.evaluate({"members": 1, "channels": ["zalo"]}, today=TODAY) is False  # the group's relevant holds


def test_xlsform_purpose_from_settings(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [HEADER, ["integer", "members", None, "Mấy người?"]],
        settings=[["form_id", "form_title", "purpose"], ["ho", "Hộ", "Thôn hỏi để biết số người."]],
    )
    assert load_survey("ho.xlsx", content).purpose == "Thôn hỏi để biết số người."


def test_xlsform_geopoint_names_sheet_row_and_column(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            HEADER,
            ["start", "start"],
            ["integer", "members", None, "Mấy người?"],
            [],  # blank rows still count: the author sees Excel's row numbers
            ["geopoint", "where", None, "Ở đâu?"],
        ],
    )
    with pytest.raises(FormError) as caught:
        load_survey("ho.xlsx", content)
    error = caught.value
    assert (error.sheet, error.row, error.column, error.reason, error.value) == (
        "survey", 5, "type", "unsupported_type", "geopoint",
    )
    message = str(error)
    assert 'ho.xlsx — trang "survey", dòng 5, cột "type"' in message
    assert '"geopoint"' in message
    assert "select_multiple" in message
    assert "phone" not in message


def test_xlsform_unsupported_column_is_named(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            [*HEADER, "choice_filter"],
            ["select_one yn", "fibre", None, "Cáp quang?"],
            ["select_one yn", "wifi", None, "Có wifi?", None, None, "name = 'yes'"],
        ],
        choices=YES_NO,
    )
    with pytest.raises(FormError) as caught:
        load_survey("ho.xlsx", content)
    error = caught.value
    assert (error.row, error.column, error.reason) == (3, "choice_filter", "unsupported_column")
    assert 'dòng 3, cột "choice_filter"' in str(error)


def test_xlsform_relevant_on_later_question_fails(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [
            HEADER,
            ["integer", "members", None, "Mấy người?", None, "${adults} > 0"],
            ["integer", "adults", None, "Mấy người lớn?"],
        ],
    )
    with pytest.raises(FormError) as caught:
        load_survey("ho.xlsx", content)
    error = caught.value
    assert (error.row, error.column, error.reason, error.value) == (2, "relevant", "not_earlier", "adults")
    assert "${adults}" in str(error)


def test_xlsform_bad_expression_names_its_cell(tmp_path: Path) -> None:
    content = xlsform(
        tmp_path,
        [[*HEADER, "constraint"], ["text", "id", None, "Mã?", None, None, "pulldata('x', 'y', 'z', .)"]],
    )
    with pytest.raises(FormError) as caught:
        load_survey("ho.xlsx", content)
    assert (caught.value.row, caught.value.column, caught.value.reason) == (2, "constraint", "unknown_function")
    assert '"pulldata"' in str(caught.value)


def test_xlsform_rejected_by_pyxform(tmp_path: Path) -> None:
    """An unclosed group passes our row checks; pyxform's own conversion catches it."""
    content = xlsform(tmp_path, [HEADER, ["begin group", "g"], ["integer", "members", None, "Mấy người?"]])
    with pytest.raises(FormError) as caught:
        load_survey("ho.xlsx", content)
    assert caught.value.reason == "pyxform"
    assert "group" in caught.value.value


def test_unknown_format() -> None:
    with pytest.raises(FormError) as caught:
        load_survey("ho.csv", b"type,name")
    assert (caught.value.reason, caught.value.value) == ("unknown_format", ".csv")
