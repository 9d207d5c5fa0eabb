"""Which choices a typed answer means: their numbers ("1, 3") or their own words ("cáp quang", "cap quang",
"Cáp  quang", "cap quag"), compared as the handbook compares text: no case, diacritics or extra spaces."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from handlers.handbook.normalize import plain
from handlers.numbers import whole_number
from handlers.surveys.definition import Option

_NUMBER_SEPARATORS = re.compile(r"(?:[\s,;.+]|\bvà\b)+")  # "1, 3", "1 3", "1 và 3"
_TEXT_SEPARATORS = re.compile(r"\s*(?:[,;\n]|\bvà\b)\s*")  # "zalo, facebook", "zalo và facebook"
_MIN_PREFIX = 2  # "c" could be anything; "ca" already narrows a list down
_MIN_TYPO = 4  # a one-letter slip in a shorter word is another word


@dataclass(frozen=True)
class Ambiguous:
    """Typed words that fit several choices: nothing is picked, the person is shown which."""

    typed: str
    numbers: tuple[int, ...]  # 1-based, in the list's order


@dataclass(frozen=True)
class _Forms:
    """One choice's label as typed text is compared with it."""

    full: str  # "cap quang mang keo day vao nha"
    head: str  # "cap quang": the label before its explanation in brackets

    @classmethod
    def of(cls, label: str) -> _Forms:
        return cls(plain(label), plain(label.split("(", maxsplit=1)[0]))

    def word_prefixes(self) -> list[str]:
        words = self.full.split()
        return [" ".join(words[:n]) for n in range(1, len(words) + 1)]


def _exact(typed: str, forms: _Forms) -> bool:
    return typed in (forms.full, forms.head)


def _first_words(typed: str, forms: _Forms) -> bool:
    return f"{forms.full} ".startswith(f"{typed} ")


def _prefix(typed: str, forms: _Forms) -> bool:
    return len(typed) >= _MIN_PREFIX and forms.full.startswith(typed)


def _inner_words(typed: str, forms: _Forms) -> bool:
    """"shopee" for "Sàn Shopee, Lazada, TikTok Shop"."""
    return f" {typed} " in f" {forms.full} "


def _typo(typed: str, forms: _Forms) -> bool:
    if len(typed) < _MIN_TYPO:
        return False
    allowed = 1 if len(typed) < 8 else 2  # OSA: a swapped pair of letters is one slip
    return min(OSA.distance(typed, form) for form in (forms.head, *forms.word_prefixes())) <= allowed


# closest first: a tier with one hit decides, a tier with several is ambiguous, an empty one passes on
_TIERS: tuple[Callable[[str, _Forms], bool], ...] = (_exact, _first_words, _prefix, _inner_words, _typo)


def _by_words(choices: Sequence[Option], text: str) -> int | Ambiguous | None:
    """The 0-based index of the one choice `text` names, Ambiguous, or None."""
    typed = plain(text)
    if not typed:
        return None
    forms = [_Forms.of(c.label) for c in choices]
    for tier in _TIERS:
        hits = [i for i, f in enumerate(forms) if tier(typed, f)]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return Ambiguous(text.strip(), tuple(i + 1 for i in hits))
    return None


def _by_numbers(choices: Sequence[Option], text: str) -> list[str] | None:
    """Values for "1, 3", "1 3", "1 và 3"; None unless every part is a number of the list."""
    numbers = [whole_number(p) for p in _NUMBER_SEPARATORS.split(text) if p]
    if not numbers or not all(n is not None and 1 <= n <= len(choices) for n in numbers):
        return None
    return _unique([choices[n - 1].value for n in numbers if n is not None])


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _parts(text: str) -> list[str]:
    return [p for p in _TEXT_SEPARATORS.split(text) if p]


def _several(choices: Sequence[Option], text: str) -> list[str] | Ambiguous | None:
    """Comma-separated numbers or words. A label may hold commas itself ("Sàn Shopee, Lazada, TikTok
    Shop"), so the longest run of parts that names one choice is taken first."""
    parts, picked, start = _parts(text), [], 0
    while start < len(parts):
        for end in range(len(parts), start, -1):
            run = ", ".join(parts[start:end])
            number = whole_number(run) if end == start + 1 else None
            found = number - 1 if number is not None and 1 <= number <= len(choices) else _by_words(choices, run)
            if isinstance(found, int):
                picked.append(choices[found].value)
                start = end
                break
            if end == start + 1:  # not even the part alone names one choice
                return found
    return _unique(picked)


def pick(choices: Sequence[Option], text: str, *, several: bool) -> list[str] | Ambiguous | None:
    """The values a typed answer picks. None: it names nothing in the list (or a number outside it)."""
    exact = [c.value for c in choices if plain(c.label) == plain(text) or c.value == text.strip()]
    if len(exact) == 1:
        return exact
    numbers = _by_numbers(choices, text)
    if numbers is not None:
        return numbers
    whole = _by_words(choices, text)
    if isinstance(whole, int):
        return [choices[whole].value]
    if several and len(_parts(text)) > 1:
        return _several(choices, text)
    return whole
