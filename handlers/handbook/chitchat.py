"""Small talk ("alo", "cảm ơn nha", "haha", "bot ơi", an emoji or ":))"): the bot says hello and what it can do
instead of searching the handbook or bothering the tech team. The words are data, in the [chitchat]
table of messages/search_words.toml.

No list names every way of chatting ("bot ơi hôm qua mưa to ghê", "chào bot, tui là Tư"), so a short
message that says something small-talk-like may also carry words that are no topic of the handbook
(index.HandbookIndex.topic_words): with no topic there is nothing to search for or hand off. A word the
small-talk phrases use is no topic there either: once accents are gone it is often an article's syllable
too ("lạnh", "trai"), and the small-talk phrase around it says which it is. One other topic word ("wifi",
"dùng", "khóa") or a question word outside a small-talk phrase ("bot làm được gì") makes it a question
again.

Longer chatter ("tui ở ngoài rẫy mới dìa, mệt muốn xỉu, ngồi nghỉ chút nói chuyện với bot") is caught
after the search instead: what the handbook cannot answer goes to the tech team only if it asks
something (`asks`: a question word, a request, a trouble; the [asks] table), or names a service next to
ours or a distinctive handbook topic (index.HandbookIndex.names_topic). A remark gets the small-talk reply,
which says how to ask."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from handlers.handbook.normalize import WORDS_FILE, Repairer, expand, plain, standard, typed

# at most this many words for a message whose words off the small-talk list are let through as no topic:
# a longer message is telling something, and is better searched
SHORT = 8


class _Word(NamedTuple):
    """A word of the [asks] table as it is spelled there and without its diacritics."""

    typed: str
    plain: str


Phrase = tuple[_Word, ...]


def _phrase(text: str) -> Phrase:
    return _listed(typed(text).split())


def _listed(words: list[str]) -> Phrase:
    return tuple(_Word(typed(w), plain(w)) for w in words)


def _by_first(phrases: list[str]) -> dict[str, tuple[Phrase, ...]]:
    """The phrases by their first word without diacritics, each key's in the file's order: a message
    is compared only with the phrases that can start at each of its words."""
    found: dict[str, list[Phrase]] = {}
    for text in phrases:
        phrase = _phrase(text)
        found.setdefault(phrase[0].plain, []).append(phrase)
    return {first: tuple(listed) for first, listed in found.items()}


@dataclass(frozen=True)
class _Talk:
    phrases: frozenset[str]
    longest: int
    fillers: frozenset[str]
    asking: frozenset[str]  # question words: let through only inside a phrase ("ten gi")
    vocabulary: frozenset[str]  # every word of the phrases: never a topic in a message that chats
    laughter: re.Pattern[str]
    emoticons: re.Pattern[str]  # ":))", "^^", "<3", as typed, each standing alone
    spellings: frozenset[str]  # one-word abbreviations ("dc", "ko"), found in a word typed with "đ"
    repair: Repairer  # the handbook's typo repair, against the words of this table ("oiw", "nhìu")
    asks: dict[str, tuple[Phrase, ...]]  # [asks]: phrases that ask, request or complain, with diacritics
    asks_last: Phrase  # question particles that ask only as the last word
    asks_nothing: dict[str, tuple[Phrase, ...]]  # phrases holding an ask word that asks nothing ("xin chào")
    wish: Phrase  # "muốn ... thì"
    about_bot: tuple[str, ...]  # a question with the bot as its subject ("bot co")
    bot_tasks: tuple[str, ...]  # what the bot does for people: asking for it is no small talk
    bot_feelings: tuple[str, ...]  # asked how it feels ("bot co buon", "ban co met"): chatter, tasks or not
    waiting: tuple[str, ...]  # asking where an answer is ("chua ai tra loi")


@cache
def _talk() -> _Talk:
    table = tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))
    raw, words = table["chitchat"], table["asks"]
    phrases = frozenset(plain(p) for p in raw["phrases"])
    fillers = frozenset(plain(w) for w in raw["fillers"])
    # every word once, in the file's order, so that a typo's repair never depends on set order
    vocabulary = dict.fromkeys(w for p in [*raw["phrases"], *raw["fillers"]] for w in plain(p).split())
    return _Talk(
        phrases=phrases,
        longest=max(p.count(" ") + 1 for p in phrases),
        fillers=fillers,
        asking=frozenset(plain(w) for w in raw["asking"]),
        vocabulary=frozenset(w for p in phrases for w in p.split()),
        laughter=re.compile("|".join(f"(?:{pattern})" for pattern in raw["laughter"])),
        emoticons=re.compile("|".join(rf"(?<!\S)(?:{pattern})(?!\S)" for pattern in raw["emoticons"])),
        repair=Repairer(dict.fromkeys(vocabulary, 1)),
        spellings=frozenset(w for w in table["abbreviations"] if " " not in w),
        asks=_by_first(words["words"]),
        asks_last=_listed(words["final"]),
        asks_nothing=_by_first(words["asks_nothing"]),
        wish=_listed(words["wish"]),
        about_bot=tuple(f" {plain(p)} " for p in raw["about_bot"]),
        bot_tasks=tuple(f" {plain(p)} " for p in raw["bot_tasks"]),
        bot_feelings=tuple(f" {plain(p)} {plain(f)} " for p in raw["feeling_subjects"] for f in raw["bot_feelings"]),
        waiting=tuple(f" {plain(p)} " for p in words["waiting"]),
    )


def _said(text: str) -> str:
    """The message standardised and spelled out, padded with spaces for whole-phrase matching."""
    return f" {' '.join(expand(plain(standard(text)).split()))} "


def vocabulary() -> frozenset[str]:
    """Every word of the small-talk phrases (plain)."""
    return _talk().vocabulary


def asks(text: str) -> bool:
    """Whether a message asks something (a "?", a question word, a request, a trouble word: [asks]).
    A word typed with diacritics is compared with the table's as it is ("giá" asks, "già" does not),
    one typed without them with the table's word without them, after abbreviations are spelled out. The
    ask word of a greeting, thanks or apology ("xin chào", "xin lỗi") or of a remark ("ai cũng mừng",
    "không ra khơi được") asks nothing: [asks] asks_nothing."""
    if "?" in text:
        return True
    talk = _talk()
    said: list[tuple[str, str, bool]] = []  # each word, without diacritics, and whether it was typed so
    for word in typed(standard(text)).split():
        bare = plain(word)
        if bare == word or bare in talk.spellings:  # "đc" is the abbreviation "dc"
            said += [(w, w, True) for w in expand(bare.split())]
        elif bare:
            said.append((word, bare, False))

    def same(at: int, word: _Word) -> bool:
        found, _, bare = said[at]
        return found == (word.plain if bare else word.typed)

    def found(table: dict[str, tuple[Phrase, ...]]) -> list[tuple[int, int]]:
        """Where the table's phrases are said: (first word, length)."""
        return [(i, len(phrase)) for i, (_, first, _) in enumerate(said) for phrase in table.get(first, ())
                if i + len(phrase) <= len(said) and all(same(i + j, w) for j, w in enumerate(phrase))]

    if said and any(same(len(said) - 1, w) for w in talk.asks_last):
        return True
    wish, then = talk.wish
    wished = [i for i in range(len(said)) if same(i, wish)]
    if wished and any(same(i, then) for i in range(wished[0] + 1, len(said))):
        return True
    idle = {i + j for i, size in found(talk.asks_nothing) for j in range(size)}
    return any(idle.isdisjoint(range(i, i + size)) for i, size in found(talk.asks))


