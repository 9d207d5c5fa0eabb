"""The handbook evaluation (tests/eval/questions.tsv) as a regression floor: the committed decision
model on every question must not fall below the figures we quote (bench/handbook.py's 5-fold
out-of-sample figures, a little under them). It is a floor, not a target: refit with
`bench/handbook.py --fit` and move the floor only with new out-of-sample figures."""

from __future__ import annotations

from bench.handbook import figures
from bench.handbook_model import search_all
from handlers.handbook.articles import load
from handlers.handbook.search import Handbook
from tests.eval import KINDS, STYLES, read

# out of sample at the time of writing (19,441 questions, the fifty-one spent blind sets folded in; signals with hinges
# at their quartiles, operating points chosen on out-of-fold probabilities: answer from a 99.5 % training precision
# (99 % until round 32), hand off under the point 1.5 % of answerable training questions fall below (3 % until
# round 37)): top-1 99.1 %, direct 94.7 %, precision 99.5 %, answerable handed off 1.4 %, outside handed off 97.2 %
# and answered 0.4 %, small talk replied 94.8 % and asked about 3.1 % (97.9 % kept from an article and the tech
# team), other questions taken for small talk 0.1 %; on the held-out part (bench/handbook.py "held out") direct
# 94.8 %, precision 98.7 %, answerable handed off 2.9 %, outside answered 1.6 %, small talk replied 93.4 % and
# asked about 3.5 %. The committed model on every question: direct 94.8 % at 99.6 % right, outside handed off
# 97.5 % and answered 0.4 %, small talk replied 96.4 % and kept 98.8 %. Since the bot asks when it cannot tell
# small talk from a question (round 25), what matters is small talk kept from an article and the tech team
# ("chat_kept"); the hello alone ("chat_replied") is floored under its figure.
AT_LEAST = {"top1": 0.95, "direct": 0.85, "precision": 0.98, "outside_handed_off": 0.90, "chat_replied": 0.93,
            "chat_kept": 0.97}
AT_MOST = {"answerable_handed_off": 0.05, "outside_answered": 0.02, "chat_wrongly": 0.005}


def test_the_evaluation_set_is_large_and_labelled_with_known_styles_kinds_and_articles() -> None:
    rows = read()
    ids = {a.id for a in load()}
    assert len(rows) >= 600
    assert {r["style"] for r in rows} == set(STYLES)
    assert {r["kind"] for r in rows} == set(KINDS)
    assert {r["expected"] for r in rows} <= ids | {"none", "chitchat"}


def test_the_committed_model_keeps_the_evaluation_figures() -> None:
    rows = read()
    handbook = Handbook(load())
    decided = [handbook.decide(r["question"]).kind for r in rows]
    got = figures(rows, search_all(handbook.index, rows), decided)
    low = {k: round(got[k], 3) for k, floor in AT_LEAST.items() if got[k] < floor}
    high = {k: round(got[k], 3) for k, ceiling in AT_MOST.items() if got[k] > ceiling}
    assert not low, f"below the floor: {low}"
    assert not high, f"above the ceiling: {high}"
