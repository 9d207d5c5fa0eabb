"""The official list of communes, wards and special zones after the 2025 reform (34 provinces, 3,321
units, with the statistics office's codes) from the `vietnam-provinces` package, and finding one by
the name an operator types: with or without diacritics, any case, "xã"/"phường"/"đặc khu" optional."""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rapidfuzz import fuzz, process

from handlers.handbook.normalize import plain
from handlers.numbers import whole_number

FORMER_PROVINCES = Path(__file__).resolve().parent / "former_provinces.toml"
CODE_DIGITS = 5  # the statistics office writes commune codes with 5 digits, leading zeros kept
CLOSEST = 3  # suggestions when nothing matches
SEARCH_LIMIT = 10
SEARCH_CUTOFF = 80.0
_PROVINCE_PREFIXES = ("thanh pho ", "tp ", "tinh ")


@dataclass(frozen=True)
class Official:
    """One commune-level unit of the official list."""

    code: int
    name: str  # as the list writes it: "Xã Gia Phú"
    kind: str  # "xã", "phường" or "đặc khu"
    short: str  # the name without its kind: "Gia Phú"
    province: str  # "Lào Cai", "Thành phố Hà Nội"
    key: str  # the name without its kind, lower case, no diacritics: "gia phu"

    @property
    def official_code(self) -> str:
        return f"{self.code:0{CODE_DIGITS}d}"

    @property
    def place_code(self) -> str:
        """The bot's place code: the kind in ASCII and the official code, e.g. XA-02923. A bare
        number would look like a menu choice or a household code in chat, and spreadsheets drop its
        leading zero; the prefix also keeps the XA-… form the other commune codes have."""
        return f"{plain(self.kind).replace(' ', '').upper()}-{self.official_code}"


@dataclass(frozen=True)
class Lookup:
    """`found`: the units the name denotes (one is the answer; several must be told apart).
    `closest`: when none is found, what was probably meant."""

    found: tuple[Official, ...]
    closest: tuple[Official, ...] = ()
    province: str | None = None  # as the list spells it, when one was given


class UnknownProvince(LookupError):
    def __init__(self, closest: tuple[str, ...]) -> None:
        super().__init__("unknown province")
        self.closest = closest


@cache
def officials() -> tuple[Official, ...]:
    """The whole list, by code. Loaded on first use: the package's table is a large module that
    neither `langso run` nor any other command should pay for at start-up."""
    from vietnam_provinces import Province, Ward

    provinces = {p.code: p.name for p in Province.iter_all()}
    units = []
    for ward in Ward.iter_all():
        kind = ward.division_type.value
        short = ward.name[len(kind) + 1:] if ward.name.lower().startswith(kind + " ") else ward.name
        units.append(Official(int(ward.code), ward.name, kind, short, provinces[ward.province_code], plain(short)))
    return tuple(sorted(units, key=lambda unit: unit.code))


@cache
def _kinds() -> tuple[tuple[str, str], ...]:
    """(plain kind + space, kind), longest first so that "dac khu " is tried as a whole."""
    kinds = {unit.kind for unit in officials()}
    return tuple(sorted(((plain(kind) + " ", kind) for kind in kinds), key=lambda pair: (-len(pair[0]), pair[0])))


def _split_kind(text: str) -> tuple[str | None, str, str]:
    """("xã", "gia phu", "gia phú") from "Xã Gia Phú": the kind if written, the rest without
    diacritics, and the rest as typed (lower case)."""
    key, typed = plain(text), _typed(text)
    for prefix, kind in _kinds():
        if key.startswith(prefix):
            words = len(prefix.split())
            return kind, key[len(prefix):], " ".join(typed.split()[words:])
    return None, key, typed


def _typed(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def _province_key(name: str) -> str:
    key = plain(name)
    for prefix in _PROVINCE_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


@cache
def _provinces() -> dict[str, str]:
    """Plain key -> the list's spelling, for today's provinces and the former ones merged into them."""
    today = {_province_key(unit.province): unit.province for unit in officials()}
    former = tomllib.loads(FORMER_PROVINCES.read_text(encoding="utf-8"))
    return {_province_key(old): today[_province_key(new)] for old, new in sorted(former.items())} | today


def province_named(name: str) -> str:
    """The list's spelling of a province ("lao cai", "Tỉnh Lào Cai", "TP. Hồ Chí Minh"); a former
    province ("Yên Bái") gives the one its communes belong to now."""
    by_key = _provinces()
    key = _province_key(name)
    if key in by_key:
        return by_key[key]
    ranked = process.extract(key, sorted(by_key), scorer=fuzz.WRatio, limit=None)
    ranked.sort(key=lambda hit: (-hit[1], hit[0]))
    closest = dict.fromkeys(by_key[hit[0]] for hit in ranked)  # several keys may name one province
    raise UnknownProvince(tuple(closest)[:CLOSEST])


def find(name: str, province: str | None = None) -> Lookup:
    """The units called `name` (or with that official code), in `province` when given."""
    in_province = province_named(province) if province else None
    pool = [unit for unit in officials() if in_province in (None, unit.province)]
    code = whole_number(name, CODE_DIGITS)
    if code is not None:
        return Lookup(tuple(unit for unit in pool if unit.code == code), province=in_province)
    kind, key, typed = _split_kind(name)
    found = [unit for unit in pool if unit.key == key and kind in (None, unit.kind)]
    # "Gia Phú" and "Gia Phù" are both "gia phu": diacritics, when typed, tell them apart
    exact = [unit for unit in found if unit.short.lower() == typed]
    if exact or found:
        return Lookup(tuple(exact or found), province=in_province)
    # the same name with another kind or in another province is the likeliest slip
    same_name = tuple(unit for unit in officials() if unit.key == key)
    return Lookup((), same_name or tuple(unit for unit, _ in _ranked(name, pool)[:CLOSEST]), in_province)


def search(text: str, province: str | None = None) -> list[tuple[Official, float]]:
    """Units whose name resembles `text`, best first (then by code), at most SEARCH_LIMIT."""
    in_province = province_named(province) if province else None
    pool = [unit for unit in officials() if in_province in (None, unit.province)]
    kind, _, _ = _split_kind(text)
    pool = [unit for unit in pool if kind in (None, unit.kind)]
    return [hit for hit in _ranked(text, pool) if hit[1] >= SEARCH_CUTOFF][:SEARCH_LIMIT]


def _ranked(text: str, pool: list[Official]) -> list[tuple[Official, float]]:
    """`pool` scored against `text` without diacritics; when the text carries diacritics, the score
    with them counts half, so "Gia Phú" ranks Xã Gia Phú above Xã Gia Phù."""
    _, key, typed = _split_kind(text)
    scores = process.cdist([key], [unit.key for unit in pool], scorer=fuzz.WRatio)[0]
    if not typed.isascii():
        scores = (scores + process.cdist([typed], [unit.short.lower() for unit in pool], scorer=fuzz.WRatio)[0]) / 2
    hits = [(unit, float(score)) for unit, score in zip(pool, scores, strict=True)]
    hits.sort(key=lambda hit: (-hit[1], hit[0].code))
    return hits
