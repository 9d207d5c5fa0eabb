"""The survey engine on a form tree, without a chat: repeats (counted, open, nested), going back across
instances, calculates, cascading choices, labels filled in the instance, metadata, and expressions that
must fail cleanly. Forms are built directly from definition.py's dataclasses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.surveys import engine
from handlers.surveys.answers import Resolver
from handlers.surveys.definition import (
    Group,
    Indicator,
    Item,
    Option,
    Question,
    QuestionType,
    Repeat,
    Survey,
    flatten,
)
from handlers.surveys.expr import KNOWN_FUNCTIONS, ExprError, compile_expr
from handlers.surveys.secondary import from_rows

TODAY = "2026-03-01"
Q = QuestionType


def survey(*items: Item) -> Survey:
    return Survey("thu", "Thử", "Để thử.", flatten(items), items=items)


def q(name: str, kind: QuestionType = Q.TEXT, label: str = "", **fields: object) -> Question:
    return Question(name, kind, label or name, **fields)  # type: ignore[arg-type]


def answer(form: Survey, answers: dict[str, Any], *texts: str) -> dict[str, Any]:
    """Types each text as the answer to the next slot ("có"/"không" to an "another one?")."""
    for text in texts:
        slot = engine.next_slot(form, answers, TODAY)
        assert slot is not None, f"nothing left to ask for {text!r}"
        if slot.question is None:
            answers = engine.more(form, answers, slot, text == "có", TODAY)
            continue
        value = engine.parse_answer(form, slot, text, answers, TODAY)
        assert not isinstance(value, engine.Invalid), (slot.question.name, text, value)
        answers = engine.record(form, answers, slot, value, TODAY)
    return answers


def asked(form: Survey, answers: dict[str, Any]) -> str:
    slot = engine.next_slot(form, answers, TODAY)
    assert slot is not None
    return engine.label_of(form, slot, answers, TODAY)


MEMBERS = ("members",)
HOUSEHOLD = survey(
    q("hh_size", Q.INTEGER, "Nhà mình có mấy người?"),
    Repeat(
        "members",
        "Thành viên",
        count=compile_expr("${hh_size}"),
        children=(
            q("m_name", label="Họ tên người thứ ${pos}?", scope=MEMBERS),
            q("pos", Q.CALCULATE, scope=MEMBERS, calculation=compile_expr("position(..)")),
            q("age", Q.INTEGER, "Tuổi của ${m_name}?", scope=MEMBERS,
              constraint=compile_expr(". >= 0 and . < 120"), constraint_message="Tuổi từ 0 đến 119."),
            q("before", Q.CALCULATE, scope=MEMBERS,
              calculation=compile_expr("if(position(..) > 1, indexed-repeat(${m_name}, ${members}, position(..) - 1), '')")),
            q("relation", label="${m_name} là gì của ${before}?", scope=MEMBERS, relevant=compile_expr("${pos} > 1")),
        ),
    ),
    q("total_age", Q.CALCULATE, calculation=compile_expr("sum(${age})")),
    q("elders", Q.CALCULATE, calculation=compile_expr("count(${members})")),
    q("pension", Q.TEXT, "Tổng tuổi ${total_age}: có ai nhận lương hưu?", relevant=compile_expr("${total_age} >= 100")),
    q("end", Q.TEXT, "Ghi chú thêm?"),
)


def test_a_repeat_counted_by_an_earlier_answer_asks_each_member_by_name() -> None:
    answers = answer(HOUSEHOLD, {}, "2", "Lò Thị Mai")
    assert asked(HOUSEHOLD, answers) == "Tuổi của Lò Thị Mai?"
    slot = engine.next_slot(HOUSEHOLD, answers, TODAY)
    assert slot is not None
    assert [(r.name, n, c) for r, n, c in engine.instance_of(HOUSEHOLD, slot, answers, TODAY)] == [("members", 1, 2)]
    answers = answer(HOUSEHOLD, answers, "70", "Lò Văn Nam")
    assert asked(HOUSEHOLD, answers) == "Tuổi của Lò Văn Nam?"
    answers = answer(HOUSEHOLD, answers, "45")
    # position() and indexed-repeat() in a calculate, shown in a label
    assert asked(HOUSEHOLD, answers) == "Lò Văn Nam là gì của Lò Thị Mai?"
    answers = answer(HOUSEHOLD, answers, "con")
    assert answers["members"] == [
        {"m_name": "Lò Thị Mai", "pos": 1, "age": 70, "before": ""},
        {"m_name": "Lò Văn Nam", "pos": 2, "age": 45, "before": "Lò Thị Mai", "relation": "con"},
    ]
    # a sum over the repeat, used in a later relevant and in its label
    assert answers["total_age"] == 115
    assert answers["elders"] == 2
    assert asked(HOUSEHOLD, answers) == "Tổng tuổi 115: có ai nhận lương hưu?"


def test_a_constraint_is_checked_in_the_members_instance() -> None:
    answers = answer(HOUSEHOLD, {}, "1", "Mai")
    slot = engine.next_slot(HOUSEHOLD, answers, TODAY)
    assert slot is not None
    assert engine.parse_answer(HOUSEHOLD, slot, "130", answers, TODAY) == engine.Invalid("constraint", "Tuổi từ 0 đến 119.")
    assert engine.parse_answer(HOUSEHOLD, slot, "30", answers, TODAY) == 30


def test_a_smaller_household_drops_the_members_beyond_it_and_what_depended_on_them() -> None:
    answers = answer(HOUSEHOLD, {}, "2", "Mai", "70", "Nam", "45", "con", "có")
    assert "pension" in answers
    answers = engine.record(HOUSEHOLD, answers, engine.Slot(HOUSEHOLD.by_name["hh_size"]), 1, TODAY)
    assert answers["members"] == [{"m_name": "Mai", "pos": 1, "age": 70, "before": ""}]
    assert answers["total_age"] == 70
    assert "pension" not in answers  # no longer relevant: dropped, as ODK does
    assert engine.next_slot(HOUSEHOLD, answers, TODAY).question.name == "end"  # type: ignore[union-attr]


PETS = survey(
    q("owner", label="Tên chủ hộ?"),
    Repeat("pets", "Vật nuôi", children=(q("pet", label="Con vật thứ ${n}?", scope=("pets",)),
                                         q("n", Q.CALCULATE, scope=("pets",), calculation=compile_expr("position(..)")))),
    q("pet_count", Q.CALCULATE, calculation=compile_expr("count(${pet})")),
    q("after", label="Nhà có ${pet_count} con: đúng không?"),
)


def test_an_open_repeat_asks_another_one_until_no() -> None:
    answers = answer(PETS, {}, "Lò Văn Páo", "trâu")
    slot = engine.next_slot(PETS, answers, TODAY)
    assert slot == engine.Slot(None, (), PETS.repeats["pets"])
    assert engine.instance_count(answers, PETS.repeats["pets"], ()) == 1
    answers = answer(PETS, answers, "có")
    assert asked(PETS, answers) == "Con vật thứ 2?"
    answers = answer(PETS, answers, "lợn", "không")
    assert answers["pets#done"] is True
    assert [p["pet"] for p in answers["pets"]] == ["trâu", "lợn"]
    assert asked(PETS, answers) == "Nhà có 2 con: đúng không?"


def test_back_goes_across_instances_and_to_another_one() -> None:
    answers = answer(PETS, {}, "Páo", "trâu", "có", "lợn", "không")
    after = engine.next_slot(PETS, answers, TODAY)
    assert after is not None
    more = engine.previous_slot(PETS, answers, after, TODAY)
    assert more is not None
    assert more.question is None  # "quay lại" after the repeat: "another one?" again
    second = engine.previous_slot(PETS, answers, more, TODAY)
    assert second == engine.Slot(PETS.by_name["pet"], (1,))
    first = engine.previous_slot(PETS, answers, second, TODAY)
    assert first == engine.Slot(PETS.by_name["pet"], (0,))
    assert engine.label_of(PETS, first, answers, TODAY) == "Con vật thứ 1?"
    assert engine.previous_slot(PETS, answers, engine.Slot(PETS.by_name["owner"]), TODAY) is None
    # answering "có" again reopens the repeat with a third pet
    answers = engine.more(PETS, answers, more, True, TODAY)
    assert "pets#done" not in answers
    assert asked(PETS, answers) == "Con vật thứ 3?"


def test_answered_slots_number_every_instance() -> None:
    answers = answer(PETS, {}, "Páo", "trâu", "có", "lợn", "không")
    numbered = [(n, s.question.name, s.at) for n, s in engine.answered_slots(PETS, answers, TODAY) if s.question]
    assert numbered == [(1, "owner", ()), (2, "pet", (0,)), (3, "pet", (1,))]


FIELDS = ("plots",)
CROPS = ("plots", "crops")
NESTED = survey(
    Repeat("plots", "Thửa ruộng", count=compile_expr("2"), children=(
        q("plot", label="Tên thửa ${plot_no}?", scope=FIELDS),
        q("plot_no", Q.CALCULATE, scope=FIELDS, calculation=compile_expr("position(..)")),
        Group("g", "Cây trồng", children=(
            Repeat("crops", "Cây", scope=FIELDS, children=(
                q("crop", label="Cây trồng ở thửa ${plot}?", scope=CROPS),
            )),
        )),
    )),
    q("crops_total", Q.CALCULATE, calculation=compile_expr("count(${crop})")),
)


def test_nested_repeats_keep_each_plots_crops_apart() -> None:
    answers = answer(NESTED, {}, "Bãi trên", "lúa", "có", "ngô", "không")
    assert asked(NESTED, answers) == "Tên thửa 2?"
    answers = answer(NESTED, answers, "Bãi dưới")
    assert asked(NESTED, answers) == "Cây trồng ở thửa Bãi dưới?"
    answers = answer(NESTED, answers, "sắn", "không")
    assert [[c["crop"] for c in p["crops"]] for p in answers["plots"]] == [["lúa", "ngô"], ["sắn"]]
    assert answers["crops_total"] == 3
    assert engine.next_slot(NESTED, answers, TODAY) is None
    slot = engine.Slot(NESTED.by_name["crop"], (0, 1))
    assert [(r.name, n, c) for r, n, c in engine.instance_of(NESTED, slot, answers, TODAY)] == [
        ("plots", 1, 2), ("crops", 2, None),
    ]
    # back from the second plot's name goes to the first plot's "another crop?"
    back = engine.previous_slot(NESTED, answers, engine.Slot(NESTED.by_name["plot"], (1,)), TODAY)
    assert back == engine.Slot(None, (0,), NESTED.repeats["crops"])
    assert [(r.name, n, c) for r, n, c in engine.instance_of(NESTED, back, answers, TODAY)] == [
        ("plots", 1, 2), ("crops", 2, None),  # the first plot's "another crop?", after its 2 crops
    ]


PLACES = survey(
    q("prov", Q.SELECT_ONE, "Tỉnh?", choices=(Option("lc", "Lào Cai"), Option("hg", "Hà Giang"))),
    q("commune", Q.SELECT_ONE, "Xã?", choices=(
        Option("sp", "Sa Pa", columns=(("prov", "lc"),)),
        Option("bx", "Bát Xát", columns=(("prov", "lc"),)),
        Option("dv", "Đồng Văn", columns=(("prov", "hg"),)),
    ), choice_filter=compile_expr("prov = ${prov}", choice_filter=True)),
    q("where", Q.CALCULATE, calculation=compile_expr(
        "concat(jr:choice-name(${commune}, '${commune}'), ', ', jr:choice-name(${prov}, '${prov}'))"
    )),
    q("born", Q.DATE, "Ngày sinh?"),
    q("born_text", Q.CALCULATE, calculation=compile_expr("format-date(${born}, '%e/%n/%Y')")),
    q("age", Q.CALCULATE, calculation=compile_expr("int((today() - ${born}) div 365.25)")),
    q("ok", label="${where}, sinh ${born_text} (${age} tuổi): đúng không?"),
)


def test_a_cascading_choice_shows_only_the_provinces_communes_numbered_afresh() -> None:
    answers = answer(PLACES, {}, "2")
    slot = engine.next_slot(PLACES, answers, TODAY)
    assert slot is not None
    assert [o.label for o in engine.choices_of(PLACES, slot, answers, TODAY)] == ["Đồng Văn"]
    assert engine.parse_answer(PLACES, slot, "1", answers, TODAY) == "dv"  # 1 is the first shown
    assert isinstance(engine.parse_answer(PLACES, slot, "Sa Pa", answers, TODAY), engine.Invalid)
    answers = answer(PLACES, {}, "Lào Cai")
    slot = engine.next_slot(PLACES, answers, TODAY)
    assert slot is not None
    assert [o.label for o in engine.choices_of(PLACES, slot, answers, TODAY)] == ["Sa Pa", "Bát Xát"]


def test_choice_names_and_dates_in_a_label() -> None:
    answers = answer(PLACES, {}, "Lào Cai", "Bát Xát", "5/3/1990")
    assert asked(PLACES, answers) == "Bát Xát, Lào Cai, sinh 5/3/1990 (35 tuổi): đúng không?"


META = survey(
    q("start", Q.METADATA, metadata="start"), q("end", Q.METADATA, metadata="end"),
    q("today", Q.METADATA, metadata="today"), q("deviceid", Q.METADATA, metadata="deviceid"),
    q("username", Q.METADATA, metadata="username"), q("phonenumber", Q.METADATA, metadata="phonenumber"),
    q("name", label="Tên?"), q("note", Q.NOTE, "Cảm ơn ${name}!"),
)


def test_metadata_is_filled_by_the_bot_and_never_asked() -> None:
    slot = engine.next_slot(META, {}, TODAY)
    assert slot == engine.Slot(META.by_name["name"])
    first = engine.record(META, {}, slot, "Mai", TODAY, now="2026-03-01T08:00:00", person="Lò Thị Mai",
                          device="langso:telegram")
    later = engine.record(META, first, slot, "Mai", TODAY, now="2026-03-01T08:05:00", person="Lò Thị Mai",
                          device="langso:telegram")
    assert later == {
        "start": "2026-03-01T08:00:00", "end": "2026-03-01T08:05:00", "today": TODAY,
        "deviceid": "langso:telegram", "username": "Lò Thị Mai", "phonenumber": None, "name": "Mai",
    }
    assert engine.next_slot(META, later, TODAY) is None
    assert engine.notes_before(META, None, later, TODAY) == ["Cảm ơn Mai!"]


def test_required_if_and_default() -> None:
    form = survey(
        q("has_phone", Q.SELECT_ONE, choices=(Option("yes", "Có"), Option("no", "Không"))),
        q("phone_kind", Q.SELECT_ONE, required_if=compile_expr("${has_phone} = 'yes'"), default="smart",
          required_message="Xin chọn loại máy.", choices=(Option("smart", "Điện thoại thông minh"), Option("basic", "Cục gạch"))),
    )
    slot = engine.Slot(form.by_name["phone_kind"])
    assert engine.default_of(form, slot, {}, TODAY) == "Điện thoại thông minh"
    refused = engine.parse_answer(form, slot, "bỏ qua", {"has_phone": "yes"}, TODAY)
    assert refused == engine.Invalid("required", "Xin chọn loại máy.")
    assert engine.parse_answer(form, slot, "bỏ qua", {"has_phone": "no"}, TODAY) is None


def test_an_indicator_counts_and_sums_over_a_repeat() -> None:
    indicator = Indicator("phones", "Có điện thoại", compile_expr("sum(${has_phone})"), compile_expr("count(${age})"),
                          "người có điện thoại", "người", 80)
    members = [{"age": 30, "has_phone": 1}, {"age": 70, "has_phone": 0}, {"age": 12, "has_phone": 1}]
    answers = {"hh_size": 3, "members": members}
    assert indicator.numerator.evaluate(answers, today=TODAY) == 2
    assert indicator.denominator.evaluate(answers, today=TODAY) == 3
    assert compile_expr("count(${age})").evaluate({}, today=TODAY) == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(" * 500 + "1" + ")" * 500, "too_deep"),
        ("concat(" * 100 + "'a'" + ")" * 100, "too_deep"),
        ("1" + " + 1" * 400, "too_deep"),
        ("1" + " + 1" * 4000, "too_long"),
    ],
)
def test_an_expression_too_deep_or_long_is_refused_cleanly(text: str, reason: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_expr(text)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9" * 400 + " * 2", None),  # a huge literal is an infinite float (no 400-digit integer): NaN
        ("pow(10, 400)", None),  # overflow is NaN, not an exception
        ("int(pow(10, 300) * pow(10, 300))", None),
        ("round(2.5) + round(-2.5)", 1),  # XPath rounds halves up
        ("round(3.14159, 2)", 3.14),
        ("string(999999999999 * 999999999999 * 999999999999)", "9.99999999997e+35"),
        ("substr('Lò Thị Mai', 3, 99999999999999)", "Thị Mai"),
        ("- - - - - 1", -1),
        ("substr('abc', " + "9" * 400 + ")", ""),  # an infinite index is no index
        ("substring('abc', " + "9" * 400 + ")", ""),
        ("selected-at('a b', " + "9" * 400 + ")", ""),
        ("indexed-repeat(${x}, ${members}, " + "9" * 400 + ")", None),
        ("format-date(" + "9" * 400 + ", '%Y')", ""),
        ("substr('abc', '" + "9" * 400 + "')", ""),  # the same typed as text
        ("coalesce('', 'b')", "b"),
        ("selected-at('a b c', 1)", "b"),
        ("count-selected(${x})", 0),
    ],
)
def test_dangerous_values_evaluate_without_raising(text: str, expected: object) -> None:
    assert compile_expr(text).evaluate({}, today=TODAY) == expected


def test_a_name_with_dots_and_dashes_is_a_question_name() -> None:
    assert compile_expr("${hh.size-1} + 1").evaluate({"hh.size-1": 2}, today=TODAY) == 3


def test_a_calculate_reading_a_later_one_settles_and_one_reading_nothing_is_kept() -> None:
    form = survey(
        q("a", Q.CALCULATE, calculation=compile_expr("${b} + 1")),
        q("x", Q.INTEGER),
        q("b", Q.CALCULATE, calculation=compile_expr("${x} * 2")),
        q("id", Q.CALCULATE, calculation=compile_expr("uuid()")),
    )
    first = engine.record(form, {}, engine.Slot(form.by_name["x"]), 5, TODAY)
    assert (first["a"], first["b"]) == (11, 10)
    again = engine.record(form, first, engine.Slot(form.by_name["x"]), 6, TODAY)
    assert (again["a"], again["b"]) == (13, 12)
    assert again["id"] == first["id"]  # random once, then kept, like ODK's calculate on opening


def test_a_huge_repeat_count_is_capped() -> None:
    answers = answer(HOUSEHOLD, {}, "999999999")
    slot = engine.next_slot(HOUSEHOLD, answers, TODAY)
    assert slot is not None
    assert [(r.name, n, c) for r, n, c in engine.instance_of(HOUSEHOLD, slot, answers, TODAY)] == [("members", 1, 200)]
    assert len(answers["members"]) == 200  # each member's calculates, up to the cap
    endless = survey(Repeat("r", children=(q("x", scope=("r",)),), count=compile_expr("9" * 400)))
    assert engine.next_slot(endless, {}, TODAY) is None  # an infinite count is no count


@pytest.mark.parametrize(
    ("kind", "stored", "shown"),
    [
        (Q.DATE, "2026-03-01", "01/03/2026"),
        (Q.DATETIME, "2026-03-01T08:30:00", "01/03/2026 08:30"),
        (Q.TIME, "08:30:00", "08:30"),
        (Q.GEOPOINT, "22.43 104.12 0 0", "22.43, 104.12"),
        (Q.DECIMAL, 2.5, "2,5"),
        (Q.TEXT, None, None),
    ],
)
def test_answers_read_back_as_vietnamese_write_them(kind: QuestionType, stored: object, shown: str | None) -> None:
    assert engine.display(q("x", kind), stored) == shown


def test_a_long_cascading_list_is_filtered_in_order_and_an_empty_one_can_be_skipped() -> None:
    villages = tuple(Option(f"v{n}", f"Bản {n}", columns=(("commune", f"c{n % 100}"),)) for n in range(5000))
    form = survey(
        q("commune", Q.INTEGER),
        q("village", Q.SELECT_ONE, choices=villages, required=True,
          choice_filter=compile_expr("commune = concat('c', ${commune})", choice_filter=True)),
    )
    slot = engine.Slot(form.by_name["village"])
    shown = engine.choices_of(form, slot, {"commune": 7}, TODAY)
    assert [o.value for o in shown] == [f"v{n}" for n in range(7, 5000, 100)]
    assert engine.parse_answer(form, slot, "2", {"commune": 7}, TODAY) == "v107"  # numbered afresh
    assert engine.choices_of(form, slot, {"commune": 700}, TODAY) == ()
    assert engine.parse_answer(form, slot, "bỏ qua", {"commune": 700}, TODAY) is None  # required, but nothing to pick
    assert engine.parse_answer(form, slot, "bỏ qua", {"commune": 7}, TODAY) == engine.Invalid("required")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("round(distance('22.43 104.12 0 0;22.44 104.12 0 0'))", 1113),  # 0.01° of latitude
        ("round(area('0 0 0 0;0 0.001 0 0;0.001 0.001 0 0;0 0 0 0'))", 6196),  # half of 111.3 m × 111.3 m
        ("distance('22.43 104.12 0 0')", None),  # one point has no length
        ("area('not a shape')", None),
    ],
)
def test_lengths_and_areas_of_traces_and_shapes(text: str, expected: object) -> None:
    assert compile_expr(text).evaluate({}, today=TODAY) == expected


def test_another_one_said_by_mistake_is_taken_back() -> None:
    answers = answer(PETS, {}, "Páo", "trâu", "có")
    third = engine.next_slot(PETS, answers, TODAY)
    assert third == engine.Slot(PETS.by_name["pet"], (1,))
    back = engine.previous_slot(PETS, answers, third, TODAY)
    assert back == engine.Slot(None, (), PETS.repeats["pets"])  # "quay lại": the "có" just given
    again = engine.more(PETS, answers, back, True, TODAY)
    assert again["pets"] == [{"pet": "trâu", "n": 1}, {"n": 2}]  # "có" once more opens no second empty pet
    answers = engine.more(PETS, answers, back, False, TODAY)
    assert answers["pets"] == [{"pet": "trâu", "n": 1}]  # the empty one is gone
    assert asked(PETS, answers) == "Nhà có 1 con: đúng không?"


_SOUP = [
    "${hh_size}", "${age}", "${m_name}", "${members}", ".", "..", "(", ")", ",", "+", "-", "*", " div ", " mod ",
    "=", "!=", "<", ">=", " and ", " or ", "1", "0", "2.5", "'x'", "'2026-03-01'", "'22.4 104.1 0 0;22.5 104.2 0 0'",
    "9" * 30, "name", "label", *(f"{name}(" for name in sorted(KNOWN_FUNCTIONS)),
    "instance('v')", "/root/item", "/", "[", "]", "'v'", "'n'",
]  # fmt: skip
# the household form with a list instance('v') and pulldata('v', …) read
WITH_LIST = Survey(
    HOUSEHOLD.code, HOUSEHOLD.title, HOUSEHOLD.purpose, HOUSEHOLD.questions, items=HOUSEHOLD.items,
    instances={"v": from_rows([{"name": "x", "n": "1"}, {"name": "y", "n": "2"}])},
)  # fmt: skip


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(_SOUP), max_size=20), st.booleans())
def test_any_expression_compiles_or_is_refused_and_never_raises_when_evaluated(tokens: list[str], bare: bool) -> None:
    try:
        expr = compile_expr("".join(tokens), choice_filter=bare)
    except ExprError:
        return
    answers = answer(HOUSEHOLD, {}, "2", "Mai", "70")
    slot = engine.next_slot(HOUSEHOLD, answers, TODAY)
    assert slot is not None
    resolver = Resolver(WITH_LIST, answers, ("members",), slot.at)
    expr.evaluate(answers, current=5, today=TODAY, resolver=resolver, row={"name": "x"})


def test_a_file_looked_up_is_indexed_once_and_its_value_takes_the_questions_type() -> None:
    """pulldata() and instance(…)[column = …] over 2,000 rows: the rows are indexed by that column the
    first time, and every later lookup reuses the index; a read-only integer gets a number, a read-only
    select_multiple its list (as ODK casts a calculation to its question's type)."""
    prices = from_rows([{"crop": f"c{i}", "price": str(i), "kinds": f"k{i} k{i + 1}"} for i in range(2000)])
    items: tuple[Item, ...] = (
        q("crop"),
        q("price", Q.INTEGER, calculation=compile_expr("pulldata('prices', 'price', 'crop', ${crop})")),
        q("kinds", Q.SELECT_MULTIPLE, calculation=compile_expr("instance('prices')/root/item[crop = ${crop}]/kinds")),
    )
    form = Survey("gia", "Giá", "Để thử.", flatten(items), items=items, instances={"prices": prices})
    crop = engine.Slot(form.by_name["crop"])
    answers = engine.record(form, {}, crop, "c1500", TODAY)
    assert (answers["price"], answers["kinds"]) == (1500, ["k1500", "k1501"])
    (root,) = prices.children
    index = root.indexes[("item", "crop")]
    assert len(index) == 2000
    answers = engine.record(form, answers, crop, "c7", TODAY)
    assert (answers["price"], answers["kinds"]) == (7, ["k7", "k8"])
    assert root.indexes[("item", "crop")] is index  # not built again
    assert engine.record(form, answers, crop, "none", TODAY)["price"] is None
