"""The handbook evaluation set: questions.tsv, one question a row with the article that answers it
(`none` when the handbook has nothing, `chitchat` for small talk), how it is written (`style`: with
diacritics, without, with typos and abbreviations) and what kind of question it is (`kind`: plain,
regional speech, a problem described instead of named, a near-miss on a service next to ours, small talk).

A held-out set (BLIND, in the same columns) is written by someone who saw only the articles' titles and
summaries (never the articles, the word lists or questions.tsv), never used to fit the model or to write
a word list or an article, and scored once with `bench/handbook.py --blind`; then it is spent and joins
questions.tsv. blind.tsv and blind2.tsv to blind59.tsv are in questions.tsv; blind60.tsv (Ba Na and Xơ Đăng
villages of Kon Tum and Gia Lai, Vietnamese as a second language) is held out."""

from __future__ import annotations

import csv
from pathlib import Path

QUESTIONS = Path(__file__).with_name("questions.tsv")
BLIND: tuple[Path, ...] = (Path(__file__).with_name("blind60.tsv"),)
STYLES = ("dau", "khong_dau", "loi")
KINDS = ("plain", "regional", "problem", "nearmiss", "chitchat")


def read(path: Path = QUESTIONS) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
