"""What to do with a searched question: answer with the top article, offer the top three, or hand it
to the tech team. Two logistic models over the signals of the search (index.Lookup) say how likely the
top article is the right one and how likely the handbook has an answer at all. Each signal enters
piecewise linear: itself plus a hinge max(signal - knot, 0) at each of its training quartiles (`knots`),
since a signal need not weigh the same over its whole range. The operating points
("answer only when sure", "hand off when the handbook most likely has nothing") are part of the fitted
model, and so is the learned reading of small talk the rules let through (chatter.py). The weights are
data (decision.json), fitted by `bench/handbook.py --fit` on the evaluation set, and only read here:
nothing is trained while the bot runs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

import numpy as np

from handlers.handbook.chatter import Chatter
from handlers.handbook.index import Lookup
from handlers.handbook.logistic import sigmoid

MODEL_FILE = Path(__file__).with_name("decision.json")
FEATURES = ("score", "margin", "ratio", "whole", "phrase", "words", "lead", "agree", "coverage", "core", "overlap",
            "unknown", "elsewhere", "topic", "weighted", "weighted_lead", "pairs", "core_lead", "novel_pairs",
            "unknown_typed", "rival", "amount")


class Kind(StrEnum):
    ANSWER = "answer"
    OFFER = "offer"
    HANDOFF = "handoff"
    CHAT = "chat"  # small talk: a friendly hello, no article, no tech team
    CONFIRM = "confirm"  # small talk or a question, the words cannot say: ask before the tech team gets it


def signals(lookup: Lookup) -> np.ndarray:
    """The top hit's signals, in the order of FEATURES (the search found something)."""
    top = lookup.hits[0]
    runner_up = lookup.hits[1].score if len(lookup.hits) > 1 else 0.0
    return np.array([
        top.score,
        top.score - runner_up,
        runner_up / top.score,
        *top.views,
        top.lead,
        top.agree,
        top.coverage,
        top.core,
        top.overlap,
        lookup.unknown,
        float(top.elsewhere),
        math.log1p(len(lookup.topic)),
        top.weighted,
        top.weighted_lead,
        top.pairs,
        top.core_lead,
        lookup.novel_pairs,
        lookup.unknown_typed,
        top.rival,
        float(lookup.amount),
    ])


def answerable(lookup: Lookup) -> bool:
    """Whether the top article may answer directly at all: never when the question names a service next
    to ours that the article does not cover (the [elsewhere] list, its not_covered), however sure the
    model is: an unrelated article given as the answer misleads, a menu or the tech team does not."""
    return not lookup.hits[0].elsewhere


def basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """The rows of signals followed by one hinge max(signal - knot, 0) per knot (feature index, knot)."""
    x = np.atleast_2d(x)
    return np.column_stack([x, np.maximum(x[:, knots[:, 0].astype(int)] - knots[:, 1], 0)])


@dataclass(frozen=True)
class Model:
    knots: np.ndarray  # one row per hinge: the index of its signal in FEATURES, and where it bends
    mean: np.ndarray  # of the basis columns (signals, then hinges)
    scale: np.ndarray
    right: np.ndarray  # intercept, then one weight per basis column: is the top article the right one
    known: np.ndarray  # the same for: does the handbook answer this at all
    answer_from: float  # answer when P(right) reaches this
    handoff_below: float  # hand off when P(known) is under this
    note: str = ""  # how and on what it was fitted
    chatter: Chatter = field(default_factory=Chatter)  # small talk among what would be offered or handed off

    def probabilities(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(right) and P(known) for a row of signals, or for a matrix of rows."""
        b = basis(x, self.knots)
        z = np.column_stack([np.ones(b.shape[0]), (b - self.mean) / self.scale])
        return sigmoid(z @ self.right), sigmoid(z @ self.known)

    def kind(self, lookup: Lookup) -> Kind:
        """Answer when sure; otherwise a question goes to a menu or the tech team, and a message that
        asks nothing (Lookup.asks: "trời mưa to quá, ngoài đồng nước ngập hết rồi") or reads as small talk
        all the same (chatter.py: "mưa cả tuần không phơi lúa được, chán ghê") is small talk: a hand-off
        needs an ask. A message that reads as small talk but not surely (chatter.sure_from), or that
        names something of ours or next to ours (Lookup.names: "thằng Bin lấy điện thoại bà chơi game cả
        buổi, hết sạch pin", "bot ngủ ngon không lấy được mã otp"), may be either, and the person says
        which (CONFIRM): a tap costs a real question less than silence, and spares the tech team a remark.
        The reading comes after the answer: "cảm ơn, bot giúp được gì" is worded like small talk, and is a
        question the article on using the bot answers. The bot asked about itself, and nothing else ("bot
        ơi bot ở đâu"), is small talk even when that article scores well. A name of ours typed alone ("vneid",
        Lookup.bare) gets the menu of its articles: which one is meant, only the person can say."""
        if lookup.about_bot and not lookup.asks:
            return Kind.CHAT
        if lookup.hits:
            right, known = (float(p[0]) for p in self.probabilities(signals(lookup)))
            if right >= self.answer_from and answerable(lookup):
                return Kind.ANSWER
        if not lookup.asks:
            return Kind.CHAT
        chat = self.chatter.probability(lookup)  # once: the sum over the message's words is the costly part
        if chat >= self.chatter.chat_from:
            return Kind.CHAT if chat >= self.chatter.sure_from and not lookup.names else Kind.CONFIRM
        if lookup.hits and lookup.bare:  # "vneid" alone: which article it is about, the person knows, the team does not
            return Kind.OFFER
        return Kind.HANDOFF if not lookup.hits or known < self.handoff_below else Kind.OFFER

    def to_json(self) -> str:
        data = {"features": list(FEATURES), "note": self.note, "answer_from": self.answer_from,
                "handoff_below": self.handoff_below}
        data |= {name: [round(float(v), 6) for v in getattr(self, name)] for name in ("mean", "scale", "right", "known")}
        data["knots"] = [[int(j), round(float(k), 6)] for j, k in self.knots]
        data["chatter"] = self.chatter.to_dict()
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Model:
        data = json.loads(text)
        if data["features"] != list(FEATURES):
            raise ValueError(f"{MODEL_FILE.name} was fitted on other signals: refit with bench/handbook.py --fit")
        arrays = {name: np.asarray(data[name], float) for name in ("knots", "mean", "scale", "right", "known")}
        arrays["knots"] = arrays["knots"].reshape(-1, 2)  # two columns even with no knot
        return cls(**arrays, answer_from=data["answer_from"], handoff_below=data["handoff_below"], note=data["note"],
                   chatter=Chatter.from_dict(data["chatter"]))


@cache
def shipped() -> Model:
    return Model.from_json(MODEL_FILE.read_text(encoding="utf-8"))
