"""Query repair (handlers/handbook/normalize.py) on the real handbook's vocabulary: how residents
really type, read as the words the articles use."""

from __future__ import annotations

import pytest

from handlers.handbook.articles import load
from handlers.handbook.index import HandbookIndex
from handlers.handbook.search import Handbook, Kind


@pytest.fixture(scope="module")
def index() -> HandbookIndex:
    return HandbookIndex(load())


@pytest.mark.parametrize(("typed", "read"), [
    ("dangkyvneid", "dang ky vneid"),  # words typed together
    ("lm vneid mức2 ở đâu", "lam vneid muc 2 o dau"),  # a number typed onto its word, chat shorthand
    ("tra dia chj so", "tra dia chi so"),  # a j where no tone mark can be is an i
    ("wifj nvh", "wifi nha van hoa"),
    ("chao buoi sag", "chao buoi sang"),  # no syllable ends in a bare g
    ("có ng gọi xin mã OTP", "co nguoi goi xin ma otp"),  # spelled out once, not "ma ma otp"
    ("tải app trên ch play", "tai ung dung tren ch play"),
])
def test_typing_accidents_and_shorthand_are_read_as_the_handbook_words(index: HandbookIndex, typed: str,
                                                                      read: str) -> None:
    assert index.repair.text(typed) == read


def test_a_single_syllable_is_never_cut_into_words_and_spelling_out_twice_changes_nothing(index: HandbookIndex) -> None:
    assert "xu ong" not in index.repair.text("nhan vien xuong thu tien")
    once = index.repair.text("quên mã OTP")
    assert index.repair.text(once) == once


def test_words_typed_together_get_their_article_directly() -> None:
    decision = Handbook(load()).decide("dangkyvneid")
    assert decision.kind is Kind.ANSWER
    assert decision.hits[0].article.id == "vneid-cai-dat"


def test_particles_and_regional_question_words_are_no_topic_the_article_must_have(index: HandbookIndex) -> None:
    # "hen", "hoài", "mần sao" (typed "man sao") ask or soften; counted as topic words, they lowered how much
    # of the question the right article covers
    assert index.search("ma tui muon cai vneid ma hok bit man sao hen").topic == ["cai", "vneid"]
    assert index.search("tui quên mật khẩu zalo hoài, giờ mần răng").topic == ["quen", "mat", "khau", "zalo"]


def test_a_word_that_is_a_syllable_of_its_own_is_not_taken_for_a_typo(index: HandbookIndex) -> None:
    # "tiêu" (pepper) typed without accents is one letter from the handbook's "tien": reading it so invented a topic
    assert index.repair.text("ban hat tieu tren shopee") == "ban hat tieu tren shopee"
    assert index.repair.text("ban gao tren sopee") == "ban gao tren shopee"  # no syllable: still repaired
