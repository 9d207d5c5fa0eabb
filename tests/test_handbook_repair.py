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


@pytest.mark.parametrize(("heard", "name"), [
    ("tai vi en e i đi về máy", "vneid"),  # letters read aloud, English names
    ("vê en e i đê bị khóa", "vneid"),  # Vietnamese names
    ("tra cứu vê ét ét ai đi", "vssid"),
    ("mobai mani nạp tiền", "mobilemoney"),  # a brand written as heard, without diacritics
    ("mô bai mo ni là gì", "mobilemoney"),
    ("phê búc bị hack", "facebook"),
    ("bán hàng trên sô pi", "shopee"),
    ("mật khẩu wai fai nhà văn hóa", "wifi"),
    ("quét kiu a trả tiền", "qr"),
])
def test_a_name_written_as_heard_is_read_as_the_handbook_spells_it(index: HandbookIndex, heard: str, name: str) -> None:
    assert name in index.repair.text(heard).split()


def test_letter_names_are_words_unless_a_run_of_them_spells_a_handbook_name(index: HandbookIndex) -> None:
    # "đi", "ai", "em" are also letters' names; only a run of three or more spelling a name is joined
    assert index.repair.text("em đi ai hỏi") == "em di ai hoi"
    assert index.repair.text("mô mô") == "momo"
    assert index.repair.text("ở mô") == "o dau"  # "mô" alone is still "đâu"


def test_a_name_an_abbreviation_spells_out_is_a_word_the_handbook_knows(index: HandbookIndex) -> None:
    # "mobile money" is searched as "mobilemoney"; the article's own "Mobile Money" must count as that word,
    # or every question naming the service looked as if it named nothing the handbook knows
    assert index.search("mobile money la gi").unknown == 0.0


def test_a_southern_particle_inside_a_word_stays_that_word(index: HandbookIndex) -> None:
    # "dị" is "vậy" in the south, but "dị ứng" is an allergy: read as "vậy ứng", the drug-allergy question
    # lost its topic
    assert "di ung" in index.search("xem thuốc bị dị ứng ở đâu").query
    assert index.search("sao dị").query == "sao vay"
