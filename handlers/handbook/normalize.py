"""Question text as the search compares it: southern and central words put in standard Vietnamese,
lower case, no diacritics (đ→d), Telex/VNI leftovers and repeated letters undone, abbreviations spelled
out, spaced-out names rejoined ("v n e i d"), and one-letter typos corrected against the handbook's
own vocabulary."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

WORDS_FILE = Path(__file__).resolve().parents[2] / "messages" / "search_words.toml"
_WORD = re.compile(r"[a-z0-9]+")
_VNI_DIGITS = re.compile(r"(?<=[a-z])[1-9]+(?=[a-z]|$)")
_TELEX_DOUBLE = (("dd", "d"), ("aa", "a"), ("aw", "a"), ("ee", "e"), ("oo", "o"), ("ow", "o"), ("uw", "u"))
_TELEX_TONE = re.compile(r"(?<=[aeiouy])[sfrxj](?=[a-z]*$)|(?<=[a-z])[sfrxj]$")
_TELEX_LATE_W = re.compile(r"(?<=[aeiouy])w")
_REPEAT = re.compile(r"([a-z])\1{2,}")
_TYPED_WORD = re.compile(r"\w+")


def plain(text: str) -> str:
    """Lower case without diacritics; anything not a letter or digit becomes a space."""
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFC", text).lower().replace("đ", "d"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_WORD.findall(text))


class Phrases(dict[str, str]):
    """A replacement table, knowing its longest phrase in words (asked for every question)."""

    def __init__(self, table: Mapping[str, str]) -> None:
        super().__init__(table)
        self.longest = max((k.count(" ") + 1 for k in self), default=1)
        self.first_words = frozenset(k.split(" ", 1)[0] for k in self)  # where a phrase can start


@dataclass(frozen=True)
class Words:
    abbreviations: Phrases  # plain phrase → plain replacement
    regional: Phrases  # phrase as typed (lower case, diacritics kept) → standard Vietnamese
    stopwords: frozenset[str]
    elsewhere: tuple[str, ...]  # plain phrases naming services the handbook does not cover


@cache
def words() -> Words:
    raw = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))
    abbreviations = Phrases({plain(k): plain(v) for k, v in raw["abbreviations"].items()})
    return Words(
        abbreviations=abbreviations,
        regional=Phrases({_typed(k): v for k, v in raw["regional"].items()}),
        stopwords=frozenset(plain(w) for w in raw["stopwords"]["words"]),
        # spelled out as questions are: "thi bằng lái" is met as "thi giay phep lai xe"
        elsewhere=tuple(" ".join(replace_phrases(plain(p).split(), abbreviations)) for p in raw["elsewhere"]["phrases"]),
    )


def _typed(text: str) -> str:
    return " ".join(_TYPED_WORD.findall(unicodedata.normalize("NFC", text).lower()))


def stopwords() -> frozenset[str]:
    return words().stopwords


def replace_phrases(tokens: list[str], table: Phrases) -> list[str]:
    """Replace the phrases of `table` found in `tokens`, longest first ("vn eid" before "vn")."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] not in table.first_words:
            out.append(tokens[i])
            i += 1
            continue
        for size in range(min(table.longest, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + size])
            if phrase in table:
                out.extend(table[phrase].split())
                i += size
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def standard(text: str) -> str:
    """Regional and chat words as standard Vietnamese, compared as typed: "mô" is "đâu", "mo" is not."""
    return " ".join(replace_phrases(_typed(text).split(), words().regional))


def expand(tokens: list[str]) -> list[str]:
    """Spell out abbreviations."""
    return replace_phrases(tokens, words().abbreviations)


class Repairer:
    """Undoes typing accidents, but only into words the handbook actually uses.

    The same word is repaired the same way in every process (nothing here walks a set): spelling
    variants are tried in the fixed order of `_variants`; failing those, among the handbook words
    one edit away the choice is the word more articles use, then the alphabetically first."""

    def __init__(self, document_frequency: Mapping[str, int]) -> None:
        self._frequency = dict(document_frequency)
        self._by_length: dict[int, list[str]] = {}
        for word in self._frequency:
            self._by_length.setdefault(len(word), []).append(word)

    def knows(self, word: str) -> bool:
        return word in self._frequency

    def word(self, word: str) -> str:
        if word in self._frequency or word.isdigit() or len(word) <= 2:
            return word
        for candidate in self._variants(word):
            if candidate in self._frequency:
                return candidate
        if len(word) >= 4:
            pool = [w for n in (len(word) - 1, len(word), len(word) + 1) for w in self._by_length.get(n, ())]
            close = process.extract(word, pool, scorer=Levenshtein.distance, score_cutoff=1, limit=None)
            if close:
                # smaller distance, then the word more articles use, then alphabetical
                return min(close, key=lambda found: (found[1], -self._frequency[found[0]], found[0]))[0]
        return word

    @staticmethod
    def _variants(word: str) -> list[str]:
        variants = [_REPEAT.sub(r"\1", word), _VNI_DIGITS.sub("", word)]
        telex = word
        for double, single in _TELEX_DOUBLE:
            telex = telex.replace(double, single)
        telex = _TELEX_LATE_W.sub("", telex)  # the w of ơ, ư, ă typed after the word ("oiw" for "ơi")
        variants += [telex, _TELEX_TONE.sub("", telex)]
        variants += [re.sub(r"([a-z])\1", r"\1", v) for v in list(variants)]
        return variants

    def spelled(self, text: str) -> list[str]:
        """The question's words before typo repair: regional words, abbreviations and split names done."""
        return self._rejoin(expand(plain(standard(text)).split()))

    def text(self, text: str) -> str:
        return self.repaired(self.spelled(text))

    def repaired(self, spelled: list[str]) -> str:
        """The question's words (as `spelled` gives them) with typos repaired, as the search compares them."""
        return " ".join(expand([self.word(w) for w in spelled]))

    def _rejoin(self, tokens: list[str]) -> list[str]:
        """Names typed apart become the handbook's word: "v n e i d" and "zalo pay" (when "zalopay" is
        a handbook word and one of its halves is not), never two words the handbook has as they are."""
        out: list[str] = []
        i = 0
        while i < len(tokens):
            end = i
            while end < len(tokens) and len(tokens[end]) == 1 and tokens[end].isalpha():
                end += 1
            if end - i >= 3 and "".join(tokens[i:end]) in self._frequency:
                out.append("".join(tokens[i:end]))
                i = end
                continue
            pair = tokens[i : i + 2]
            if len(pair) == 2 and "".join(pair) in self._frequency and not all(w in self._frequency for w in pair):
                out.append("".join(pair))
                i += 2
                continue
            out.append(tokens[i])
            i += 1
        return out
