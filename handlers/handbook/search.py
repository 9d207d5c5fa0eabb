"""The handbook as the bot uses it: articles plus saved tech-team answers, and what to do with a
question — a friendly hello for small talk, else answer with the best article, offer the top three,
or hand it to the tech team, as the fitted decision model (decision.py) says."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.handbook.articles import Article, load
from handlers.handbook.chitchat import is_small_talk
from handlers.handbook.decision import Kind, Model, shipped
from handlers.handbook.index import HandbookIndex, Hit
from storage.models import HandbookEntry

__all__ = ["Decision", "Handbook", "Kind", "entry_article"]


@dataclass(frozen=True)
class Decision:
    kind: Kind
    hits: list[Hit]


def entry_article(entry: HandbookEntry) -> Article:
    return Article(id=f"hoi-dap-{entry.id}", title=entry.title, body=entry.body, questions=(entry.title,))


class Handbook:
    def __init__(self, articles: list[Article], model: Model | None = None) -> None:
        self.model = model or shipped()
        self._articles = list(articles)
        self.index = HandbookIndex(self._articles)
        self._by_id = {a.id: a for a in self._articles}

    @classmethod
    async def load(cls, session: AsyncSession) -> Handbook:
        entries = (await session.exec(select(HandbookEntry).order_by(col(HandbookEntry.id)))).all()
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
        if is_small_talk(question, self.index.repair.knows, self.index.topic_words):
            return Decision(Kind.CHAT, [])
        lookup = self.index.search(question, limit=3)
        return Decision(self.model.kind(lookup), lookup.hits)
