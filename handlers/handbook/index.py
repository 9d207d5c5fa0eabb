"""The search index: TF-IDF over character 3–5-grams of diacritic-stripped text, n-grams running
across word boundaries (so "tien dien" and "tai vneid" stay apart once accents are gone), sublinear
term frequency, in three views (VIEWS): the whole article, each of its short phrases (title, synonyms,
sample questions, problems as residents describe them) on its own, and the whole article's topic words
and pairs of them. The ranking mixes the views by MIX.

Besides the ranking, a search reports what the decision model (decision.py) weighs: each hit's views,
its lead over the other articles, how many of the question's topic words it uses (in all its text, in
its title, synonyms, questions, problems and tags, and weighted by how rare each word is across
articles, with that weighted share's lead over the best other article), how many of the question's
pairs of neighbouring topic words it has, how well its closest phrase is matched word for word, and
whether the question names a service the handbook, or this article, does not cover, and its lead in
title/synonym/question/problem/tag coverage over the best other article (a neighbour that covers the
question as well is a reason to offer both rather than answer one); for the question, the share of its
topic words no article uses, the share of its neighbouring topic-word pairs no article has (a topical
phrase the handbook never speaks of, "luong huu", "bien so", even when each syllable alone is a
handbook word), and the share of its words as typed that are no handbook word (typos, and words the
handbook does not know, both of which make a match less certain)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.sparse import csc_matrix, csr_matrix

from handlers.handbook.articles import Article
from handlers.handbook.chitchat import about_bot, asks, vocabulary
from handlers.handbook.normalize import SYLLABLE, Repairer, expand, plain, stopwords, words

NGRAMS = (3, 4, 5)
# above this many stored entries in a query's columns (handbooks of hundreds of articles) scipy's C
# loops are faster than gathering them with numpy
GATHER_AT_MOST = 40_000
WEIGHTS = {"title": 3, "synonyms": 2, "questions": 2, "problems": 2, "tags": 2, "summary": 1, "body": 1}
VIEWS = ("characters, whole article", "characters, best phrase", "words, whole article")
# a named service's phrase of this many words or more is also found in another order, with at most
# LOOSE_SLACK other words among its own (Vietnamese often puts the object first: "thẻ BHYT hết hạn, gia hạn ở đâu")
LOOSE_FROM = 3
LOOSE_SLACK = 4
# how the views add up to the ranking score; bench/handbook.py --mix picks it inside the k-fold loop
MIX = np.array([1.0, 0.1, 0.5])
# a pair of neighbouring topic words ("dat kham", "tien dien") names a handbook topic when the core fields
# of at most this many articles have it: a pair most articles share ("dien thoai") names none
DISTINCT_PAIR = 3
# a message of at most this many words, each a topic word of the handbook, only names a topic (Lookup.bare)
BARE_AT_MOST = 2


def ngrams(text: str) -> Counter[str]:
    padded = f" {text} "
    return Counter(padded[i : i + n] for n in NGRAMS for i in range(len(padded) - n + 1))


def terms(text: str) -> Counter[str]:
    """The word view: topic words and pairs of neighbouring topic words ("mat khau", "tai khoan"), which
    keep apart the syllables that lose their meaning once accents are gone ("tai" alone is download,
    talent or again)."""
    kept = [w for w in text.split() if w not in stopwords()]
    return Counter(kept + [f"{a} {b}" for a, b in pairwise(kept)])


class _Vectors:
    """TF-IDF rows (L2-normalised) for a list of texts, and the same weighting for a query."""

    def __init__(self, texts: Sequence[str], features: Callable[[str], Counter[str]] = ngrams) -> None:
        counts = [features(t) for t in texts]
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

    def scores(self, features: Counter[str]) -> np.ndarray:
        """Cosine of each row with a query's features (made by the same `features` function)."""
        # one lookup a feature in a comprehension, the rest in numpy: this runs three times a question
        found = np.fromiter([self.features.get(gram, -1) for gram in features], int, len(features))
        known = found >= 0
        if not known.any():
            return np.zeros(self.matrix.shape[0])
        picked = found[known]
        counts = np.fromiter(features.values(), float, len(features))[known]
        q = (1 + np.log(counts)) * self.idf[picked]
        q /= np.linalg.norm(q)
        starts, ends = self.matrix.indptr[picked], self.matrix.indptr[picked + 1]
        lengths = ends - starts
        if lengths.sum() > GATHER_AT_MOST:
            return np.asarray(self.matrix[:, picked] @ q).ravel()
        # the picked columns' stored entries, gathered straight from the CSC arrays: for the few
        # thousand entries of a real handbook this beats scipy's fancy indexing several times over
        at = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        weights = self.matrix.data[at] * np.repeat(q, lengths)
        return np.bincount(self.matrix.indices[at], weights=weights, minlength=self.matrix.shape[0])