def about_bot(text: str) -> bool:
    """Whether a question asks about the bot itself ("trời nóng quá, bot có thấy nóng không?"): the bot
    is its subject, and it asks for none of the bot's tasks ("bot có giúp tôi được không")."""
    talk = _talk()
    said = _said(text)
    if any(f in said for f in talk.bot_feelings):
        return True
    return any(p in said for p in talk.about_bot) and not any(t in said for t in talk.bot_tasks)


def asks_for_answer(text: str) -> bool:
    """Whether the message asks where an answer is ("sao ko ai tl z", "đợi mãi chưa thấy trả lời")."""
    said = _said(text)
    return any(p in said for p in _talk().waiting)


def is_small_talk(text: str, handbook_word: Callable[[str], bool] = lambda _: False,
                  topics: Callable[[list[str]], frozenset[str]] = frozenset) -> bool:
    """Only greetings, thanks, laughter, emoji, emoticons and the like (at least one of them, plus
    fillers such as "nha", "ạ"), and in a message of at most SHORT words, words that are none of the
    handbook's `topics` (the default takes every word for a topic). A mistyped word is read as the
    table's word it was meant to be, unless it is a word of the handbook ("khoa" is not "khoe")."""
    talk = _talk()
    words_only = talk.emoticons.sub(" ", text)
    said = words_only != text or any(unicodedata.category(ch) == "So" for ch in text)
    typed = expand(plain(standard(words_only)).split())
    # repaired, then spelled out again: "ddc" is "dc", which is "duoc"
    tokens = expand([w if handbook_word(w) else talk.repair.word(w) for w in typed])
    reading = _reading(tokens, talk, lambda _: False)
    if reading is None and len(typed) <= SHORT:
        # words let through only as typed: a small-talk word guessed by typo repair ("hnay" read as
        # "hay") says nothing
        named = topics(typed) - talk.vocabulary
        reading = _reading(typed, talk, lambda w: w not in named and w not in talk.asking)
    return reading is not None and (reading or said)


def _reading(tokens: list[str], talk: _Talk, no_topic: Callable[[str], bool]) -> bool | None:
    """How the whole message reads as small talk: None if some word is neither small talk nor a word
    `no_topic` lets through, else whether it says something (a phrase or laughter) rather than fillers
    and such words alone. Every way of cutting it into phrases is tried: "chúc bot ngủ ngon" is "chúc" +
    "bot" + "ngủ ngon", although "bot ngủ" is a phrase."""
    # best[i]: the best reading of tokens[:i] (None: none; False: fillers only; True: says something)
    best: list[bool | None] = [None] * (len(tokens) + 1)
    best[0] = False
    for i, token in enumerate(tokens):
        if best[i] is None:
            continue
        steps = [(i + n, True) for n in range(1, min(talk.longest, len(tokens) - i) + 1)
                 if " ".join(tokens[i : i + n]) in talk.phrases]
        if talk.laughter.fullmatch(token):
            steps.append((i + 1, True))
        if token in talk.fillers or no_topic(token):
            steps.append((i + 1, False))
        for end, says in steps:
            reading = bool(best[i]) or says
            if best[end] is None or (reading and not best[end]):
                best[end] = reading
    return best[-1]
