"""The search index: TF-IDF over character 3–5-grams of diacritic-stripped text, n-grams running
across word boundaries (so "tien dien" and "tai vneid" stay apart once accents are gone), sublinear
term frequency. Two views of each article: the whole of it, and each of its short phrases (title,
synonyms, sample questions) on its own, so a question close to one sample question scores high.

Besides the ranking, a search reports what the decision model (decision.py) weighs: each hit's two
views, how many of the question's topic words it uses, how well its closest phrase is matched word
for word, and for the question, the share of its topic words no article uses and whether it names a
service the handbook does not cover."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csc_matrix, csr_matrix

from handlers.handbook.articles import Article
from handlers.handbook.normalize import Repairer, plain, stopwords, words

NGRAMS = (3, 4, 5)
WEIGHTS = {"title": 3, "synonyms": 2, "questions": 2, "tags": 2, "summary": 1, "body": 1}


def ngrams(text: str) -> Counter[str]:
    padded = f" {text} "
    return Counter(padded[i : i + n] for n in NGRAMS for i in range(len(padded) - n + 1))


class _Vectors:
    """TF-IDF rows (L2-normalised) for a list of texts, and the same weighting for a query."""

    def __init__(self, texts: Sequence[str]) -> None:
        counts = [ngrams(t) for t in texts]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        self.features = {gram: i for i, gram in enumerate(df)}
        n = len(texts)
        self.idf = np.log((1 + n) / (1 + np.fromiter(df.values(), float, len(df)))) + 1
        rows = np.repeat(np.arange(n), [len(c) for c in counts])
        cols = np.fromiter((self.features[g] for c in counts for g in c), int, len(rows))
        tf = np.fromiter((v for c in counts for v in c.values()), float, len(rows))
        matrix = csr_matrix(((1 + np.log(tf)) * self.idf[cols], (rows, cols)), shape=(n, len(self.features)))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1
        # columns are what a query selects: CSC makes picking its few n-grams cheap at any size
        self.matrix = csc_matrix(matrix.multiply(1 / norms[:, None]))

    def scores(self, text: str) -> np.ndarray:
        cols, vals = [], []
        for gram, tf in ngrams(text).items():
            i = self.features.get(gram)
            if i is not None:
                cols.append(i)
                vals.append((1 + math.log(tf)) * self.idf[i])
        if not cols:
            return np.zeros(self.matrix.shape[0])
        q = np.asarray(vals)
        q /= np.linalg.norm(q)
        return np.asarray(self.matrix[:, cols] @ q).ravel()


@dataclass(frozen=True)
class Hit:
    article: Article
    score: float
    coverage: float  # share of the question's topic words the article uses
    whole: float = 0.0  # the whole-article view's score
    phrase: float = 0.0  # the best single phrase's score
    overlap: float = 0.0  # best share of one of its phrases' topic words found in the question
    elsewhere: bool = False  # the question names a service the handbook lacks and this article does not


@dataclass(frozen=True)
class Lookup:
    query: str  # the repaired question
    topic: list[str]  # its words that carry a topic
    unknown: float  # share of the topic words no article uses
    hits: list[Hit]


class HandbookIndex:
    def __init__(self, articles: Sequence[Article]) -> None:
        self.articles = list(articles)
        frequency: Counter[str] = Counter()  # how many articles use each word
        documents: list[str] = []
        phrases: list[str] = []
        owners: list[int] = []
        self._words: list[frozenset[str]] = []
        self._text: list[str] = []  # each article's plain text, for phrase look-ups
        self._phrase_words: list[list[frozenset[str]]] = []
        for n, article in enumerate(self.articles):
            fields = {
                "title": [article.title],
                "synonyms": list(article.synonyms),
                "questions": list(article.questions),
                "tags": list(article.tags),
                "summary": [article.summary],
                "body": [article.body],
            }
            plain_fields = {k: [plain(t) for t in v] for k, v in fields.items()}
            words = list(dict.fromkeys(w for texts in plain_fields.values() for t in texts for w in t.split()))
            frequency.update(words)
            self._words.append(frozenset(words))
            self._text.append(" " + " ".join(t for texts in plain_fields.values() for t in texts) + " ")
            documents.append(" | ".join(t for k, texts in plain_fields.items() for t in texts * WEIGHTS[k]))
            own = plain_fields["title"] + plain_fields["synonyms"] + plain_fields["questions"]
            self._phrase_words.append([frozenset(t.split()) - stopwords() for t in own])
            for text in own:
                phrases.append(text)
                owners.append(n)
        self.repair = Repairer(frequency)
        self._documents = _Vectors(documents)
        self._phrases = _Vectors(phrases)
        self._owner = np.asarray(owners)
        self._id_rank = np.argsort(np.argsort([a.id for a in self.articles], kind="stable"))

    def search(self, question: str, limit: int = 3) -> Lookup:
        query = self.repair.text(question)
        topic = [w for w in query.split() if w not in stopwords()]
        unknown = sum(1 for w in topic if not self.repair.knows(w)) / len(topic) if topic else 0.0
        if not query:
            return Lookup(query, topic, unknown, [])
        whole = self._documents.scores(query)
        best_phrase = np.zeros(len(self.articles))
        np.maximum.at(best_phrase, self._owner, self._phrases.scores(query))
        scores = 0.5 * whole + 0.5 * best_phrase
        top = np.lexsort((self._id_rank, -scores))[:limit]  # higher score first; equal scores by id
        named = [p for p in words().elsewhere if f" {p} " in f" {query} "]
        asked = frozenset(topic)
        hits = [
            Hit(
                self.articles[i],
                float(scores[i]),
                _coverage(topic, self._words[i]),
                whole=float(whole[i]),
                phrase=float(best_phrase[i]),
                overlap=max((len(p & asked) / len(p) for p in self._phrase_words[i] if p), default=0.0),
                elsewhere=any(f" {p} " not in self._text[i] for p in named),
            )
            for i in top
            if scores[i] > 0
        ]
        return Lookup(query, topic, unknown, hits)


def _coverage(topic: list[str], words: frozenset[str]) -> float:
    if not topic:
        return 0.0
    return sum(1 for w in topic if w in words) / len(topic)