@dataclass(frozen=True)
class Hit:
    article: Article
    score: float
    coverage: float  # share of the question's topic words the article uses
    core: float = 0.0  # the same, counting only its title, synonyms, sample questions and tags
    views: tuple[float, ...] = ()  # its score in each view (VIEWS)
    lead: float = 0.0  # how far it is ahead of the best other article, averaged over the views
    agree: float = 0.0  # share of the views that rank it first
    overlap: float = 0.0  # best share of one of its phrases' topic words found in the question
    elsewhere: bool = False  # the question names a service the handbook lacks, or one this article says it lacks
    weighted: float = 0.0  # coverage with each topic word weighted by its rarity across articles (IDF)
    weighted_lead: float = 0.0  # how far that is ahead of the best other article's
    pairs: float = 0.0  # share of the question's neighbouring topic-word pairs ("mat khau") found in the article
    core_lead: float = 0.0  # its core coverage less the best other article's
    # the question's topic words (IDF-weighted share) that another hit's core fields use and this one's
    # do not, at most over the other hits: a question naming two neighbours' subjects ("đóng tiền điện
    # bằng Mobile Money") is theirs to share, so an offer of both beats answering one
    rival: float = 0.0


@dataclass(frozen=True)
class Lookup:
    query: str  # the repaired question
    topic: list[str]  # its words that carry a topic
    unknown: float  # share of the topic words no article uses
    hits: list[Hit]
    novel_pairs: float = 0.0  # share of the neighbouring topic-word pairs no article has
    unknown_typed: float = 0.0  # share of the topic words as typed (before typo repair) no article uses
    # whether the question asks something, names a service next to ours or a distinctive handbook topic:
    # without any of these, what the handbook cannot answer is a remark, not work for the tech team
    asks: bool = True
    # whether the bot itself is what it talks about ("bot ở đâu", "bot có buồn không"), asking for none of
    # its tasks: if it asks nothing else either, it is small talk, however well the article on the bot scores
    about_bot: bool = False
    # whether it names a service next to ours or a handbook thing no everyday word names ("mã otp", "vneid";
    # HandbookIndex.names_handbook): then it is about that, however chatty the words around it ("bot ngủ ngon
    # không lấy được mã otp"); a pair of words few articles have ("cà phê", "màn hình") asks, but may be chatted about
    names: bool = False
    # whether it has a name no article uses (HandbookIndex.names_unknown): a product or a licence class asks,
    # but a grandchild called "Bin" or a town abroad may be chatted about
    strange: bool = False
    # whether it asks an amount or a time ("được bao nhiêu", "mất bao lâu"): most such questions in the
    # evaluation set are about a service next to ours (a benefit's level, a platform's fee), not a how-to
    amount: bool = False
    # whether it is nothing but a word or two the handbook's titles, synonyms, questions or tags use ("vneid",
    # "mã qr", "zalo"): a topic named, not a question the tech team could answer
    bare: bool = False


