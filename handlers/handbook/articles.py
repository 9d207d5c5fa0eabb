"""Handbook articles: markdown files with TOML front matter in messages/handbook/, plus entries the
tech team saved from good answers (stored in the database)."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

HANDBOOK = Path(__file__).resolve().parents[2] / "messages" / "handbook"
_SECTION = re.compile(r"^##\s+(.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    summary: str = ""
    body: str = ""
    tags: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    questions: tuple[str, ...] = field(default=(), repr=False)
    # situations that lead to the article, as residents describe them without naming the service
    # ("ô vuông đen trắng quét trả tiền"): indexed like the sample questions
    problems: tuple[str, ...] = field(default=(), repr=False)
    # services next to this article's that it does not cover ("đổi bằng lái" for VNeID): a question
    # naming one is not answered with this article
    not_covered: tuple[str, ...] = field(default=(), repr=False)

    @property
    def sections(self) -> list[tuple[str, str]]:
        """(heading, text) pairs of the body; the text before the first heading has heading ""."""
        parts = _SECTION.split(self.body)
        found = [("", parts[0].strip())] if parts[0].strip() else []
        found += [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
        return found


class ArticleError(ValueError):
    pass


def parse(text: str, source: str = "") -> Article:
    text = unicodedata.normalize("NFC", text)
    _, sep, rest = text.partition("+++")
    front, sep2, body = rest.partition("+++")
    if not sep or not sep2:
        raise ArticleError(f"{source}: thiếu phần đầu +++ … +++")
    try:
        meta = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        raise ArticleError(f"{source}: phần đầu không phải TOML hợp lệ ({exc})") from None
    for key in ("id", "title"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise ArticleError(f"{source}: thiếu {key}")
    return Article(
        id=meta["id"],
        title=meta["title"],
        summary=meta.get("summary", ""),
        body=body.strip(),
        tags=tuple(meta.get("tags", ())),
        synonyms=tuple(meta.get("synonyms", ())),
        questions=tuple(meta.get("questions", ())),
        problems=tuple(meta.get("problems", ())),
        not_covered=tuple(meta.get("not_covered", ())),
    )


def load(folder: Path = HANDBOOK) -> list[Article]:
    return [parse(path.read_text(encoding="utf-8"), path.name) for path in sorted(folder.glob("*.md"))]
