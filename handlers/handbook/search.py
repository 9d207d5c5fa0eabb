"""The handbook as the bot uses it: articles plus saved tech-team answers, and what to do with a
question — answer with the best article, offer the top three, or hand it to the tech team.

The raw top score alone cannot decide (off-topic questions can score as high as good ones), so the
decision also uses how much of the question the article covers and the margin over the runner-up.
Thresholds were set on tests/eval/questions.tsv with bench/handbook.py."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.handbook.articles import Article, load
from handlers.handbook.index import HandbookIndex, Hit
from storage.models import HandbookEntry

HAND_OFF_BELOW = 0.24  # top score under this: nothing in the handbook is about it
MIN_COVERAGE = 0.3  # the best article uses under 30 % of the question's topic words: off-topic
ANSWER_FROM = 0.30  # at or above this, with a clear margin, answer with the top article
ANSWER_MARGIN = 0.06


class Kind(StrEnum):
    ANSWER = "answer"
    OFFER = "offer"
    HANDOFF = "handoff"


@dataclass(frozen=True)
class Decision:
    kind: Kind
    hits: list[Hit]


def entry_article(entry: HandbookEntry) -> Article:
    return Article(id=f"hoi-dap-{entry.id}", title=entry.title, body=entry.body, questions=(entry.title,))


class Handbook:
    def __init__(self, articles: list[Article]) -> None:
        self._articles = list(articles)
        self.index = HandbookIndex(self._articles)
        self._by_id = {a.id: a for a in self._articles}

    @classmethod
    async def load(cls, session: AsyncSession) -> Handbook:
        entries = (await session.exec(select(HandbookEntry).order_by(HandbookEntry.id))).all()
        return cls(load() + [entry_article(e) for e in entries])

    def add(self, article: Article) -> None:
        """A new entry: the index is rebuilt (well under a second for the real handbook)."""
        self._articles.append(article)
        self.index = HandbookIndex(self._articles)
        self._by_id[article.id] = article

    def remove(self, article_id: str) -> None:
        """An entry taken out of the handbook: the index is rebuilt without it."""
        self._articles = [a for a in self._articles if a.id != article_id]
        self.index = HandbookIndex(self._articles)
        self._by_id.pop(article_id, None)

    def article(self, article_id: str) -> Article | None:
        return self._by_id.get(article_id)

    @property
    def articles(self) -> list[Article]:
        return list(self._articles)

    def decide(self, question: str) -> Decision:
        hits = self.index.search(question, limit=3)
        if not hits or hits[0].score < HAND_OFF_BELOW or hits[0].coverage < MIN_COVERAGE:
            return Decision(Kind.HANDOFF, hits)
        runner_up = hits[1].score if len(hits) > 1 else 0.0
        if hits[0].score >= ANSWER_FROM and hits[0].score - runner_up >= ANSWER_MARGIN:
            return Decision(Kind.ANSWER, hits)
        return Decision(Kind.OFFER, hits)
