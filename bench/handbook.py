"""Handbook search benchmark on tests/eval/questions.tsv.

    python bench/handbook.py            # the figures
    python bench/handbook.py --answers  # one JSON line per question: decision, top three, scores

Prints top-1 and top-3 accuracy (overall and per third: with diacritics, without, with typos and
abbreviations), the hand-off decisions, p50/p99 latency per question on the real handbook and on an
index scaled to 5,000 synthetic articles, and the index build time.

The procedure is fixed: the shipped articles (no saved tech-team answers), every row of the
questions file in order, synthetic articles from a seeded generator. Everything but the timings is
the same on every run and under any PYTHONHASHSEED; the "answers digest" line (a hash of the
--answers output) lets two runs be compared at a glance, and tests/test_determinism.py runs
--answers under several seeds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.handbook.articles import Article, load  # noqa: E402
from handlers.handbook.search import Handbook, Kind  # noqa: E402

QUESTIONS = ROOT / "tests" / "eval" / "questions.tsv"


def answer(handbook: Handbook, question: str) -> dict:
    """One question's decision and top three as `langso ask --json` prints them (scores rounded)."""
    decision = handbook.decide(question)
    hits = [{"id": h.article.id, "score": round(h.score, 4), "coverage": round(h.coverage, 3)} for h in decision.hits]
    return {"question": question, "decision": str(decision.kind), "hits": hits}


def evaluate(rows: list[dict[str, str]], answered: list[dict]) -> None:
    top1: dict[str, list[bool]] = defaultdict(list)
    top3: dict[str, list[bool]] = defaultdict(list)
    decisions: dict[str, list[Kind]] = defaultdict(list)
    answered_right: list[bool] = []
    for row, given in zip(rows, answered, strict=True):
        kind = Kind(given["decision"])
        ids = [h["id"] for h in given["hits"]]
        if row["expected"] == "none":
            decisions["none"].append(kind)
            continue
        decisions["answerable"].append(kind)
        for key in ("all", row["style"]):
            top1[key].append(bool(ids) and ids[0] == row["expected"])
            top3[key].append(row["expected"] in ids)
        if kind is Kind.ANSWER:
            answered_right.append(ids[0] == row["expected"])
    for key in ("all", "dau", "khong_dau", "loi"):
        print(f"  {key:10} top-1 {_pct(top1[key])}  top-3 {_pct(top3[key])}  ({len(top1[key])} questions)")
    none, answerable = decisions["none"], decisions["answerable"]
    print(f"  'none' questions handed off: {_pct([k is Kind.HANDOFF for k in none])} of {len(none)} (goal >= 80%)")
    print(f"  answerable questions handed off (wrong hand-offs): "
          f"{_pct([k is Kind.HANDOFF for k in answerable])} of {len(answerable)} (goal <= 5%)")
    print(f"  answerable: answered {_pct([k is Kind.ANSWER for k in answerable])}, "
          f"offered top 3 {_pct([k is Kind.OFFER for k in answerable])}; "
          f"answers that were the right article {_pct(answered_right)}")


def _lines(answered: list[dict]) -> list[str]:
    return [json.dumps(a, ensure_ascii=False) for a in answered]


def latency(handbook: Handbook, questions: list[str]) -> str:
    times = []
    for question in questions * 3:
        started = time.perf_counter()
        handbook.decide(question)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return f"p50 {statistics.median(times):.2f} ms, p99 {times[int(len(times) * 0.99) - 1]:.2f} ms"


def synthetic(articles: list[Article], count: int) -> list[Article]:
    """Articles made by shuffling the real ones' sentences and phrases: realistic vocabulary and length."""
    rng = random.Random(7)
    sentences = [s for a in articles for s in a.body.split(". ") if s.strip()]
    phrases = [p for a in articles for p in (*a.synonyms, *a.questions)]
    made = []
    for n in range(count - len(articles)):
        base = rng.choice(articles)
        made.append(
            replace(
                base,
                id=f"synthetic-{n}",
                title=" ".join(rng.sample(phrases, 2)),
                synonyms=tuple(rng.sample(phrases, 5)),
                questions=tuple(rng.sample(phrases, 6)),
                body=". ".join(rng.sample(sentences, 25)),
            )
        )
    return articles + made


def main() -> None:
    rows = list(csv.DictReader(QUESTIONS.open(encoding="utf-8"), delimiter="\t"))
    articles = load()
    started = time.perf_counter()
    handbook = Handbook(articles)
    build = time.perf_counter() - started
    answered = [answer(handbook, row["question"]) for row in rows]
    if "--answers" in sys.argv[1:]:
        print("\n".join(_lines(answered)))
        return
    print(f"real handbook: {len(articles)} articles, index built in {build * 1000:.0f} ms; {len(rows)} questions")
    evaluate(rows, answered)
    digest = hashlib.sha256("\n".join(_lines(answered)).encode()).hexdigest()[:16]
    print(f"  answers digest: {digest} (the same on every run and under any PYTHONHASHSEED)")
    questions = [r["question"] for r in rows]
    print(f"  latency per question: {latency(handbook, questions)} (goal p99 <= 5 ms)")

    scaled_articles = synthetic(articles, 5000)
    started = time.perf_counter()
    scaled = Handbook(scaled_articles)
    build = time.perf_counter() - started
    print(f"scaled to {len(scaled_articles)} articles: index built in {build * 1000:.0f} ms")
    print(f"  latency per question: {latency(scaled, questions)} (goal p99 <= 30 ms)")


def _pct(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):5.1f}%" if values else "  n/a"


if __name__ == "__main__":
    main()