class HandbookIndex:
    def __init__(self, articles: Sequence[Article]) -> None:
        self.articles = list(articles)
        frequency: Counter[str] = Counter()  # how many articles use each word
        documents: list[str] = []
        phrases: list[str] = []
        owners: list[int] = []
        self._words: list[frozenset[str]] = []
        self._core: list[frozenset[str]] = []
        self._text: list[str] = []  # each article's plain text, for phrase look-ups
        self._phrase_words: list[list[frozenset[str]]] = []
        self._not_covered: list[list[str]] = []
        self._topic_text: list[str] = []  # each article's plain text without stopwords, for word pairs
        self._known_pairs: set[str] = set()  # every pair of neighbouring topic words of any article
        core_pairs: Counter[str] = Counter()  # how many articles' core fields have each such pair
        for n, article in enumerate(self.articles):
            fields = {
                "title": [article.title],
                "synonyms": list(article.synonyms),
                "questions": list(article.questions),
                "problems": list(article.problems),
                "tags": list(article.tags),
                "summary": [article.summary],
                "body": [article.body],
            }
            plain_fields = {k: [plain(t) for t in v] for k, v in fields.items()}
            # the words as written and as abbreviations spell them out: a question's "mobile money" is searched
            # as "mobilemoney", a word the article then uses too (else it counted as unknown to the handbook)
            vocabulary = list(dict.fromkeys(w for texts in plain_fields.values() for t in texts
                                            for w in [*t.split(), *expand(t.split())]))
            frequency.update(vocabulary)
            self._words.append(frozenset(vocabulary))
            self._core.append(frozenset(w for k in ("title", "synonyms", "questions", "problems", "tags")
                                        for t in plain_fields[k] for w in expand(t.split())))
            self._text.append(" " + " ".join(t for texts in plain_fields.values() for t in texts) + " ")
            self._topic_text.append(" " + " ".join(w for w in self._text[-1].split() if w not in stopwords()) + " ")
            own_pairs: dict[str, None] = {}
            for field, texts in plain_fields.items():
                for t in texts:
                    kept = [w for w in expand(t.split()) if w not in stopwords()]
                    self._known_pairs.update(f"{a} {b}" for a, b in pairwise(kept))
                    if field not in ("summary", "body"):
                        own_pairs.update(dict.fromkeys(f"{a} {b}" for a, b in pairwise(kept)))
            core_pairs.update(list(own_pairs))
            self._not_covered.append([phrase(p) for p in article.not_covered])
            documents.append(" | ".join(t for k, texts in plain_fields.items() for t in texts * WEIGHTS[k]))
            own = plain_fields["title"] + plain_fields["synonyms"] + plain_fields["questions"] + plain_fields["problems"]
            self._phrase_words.append([frozenset(t.split()) - stopwords() for t in own])
            for text in own:
                phrases.append(text)
                owners.append(n)
        named = [*words().elsewhere, *(p for ps in self._not_covered for p in ps)]  # what we do not cover
        self.repair = Repairer(frequency, [*(w for p in named for w in p.split()), *words().peoples])
        self._distinct_pairs = frozenset(p for p, n in core_pairs.items() if n <= DISTINCT_PAIR)
        # the longest phrase, in words, that a question can name as not covered
        self._longest = max(p.count(" ") + 1 for p in named)
        # never one with a word that is also a particle without its accents ("thi" is "thì", "lam" "làm",
        # "dang" "đang"): found apart, such a word belongs to the sentence, not to the service ("đổi giấy
        # phép lái xe xong thì ..." names no "thi giấy phép lái xe", "căn cước, mần răng" no "làm căn cước")
        self._loose = [(p, frozenset(p.split()), p.count(" ") + 1) for p in dict.fromkeys(named)
                       if p.count(" ") + 1 >= LOOSE_FROM and stopwords().isdisjoint(p.split())]
        # a word's weight in the weighted coverage: IDF over articles, an unknown word weighs the most
        self._rarest = math.log(1 + len(self.articles)) + 1
        self._idf = {w: math.log((1 + len(self.articles)) / (1 + df)) + 1 for w, df in frequency.items()}
        using: dict[str, list[int]] = {}
        for n, article_words in enumerate(self._words):
            for w in sorted(article_words):
                using.setdefault(w, []).append(n)
        self._using = {w: np.asarray(ns) for w, ns in using.items()}
        core_using: dict[str, list[int]] = {}
        for n, article_words in enumerate(self._core):
            for w in sorted(article_words):
                core_using.setdefault(w, []).append(n)
        self._core_using = {w: np.asarray(ns) for w, ns in core_using.items()}
        self._documents = _Vectors(documents)
        self._phrases = _Vectors(phrases)
        self._word_documents = _Vectors(documents, terms)
        self._owner = np.asarray(owners)
        self._id_rank = np.argsort(np.argsort([a.id for a in self.articles], kind="stable"))

    def _weighted_coverage(self, topic: list[str]) -> np.ndarray:
        """For each article, the IDF-weighted share of the question's topic words it uses."""
        covered = np.zeros(len(self.articles))
        total = 0.0
        for w in topic:
            weight = self._idf.get(w, self._rarest)
            total += weight
            if w in self._using:
                covered[self._using[w]] += weight
        return covered / total if total else covered

    def topic_words(self, tokens: list[str]) -> frozenset[str]:
        """The words of a question (as typed, plain) that may name something the handbook is about: a word
        of an article's title, synonyms, sample questions, problems or tags ("khoa", "wifi"), a word of a
        service next to ours the [elsewhere] list names ("luong huu"), or a word typo repair would change
        ("wifj": it may be a topic mistyped); never a stopword, which every article's phrases use ("nay",
        "qua", "di") and which names nothing."""
        said = f" {' '.join(tokens)} "
        named = {w for p in words().elsewhere if f" {p} " in said for w in p.split()}
        return frozenset(w for w in tokens if w in named or (w not in stopwords() and (
            w in self._core_using or self.repair.word(w) != w)))

    def names_topic(self, topic: list[str]) -> bool:
        """Whether a question's topic words (repaired) name something distinctive of the handbook or no
        everyday word (`names_thing`), or a pair of neighbouring words few articles' core fields have ("dat
        kham"). One shared syllable ("nuoc" of "nước ngập") or a pair with a small-talk word ("bot tra loi")
        names nothing."""
        return self.names_thing(topic) or self._names_pair(topic)

    def names_thing(self, topic: list[str]) -> bool:
        """Whether a topic word is a name no Vietnamese syllable spells: one of the articles' core fields
        ("vneid", "qr", `names_handbook`) or one no article uses ("ure", "a1": a product, a licence class,
        `names_unknown`). Unlike a pair ("cà phê", "thành phố", "màn hình" are pairs few articles have), such
        a word is never an everyday one."""
        return self.names_handbook(topic) or self.names_unknown(topic)

    def names_handbook(self, topic: list[str]) -> bool:
        return any(_a_name(w) and w in self._core_using for w in topic)

    def names_unknown(self, topic: list[str]) -> bool:
        """A name no article uses: a product, a licence class, but also a grandchild called "Bin"."""
        chat = vocabulary()
        return any(_a_name(w) and w not in self._core_using and not self.repair.knows(w) and w not in chat
                   for w in topic)

    def _names_pair(self, topic: list[str]) -> bool:
        chat = vocabulary()
        return any(f"{a} {b}" in self._distinct_pairs for a, b in pairwise(topic) if a not in chat and b not in chat)

    def _rival(self, topic: list[str], own: int, other: int) -> float:
        """The IDF-weighted share of the topic words article `other`'s core fields use and `own`'s do not."""
        total = sum(self._idf.get(w, self._rarest) for w in topic)
        missed = sum(self._idf.get(w, self._rarest) for w in topic if w in self._core[other] and w not in self._core[own])
        return missed / total if total else 0.0

    def _core_coverage(self, topic: list[str]) -> np.ndarray:
        """For each article, the share of the question's topic words its core fields use (Hit.core)."""
        covered = np.zeros(len(self.articles))
        for w in topic:
            if w in self._core_using:
                covered[self._core_using[w]] += 1
        return covered / len(topic) if topic else covered

    def views(self, query: str) -> np.ndarray:
        """Each article's score in each view of a repaired question, one row a view (VIEWS)."""
        out = np.zeros((len(VIEWS), len(self.articles)))
        grams = ngrams(query)
        out[0] = self._documents.scores(grams)
        np.maximum.at(out[1], self._owner, self._phrases.scores(grams))
        out[2] = self._word_documents.scores(terms(query))
        return out

    def search(self, question: str, limit: int = 3) -> Lookup:
        spelled = self.repair.spelled(question)
        query = self.repair.repaired(spelled)
        topic = [w for w in query.split() if w not in stopwords()]
        unknown = sum(1 for w in topic if not self.repair.knows(w)) / len(topic) if topic else 0.0
        typed = [w for w in spelled if w not in stopwords()]
        unknown_typed = sum(1 for w in typed if not self.repair.knows(w)) / len(typed) if typed else 0.0
        pairs = [f"{a} {b}" for a, b in pairwise(topic)]
        novel_pairs = sum(1 for p in pairs if p not in self._known_pairs) / len(pairs) if pairs else 0.0
        if not query:
            return self._lookup(question, query, topic, unknown, [], novel_pairs, unknown_typed)
        views = self.views(query)
        scores = MIX @ views
        top = np.lexsort((self._id_rank, -scores))[:limit]  # higher score first; equal scores by id
        # as typed, and after typo repair
        said = _phrases_in(spelled, self._longest) | _phrases_in(query.split(), self._longest)
        tokens = query.split()
        present = frozenset(tokens)
        said |= {p for p, ws, size in self._loose if ws <= present and _loosely_in(ws, size, tokens)}
        named = [p for p in words().elsewhere if p in said]
        asked = frozenset(topic)
        ordered = np.sort(views, axis=1)
        first, second = ordered[:, -1:], ordered[:, -2:-1]
        ahead = views >= first
        lead = (views - np.where(ahead, second, first)).mean(axis=0)  # over the best other article, per view
        agree = ahead.mean(axis=0)
        weighted = self._weighted_coverage(topic)
        best_weighted, next_weighted = np.sort(weighted)[-1], np.sort(weighted)[-2] if len(weighted) > 1 else 0.0
        core = self._core_coverage(topic)
        best_core, next_core = np.sort(core)[-1], np.sort(core)[-2] if len(core) > 1 else 0.0
        shown = [int(i) for i in top if scores[i] > 0]
        hits = []
        for i in shown:
            own = views[:, i]
            hits.append(Hit(
                self.articles[i],
                float(scores[i]),
                _coverage(topic, self._words[i]),
                core=_coverage(topic, self._core[i]),
                views=tuple(float(v) for v in own),
                lead=float(lead[i]),
                agree=float(agree[i]),
                overlap=max((len(p & asked) / len(p) for p in self._phrase_words[i] if p), default=0.0),
                elsewhere=any(f" {p} " not in self._text[i] for p in named)
                or any(p in said for p in self._not_covered[i]),
                weighted=float(weighted[i]),
                weighted_lead=float(weighted[i] - (next_weighted if weighted[i] >= best_weighted else best_weighted)),
                pairs=sum(1 for p in pairs if f" {p} " in self._topic_text[i]) / len(pairs) if pairs else 1.0,
                core_lead=float(core[i] - (next_core if core[i] >= best_core else best_core)),
                rival=max((self._rival(topic, i, j) for j in shown if j != i), default=0.0),
            ))
        return self._lookup(question, query, topic, unknown, hits, novel_pairs, unknown_typed)

    def _lookup(self, question: str, query: str, topic: list[str], unknown: float, hits: list[Hit],
                novel_pairs: float, unknown_typed: float) -> Lookup:
        """The Lookup, with whether it asks (a question about the bot itself asks nothing of the handbook or
        the tech team) and whether it is about the bot."""
        about = about_bot(question)
        elsewhere = any(h.elsewhere for h in hits)
        names = elsewhere or self.names_handbook(topic)
        strange = self.names_unknown(topic)
        asked = (asks(question) and not about) or names or strange or self._names_pair(topic)
        padded = f" {query} "
        amount = any(f" {p} " in padded for p in words().amounts)
        bare = (0 < len(topic) == len(query.split()) <= BARE_AT_MOST and not elsewhere
                and all(w in self._core_using for w in topic))
        return Lookup(query, topic, unknown, hits, novel_pairs, unknown_typed, asked, about, names, strange, amount,
                      bare)


def _a_name(word: str) -> bool:
    """Two characters or more, no Vietnamese syllable and not a number: "vneid", "a1", "bin"."""
    return len(word) > 1 and not SYLLABLE.fullmatch(word) and not word.isdigit()


def phrase(text: str) -> str:
    """A phrase of the word lists or an article's front matter as the search compares it."""
    return " ".join(expand(plain(text).split()))


def _loosely_in(phrase: frozenset[str], size: int, tokens: list[str]) -> bool:
    """A phrase of `size` words, all of them in the question, said in another order or with a few words
    between: "màn hình bị vỡ thì thay ở đâu" names "thay màn hình"."""
    width = size + LOOSE_SLACK
    return any(phrase <= set(tokens[start : start + width]) for start in range(max(1, len(tokens) - width + 1)))


def _phrases_in(tokens: list[str], longest: int) -> set[str]:
    """Every run of up to `longest` words of a question: the phrases it can be said to name."""
    return {" ".join(tokens[i:j]) for i in range(len(tokens)) for j in range(i + 1, min(i + longest, len(tokens)) + 1)}


def _coverage(topic: list[str], words: frozenset[str]) -> float:
    if not topic:
        return 0.0
    return sum(1 for w in topic if w in words) / len(topic)
