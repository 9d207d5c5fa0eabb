"""Small talk ("alo", "cảm ơn nha", "haha", "bot ơi", an emoji or ":))"): the bot says hello and what it can do
instead of searching the handbook or bothering the tech team. The words are data, in the [chitchat]
table of messages/search_words.toml."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from handlers.handbook.normalize import WORDS_FILE, Repairer, expand, plain, standard


@dataclass(frozen=True)
class _Talk:
    phrases: frozenset[str]
    longest: int
    fillers: frozenset[str]
    laughter: re.Pattern[str]
    emoticons: re.Pattern[str]  # ":))", "^^", "<3", as typed, each standing alone
    repair: Repairer  # the handbook's typo repair, against the words of this table ("oiw", "nhìu")


@cache
def _talk() -> _Talk:
    raw = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))["chitchat"]
    phrases = frozenset(plain(p) for p in raw["phrases"])
    fillers = frozenset(plain(w) for w in raw["fillers"])
    # every word once, in the file's order, so that a typo's repair never depends on set order
    vocabulary = dict.fromkeys(w for p in [*raw["phrases"], *raw["fillers"]] for w in plain(p).split())
    return _Talk(
        phrases=phrases,
        longest=max(p.count(" ") + 1 for p in phrases),
        fillers=fillers,
        laughter=re.compile("|".join(f"(?:{pattern})" for pattern in raw["laughter"])),
        emoticons=re.compile("|".join(rf"(?<!\S)(?:{pattern})(?!\S)" for pattern in raw["emoticons"])),
        repair=Repairer(dict.fromkeys(vocabulary, 1)),
    )


def is_small_talk(text: str, handbook_word: Callable[[str], bool] = lambda _: False) -> bool:
    """Only greetings, thanks, laughter, emoji, emoticons and the like (at least one of them, plus
    fillers such as "nha", "ạ"). A mistyped word is read as the table's word it was meant to be, unless
    it is a word of the handbook ("khoa" is not "khoe")."""
    talk = _talk()
    words_only = talk.emoticons.sub(" ", text)
    said = words_only != text or any(unicodedata.category(ch) == "So" for ch in text)
    tokens = [w if handbook_word(w) else talk.repair.word(w) for w in expand(plain(standard(words_only)).split())]
    i = 0
    while i < len(tokens):
        size = next(
            (n for n in range(min(talk.longest, len(tokens) - i), 0, -1) if " ".join(tokens[i : i + n]) in talk.phrases),
            0,
        )
        if size:
            said, i = True, i + size
        elif talk.laughter.fullmatch(tokens[i]):
            said, i = True, i + 1
        elif tokens[i] in talk.fillers:
            i += 1
        else:
            return False
    return said
