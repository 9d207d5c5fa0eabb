"""Small talk that the rules of chitchat.py let through because an ask word appears in passing: "mưa cả
tuần không phơi măng được, chán ghê" ("không"), "hôm nay đứa nhỏ thi được điểm mười, vui quá", "chào bot,
tui bán trà ở đầu dốc nè" ("đâu" once the accents are gone). No list of phrases names every way of
telling one's day; the words around the ask word do say it, and a learned model reads them.

P(small talk) is a logistic model over five signals: the evidence of the question's words and neighbouring
word pairs (the sum of each one's log ratio of how often it occurs in small talk and in questions of the
evaluation set: naive Bayes over the searched text, so spelling without accents, abbreviations and
regional words are already repaired), whether the message asks something (chitchat.asks), the top hit's
score, the message's length, and whether it has a name no article uses (Lookup.strange): a product or a
licence class asks, but a grandchild called "Bin" or a town in Korea ("Pusan") are names too, and a day
told around them is still small talk, so such a name weighs against small talk rather than ruling it out. A
message that names a service next to ours or a handbook name an everyday word cannot be (Lookup.names:
"bot ngủ ngon không lấy được mã otp" is about the code) is never taken for small talk on this reading
alone: the bot asks before the tech team gets it (decision.Kind.CONFIRM). A message the decision model
does not answer (decision.Model.kind) reads as small talk from `chat_from`, and surely from `sure_from`, both
chosen like the answer point: on probabilities each training question got from a model fitted without
it, at the lowest level where what it calls small talk still is small talk `CHAT_PRECISION` (95 %) and
`SURE_PRECISION` (99 %) of the time. Only sure small talk gets the hello; between the two the bot asks
(decision.Kind.CONFIRM), as "trời mưa không ra ruộng được, tiền điện đóng ở đâu" is mostly weather and
still a question. Fitted by `bench/handbook.py --fit` with the decision model and stored with it; only
read here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from handlers.handbook.index import Lookup
from handlers.handbook.logistic import sigmoid

SIGNALS = 5


def features(query: str) -> list[str]:
    """The searched question's words and neighbouring word pairs, each once, sorted: the evidence is a sum
    in a fixed order, the same in every process."""
    words = query.split()
    return sorted({*words, *(f"{a} {b}" for a, b in pairwise(words))})


def signals(lookup: Lookup, ratios: dict[str, float]) -> np.ndarray:
    """Evidence of the words, whether it asks, the top hit's score, log(1 + words), whether it has a name
    no article uses (Lookup.strange)."""
    evidence = sum(ratios.get(f, 0.0) for f in features(lookup.query))
    top = lookup.hits[0].score if lookup.hits else 0.0
    return np.array([evidence, float(lookup.asks), top, math.log1p(len(lookup.query.split())),
                     float(lookup.strange)])


@dataclass(frozen=True)
class Chatter:
    ratios: dict[str, float] = field(default_factory=dict)  # word or pair: log P(in small talk) / P(in a question)
    mean: np.ndarray = field(default_factory=lambda: np.zeros(SIGNALS))  # of the signals, to standardise them
    scale: np.ndarray = field(default_factory=lambda: np.ones(SIGNALS))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(SIGNALS + 1))  # intercept, then one per signal
    chat_from: float = 1.01  # from here it reads as small talk; no model: nothing is taken for small talk
    sure_from: float = 1.01  # from here surely (decision.Model.kind asks in between)

    def probability(self, lookup: Lookup) -> float:
        z = self.weights[0] + self.weights[1:] @ ((signals(lookup, self.ratios) - self.mean) / self.scale)
        return float(sigmoid(z))

    def to_dict(self) -> dict[str, object]:
        return {"chat_from": self.chat_from, "sure_from": self.sure_from, "mean": _rounded(self.mean),
                "scale": _rounded(self.scale), "weights": _rounded(self.weights),
                "ratios": {f: round(r, 3) for f, r in sorted(self.ratios.items())}}

    @classmethod
    def from_dict(cls, data: dict) -> Chatter:
        arrays = {name: np.asarray(data[name], float) for name in ("mean", "scale", "weights")}
        return cls(ratios=dict(data["ratios"]), chat_from=float(data["chat_from"]),
                   sure_from=float(data["sure_from"]), **arrays)


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]
