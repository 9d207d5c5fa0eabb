"""Question text as the search compares it: lower case, no diacritics (đ→d), Telex/VNI leftovers and
repeated letters undone, abbreviations spelled out, and one-letter typos corrected against the
handbook's own vocabulary."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

WORDS_FILE = Path(__file__).resolve().parents[2] / "messages" / "search_words.toml"
_WORD = re.compile(r"[a-z0-9]+")
_VNI_DIGITS = re.compile(r"(?<=[a-z])[1-9]+(?=[a-z]|$)")
_TELEX_DOUBLE = (("dd", "d"), ("aa", "a"), ("aw", "a"), ("ee", "e"), ("oo", "o"), ("ow", "o"), ("uw", "u"))
_TELEX_TONE = re.compile(r"(?<=[aeiouy])[sfrxj](?=[a-z]*$)|(?<=[a-z])[sfrxj]$")
_REPEAT = re.compile(r"([a-z])\1{2,}")


def plain(text: str) -> str:
    """Lower case without diacritics; anything not a letter or digit becomes a space."""
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFC", text).lower().replace("đ", "d"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_WORD.findall(text))


@cache
def _dictionary() -> tuple[dict[str, str], frozenset[str]]:
    raw = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))
    abbreviations = {plain(k): plain(v) for k, v in raw["abbreviations"].items()}
    return abbreviations, frozenset(plain(w) for w in raw["stopwords"]["words"])


def stopwords() -> frozenset[str]:
    return _dictionary()[1]


def expand(words: list[str]) -> list[str]:
    """Spell out abbreviations, longest phrase first ("vn eid" before "vn")."""
    abbreviations = _dictionary()[0]
    longest = max((k.count(" ") + 1 for k in abbreviations), default=1)
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(longest, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + size])
            if phrase in abbreviations:
                out.extend(abbreviations[phrase].split())
                i += size
                break
        else:
            out.append(words[i])
            i += 1
    return out


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
        variants += [telex, _TELEX_TONE.sub("", telex)]
        variants += [re.sub(r"([a-z])\1", r"\1", v) for v in list(variants)]
        return variants

    def text(self, text: str) -> str:
        words = expand(plain(text).split())
        return " ".join(expand([self.word(w) for w in words]))
