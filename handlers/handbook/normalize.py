"""Question text as the search compares it: southern and central words put in standard Vietnamese,
names written as heard put as the handbook spells them ("phây búc", "mobai mani"), lower case, no
diacritics (đ→d), Telex/VNI leftovers and repeated letters undone, abbreviations spelled out, spaced-out
and read-aloud names rejoined ("v n e i d", "vi en e i đi"), and one-letter typos of what is no Vietnamese syllable
corrected against the handbook's own vocabulary."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

WORDS_FILE = Path(__file__).resolve().parents[2] / "messages" / "search_words.toml"
_WORD = re.compile(r"[a-z0-9]+")
_VNI_DIGITS = re.compile(r"(?<=[a-z])[1-9]+(?=[a-z]|$)")
_TELEX_DOUBLE = (("dd", "d"), ("aa", "a"), ("aw", "a"), ("ee", "e"), ("oo", "o"), ("ow", "o"), ("uw", "u"))
_TELEX_TONE = re.compile(r"(?<=[aeiouy])[sfrxj](?=[a-z]*$)|(?<=[a-z])[sfrxj]$")
_TELEX_LATE_W = re.compile(r"(?<=[aeiouy])w")
_TELEX_END_W = re.compile(r"([aeiouy][a-z]{1,2})w$")  # Unikey takes the w of ơ, ư, ă at the word's end
_REPEAT = re.compile(r"([a-z])\1{2,}")
_J_FOR_I = re.compile(r"(?<![aeiouy])j")  # "chj", "wifj", "hjhj": a j where no tone mark can be is an i
_FINAL_G = re.compile(r"(?<=[aeiouy])g$")  # no Vietnamese syllable ends in a bare g: "sag" lost the n of "sang"
_FINAL_K = re.compile(r"(?<=[aeiouy])k$")  # nor in k: "mứk" is "mức" typed the way it sounds
# one Vietnamese syllable written without diacritics: never a run of words typed together ("xuong")
SYLLABLE = re.compile(r"(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnprstvx])?[aeiouy]{1,3}(ch|ng|nh|[cmnpt])?")
_TRAILING_NUMBER = re.compile(r"([a-z]{2,})([0-9]+)")  # "muc2": a word and a number typed together
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
    regional: Phrases  # phrase as typed (lower case, diacritics kept) → standard Vietnamese, or a name heard
    letters: dict[str, str]  # a letter's name read aloud (plain) → the letter: "vi" and "vê" are "v"
    stopwords: frozenset[str]
    elsewhere: tuple[str, ...]  # plain phrases naming services the handbook does not cover
    framing: Phrases  # plain phrases that frame a message and name nothing ("kinh gui bot") → nothing
    amounts: tuple[str, ...]  # plain phrases asking an amount or a time ("bao nhieu", "bao lau")
    peoples: tuple[str, ...]  # plain names of peoples that are no syllable ("hmong"): never "repaired"


@cache
def words() -> Words:
    raw = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))
    abbreviations = Phrases({plain(k): plain(v) for k, v in raw["abbreviations"].items()})
    return Words(
        abbreviations=abbreviations,
        regional=Phrases({typed(k): v for k, v in (raw["regional"] | raw["by_ear"]).items()}),
        letters={plain(k): v for k, v in raw["letter_names"].items()},
        stopwords=frozenset(plain(w) for w in raw["stopwords"]["words"]),
        # spelled out as questions are: "thi bằng lái" is met as "thi giay phep lai xe"
        elsewhere=tuple(" ".join(replace_phrases(plain(p).split(), abbreviations)) for p in raw["elsewhere"]["phrases"]),
        framing=Phrases(dict.fromkeys((plain(p) for p in raw["framing"]["phrases"]), "")),
        amounts=tuple(plain(p) for p in raw["asks"]["amount"]),
        peoples=tuple(dict.fromkeys(plain(w) for w in raw["peoples"]["words"])),
    )


def typed(text: str) -> str:
    """Lower case words as typed, diacritics kept (NFC); punctuation becomes a space."""
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
                replacement = table[phrase].split()
                done = _spelled_out(out, tokens[i:], size, replacement)
                out.extend(tokens[i : i + done] if done else replacement)
                i += done or size
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _spelled_out(before: list[str], rest: list[str], size: int, replacement: list[str]) -> int:
    """When a replacement keeps its phrase ("otp" is "ma otp", "ch" is "ch play") and the words around
    the phrase are already the rest of it, how many words of `rest` are kept as they are (0: replace):
    spelling out twice would make "ma ma otp"."""
    phrase = rest[:size]
    for at in range(len(replacement) - size + 1):
        if replacement[at : at + size] != phrase:
            continue
        after = replacement[at + size :]
        if before[len(before) - at :] == replacement[:at] and rest[size : size + len(after)] == after:
            return size + len(after)
    return 0


@lru_cache(maxsize=64)  # the search, `asks` and `about_bot` each read the same question standardised
def standard(text: str) -> str:
    """Regional and chat words as standard Vietnamese and names written as heard as the names, compared as
    typed: "mô" is "đâu", "mo" is not, "mô mô" is MoMo."""
    return " ".join(replace_phrases(typed(text).split(), words().regional))


def expand(tokens: list[str]) -> list[str]:
    """Spell out abbreviations."""
    return replace_phrases(tokens, words().abbreviations)


class Repairer:
    """Undoes typing accidents, but only into words the handbook actually uses, and never out of a word
    that names a service next to ours (`kept`: the [elsewhere] list and the articles' not_covered).

    The same word is repaired the same way in every process (nothing here walks a set): spelling
    variants are tried in the fixed order of `_variants`; failing those, among the handbook words
    one edit away the choice is the word more articles use, then the alphabetically first."""

    def __init__(self, document_frequency: Mapping[str, int], kept: Iterable[str] = ()) -> None:
        self._frequency = dict(document_frequency)
        # words of the services next to ours stay as typed: "hưu" of "lương hưu" is no "hư", "data" no "đất"
        self._kept = frozenset(kept)
        # a mistyped abbreviation ("ddc", "kk") is repaired into the abbreviation, then spelled out
        self._spellings = {w for w in words().abbreviations if " " not in w}
        self._by_length: dict[int, list[str]] = {}
        for word in self._frequency:
            self._by_length.setdefault(len(word), []).append(word)

    def knows(self, word: str) -> bool:
        return word in self._frequency

    def word(self, word: str) -> str:
        """The handbook word (or words, space-separated: "dangkyvneid") a typed word was meant to be."""
        if word in self._frequency or word in self._kept or word.isdigit() or len(word) <= 2:
            return word
        for candidate in self._variants(word):
            if candidate in self._frequency or candidate in self._spellings:
                return candidate
        glued = self._split(word)
        if glued:
            return " ".join(glued)
        # one edit away, but never from a word that is itself a syllable: "tieu" (pepper) is not "tien"
        if len(word) >= 4 and not SYLLABLE.fullmatch(word):
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
        # the w of ơ, ư, ă typed after the vowel or after the whole word ("oiw" for "ơi", "onw" for "ơn")
        telex = _TELEX_END_W.sub(r"\1", _TELEX_LATE_W.sub("", telex))
        variants += [telex, _J_FOR_I.sub("i", telex), _TELEX_TONE.sub("", telex)]
        variants += [re.sub(r"([a-z])\1", r"\1", v) for v in list(variants)]
        variants += [_FINAL_G.sub("ng", v) for v in variants if _FINAL_G.search(v)]
        variants += [_FINAL_K.sub("c", v) for v in variants if _FINAL_K.search(v)]
        return variants

    def _split(self, word: str) -> list[str]:
        """Words typed without spaces ("dangkyvneid"), read as the fewest handbook words of two letters
        or more; the longest first word of equals. [] when the word is not such a run."""
        if len(word) < 5 or SYLLABLE.fullmatch(word):
            return []
        # fewest[i]: the fewest handbook words that make up word[i:], as a list (None: none do)
        fewest: list[list[str] | None] = [None] * len(word) + [[]]
        for start in range(len(word) - 2, -1, -1):
            for end in range(len(word), start + 1, -1):
                rest, best = fewest[end], fewest[start]
                if rest is not None and word[start:end] in self._frequency and (best is None or len(rest) + 1 < len(best)):
                    fewest[start] = [word[start:end], *rest]
        found = fewest[0]
        return found if found and len(found) > 1 else []

    def spelled(self, text: str) -> list[str]:
        """The question's words before typo repair: regional words, abbreviations and split names done,
        and the words that frame a letter left out ("kính gửi bot", "trân trọng cảm ơn": [framing])."""
        said = replace_phrases(plain(standard(text)).split(), words().framing)
        return self._rejoin(expand([w for t in said for w in self._numbered(t)]))

    def _names(self, word: str) -> bool:
        """Whether letters joined make a handbook word that is no syllable ("vneid", "otp"; not "tai")."""
        return word in self._frequency and not SYLLABLE.fullmatch(word)

    def _numbered(self, token: str) -> list[str]:
        """ "muc2" is "muc 2" when "muc" is a handbook word (else the digits may be VNI tone marks)."""
        found = _TRAILING_NUMBER.fullmatch(token)
        return [found[1], found[2]] if found and token not in self._frequency and found[1] in self._frequency else [token]

    def text(self, text: str) -> str:
        return self.repaired(self.spelled(text))

    def repaired(self, spelled: list[str]) -> str:
        """The question's words (as `spelled` gives them) with typos repaired, as the search compares them."""
        return " ".join(expand([r for w in spelled for r in self.word(w).split()]))

    def _rejoin(self, tokens: list[str]) -> list[str]:
        """Names typed apart become the handbook's word: letters typed or read aloud ("v n e i d", "vi en
        e i di": the longest run of three or more that spells a handbook word no syllable), "zalo pay" (when
        "zalopay" is a handbook word and one of its halves is not) and "d ien" (neither half is a word of
        ours), never two words the handbook has as they are."""
        letters = words().letters
        out: list[str] = []
        i = 0
        while i < len(tokens):
            end = i
            while end < len(tokens) and ((len(tokens[end]) == 1 and tokens[end].isalpha()) or tokens[end] in letters):
                end += 1
            read = [letters.get(t, t) for t in tokens[i:end]]
            size = next((n for n in range(len(read), 2, -1) if self._names("".join(read[:n]))), 0)
            if size:
                out.append("".join(read[:size]))
                i += size
                continue
            pair = tokens[i : i + 2]
            ours = [w in self._frequency for w in pair]
            # a syllable broken apart ("đ.iện") or a name split ("zalo pay"); "gì ạ" typed "gi a" is no "gia"
            if len(pair) == 2 and "".join(pair) in self._frequency and (
                not any(ours) or (self._names("".join(pair)) and not all(ours))
            ):
                out.append("".join(pair))
                i += 2
                continue
            out.append(tokens[i])
            i += 1
        return out
