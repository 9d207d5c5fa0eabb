"""The survey engine's cost per answer, without a chat or a database: a 40-question household form (30
questions outside, a member repeat of 10 questions counted by an earlier answer, 10 members), answered
from the first question to the last. Each answer is what the chat does for one message: next_slot,
label_of, choices_of, parse_answer, record (calculates, pruning), and the next next_slot. Then a
cascading choice: one commune's villages out of 5,000.

    .venv/bin/python bench/survey_engine.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import time

from handlers.surveys import engine
from handlers.surveys.definition import Item, Option, Question, QuestionType, Repeat, Survey, flatten
from handlers.surveys.expr import compile_expr

TODAY = "2026-03-01"
YES_NO = (Option("yes", "Có"), Option("no", "Không"))
MEMBERS = ("members",)


def household_form() -> Survey:
    before: list[Item] = [Question("hh_size", QuestionType.INTEGER, "Nhà mình có mấy người?",
                                   constraint=compile_expr(". >= 1 and . <= 30"))]
    for n in range(14):
        relevant = compile_expr(f"${{q{n - 1}}} = 'yes'") if n % 3 == 2 else None
        before.append(Question(f"q{n}", QuestionType.SELECT_ONE, f"Câu {n}?", choices=YES_NO, relevant=relevant))
    members = Repeat("members", "Thành viên", count=compile_expr("${hh_size}"), children=(
        Question("m_name", QuestionType.TEXT, "Họ tên người thứ ${pos}?", scope=MEMBERS),
        Question("pos", QuestionType.CALCULATE, "", scope=MEMBERS, calculation=compile_expr("position(..)")),
        Question("age", QuestionType.INTEGER, "Tuổi của ${m_name}?", scope=MEMBERS,
                 constraint=compile_expr(". >= 0 and . < 120")),
        Question("adult", QuestionType.CALCULATE, "", scope=MEMBERS, calculation=compile_expr("if(${age} >= 15, 1, 0)")),
        *(Question(f"m{n}", QuestionType.SELECT_ONE, f"${{m_name}}: câu {n}?", scope=MEMBERS, choices=YES_NO,
                   relevant=compile_expr("${age} >= 15") if n % 2 else None) for n in range(6)),
    ))
    after: list[Item] = [
        Question("adults", QuestionType.CALCULATE, "", calculation=compile_expr("sum(${adult})")),
        *(Question(f"z{n}", QuestionType.SELECT_ONE, f"Có ${{adults}} người lớn: câu {n}?", choices=YES_NO,
                   relevant=compile_expr("${adults} > 0")) for n in range(14)),
    ]
    items = (*before, members, *after)
    return Survey("bench", "Bench", "Bench.", flatten(items), items=items)


def answer_all(form: Survey) -> int:
    answers: dict[str, object] = {}
    count = 0
    slot = engine.next_slot(form, answers, TODAY)
    while slot is not None and slot.question is not None:
        question = slot.question
        engine.label_of(form, slot, answers, TODAY)
        engine.choices_of(form, slot, answers, TODAY)
        text = {"hh_size": "10", "m_name": "Lò Thị Mai", "age": "30"}.get(question.name, "1")
        value = engine.parse_answer(form, slot, text, answers, TODAY)
        answers = engine.record(form, answers, slot, value, TODAY, now="2026-03-01T08:00:00")
        count += 1
        slot = engine.next_slot(form, answers, TODAY)
    return count


def cascading_choice() -> float:
    """µs to list one commune's 50 villages out of 5,000 (a choice_filter on an earlier answer)."""
    villages = tuple(Option(f"v{n}", f"Bản {n}", columns=(("commune", f"c{n % 100}"),)) for n in range(5000))
    village = Question("village", QuestionType.SELECT_ONE, "Bản?", choices=villages,
                       choice_filter=compile_expr("commune = ${commune}", choice_filter=True))
    commune = Question("commune", QuestionType.TEXT, "Xã?")
    form = Survey("bench", "Bench", "Bench.", (commune, village))
    slot = engine.Slot(village)
    engine.choices_of(form, slot, {"commune": "c7"}, TODAY)  # the first call indexes the list
    started = time.perf_counter()
    for n in range(1000):
        engine.choices_of(form, slot, {"commune": f"c{n % 100}"}, TODAY)
    return (time.perf_counter() - started) / 1000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    form = household_form()
    answer_all(form)  # warm up
    started = time.perf_counter()
    answered = sum(answer_all(form) for _ in range(rounds))
    elapsed = time.perf_counter() - started
    print(f"{answered // rounds} answers per household, {rounds} households: "
          f"{elapsed / answered * 1e6:.0f} µs per answer (next_slot, label, choices, parse, record)")
    print(f"a cascading choice, 50 of 5,000 villages: {cascading_choice():.0f} µs")


if __name__ == "__main__":
    main()
