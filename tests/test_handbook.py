"""Handbook answers through the chat: answer, offer, hand-off to the tech team, the team's reply
relayed back, a saved answer found by the next search, and feedback stored."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from sqlmodel import select

from handlers.handbook.articles import Article, load
from handlers.handbook.normalize import Repairer
from handlers.handbook.search import Handbook, Kind
from storage.models import HandbookQuestion, QuestionStatus
from tests.cli_helpers import langso
from tests.harness import RESIDENT, TECH, VILLAGE_GROUPS, Harness


def test_the_search_reads_questions_as_people_type_them() -> None:
    handbook = Handbook(load())
    for typed in ("Cách cài VNeID", "cach cai vneid", "caif ddawtj vneidd", "tai app dinh danh dien tu"):
        decision = handbook.decide(typed)
        assert decision.hits[0].article.id == "vneid-cai-dat", typed
    assert handbook.decide("quen mk vneid").hits[0].article.id == "vneid-quen-mat-khau"
    assert handbook.decide("giá phân bón hôm nay bao nhiêu").kind is Kind.HANDOFF


def test_a_typo_between_two_handbook_words_goes_to_the_one_more_articles_use_then_the_first_alphabetically() -> None:
    # "hoal" (no syllable) is one edit from each; the choice must not depend on which process is asked
    assert Repairer({"hoa": 1, "hoai": 4, "hoan": 4}).word("hoal") == "hoai"
    assert Repairer({"hoai": 1, "hoan": 5, "hoa": 4}).word("hoal") == "hoan"



def test_a_mistyped_pension_question_is_handed_off_not_answered_with_the_welfare_article() -> None:
    # "huu" of "lương hưu" was repaired to the handbook's "hu" ("hư"): the pension no longer named a
    # service we lack, and the article on welfare payments answered it
    handbook = Handbook(load())
    assert handbook.index.repair.word("huu") == "huu"
    assert handbook.decide("luog huu cua ba e thag nay chua ve tk").kind is Kind.HANDOFF
    assert Repairer({"hu": 3}).word("huu") == "hu"  # a word no service list has is still repaired

def test_articles_that_score_the_same_are_ranked_by_id_whatever_their_order() -> None:
    first = Article(id="a-cai-vneid", title="Cài ứng dụng VNeID", body="Tải VNeID từ cửa hàng ứng dụng.")
    second = replace(first, id="b-cai-vneid")
    for articles in ([first, second], [second, first]):
        hits = Handbook(articles).decide("cach cai vneid").hits
        assert [h.article.id for h in hits] == ["a-cai-vneid", "b-cai-vneid"]
        assert hits[0].score == hits[1].score


async def _questions(h: Harness) -> list[HandbookQuestion]:
    async with h.app.sessions() as session:
        return list((await session.exec(select(HandbookQuestion).order_by(HandbookQuestion.id))).all())


async def test_a_clear_question_gets_the_article_and_feedback_is_stored(harness: Harness) -> None:
    article, feedback = await harness.send(RESIDENT, "cách cài vneid trên điện thoại", expect=2)
    assert article.text.startswith("📘 Cài ứng dụng VNeID")
    assert "CÁC BƯỚC" in article.text
    assert "Có giúp được bạn không?" in feedback.text
    assert "1. Có" in feedback.text
    await harness.press(RESIDENT, RESIDENT, feedback, "1")
    [question] = await _questions(harness)
    assert question.article_id == "vneid-cai-dat"
    assert question.helpful is True


async def test_an_unclear_question_offers_three_and_a_number_picks_one(harness: Harness) -> None:
    [offer] = await harness.send(RESIDENT, "mat khau")  # which password: an account's, VNeID's, the wifi's
    assert "Trả lời bằng số" in offer.text
    assert "4. Không bài nào đúng" in offer.text
    first_title = offer.text.splitlines()[1].split(". ", 1)[1]
    article, _feedback = await harness.send(RESIDENT, "1", expect=2)
    assert first_title in article.text


async def test_unanswerable_question_goes_to_the_tech_team_and_their_answer_comes_back(harness: Harness) -> None:
    fake = harness.fake
    [handed] = await harness.send(RESIDENT, "giá phân bón hôm nay bao nhiêu")
    assert "đã chuyển cho Tổ công nghệ số" in handed.text
    await fake.wait_for(lambda: any("Câu hỏi mới số" in (m.text or "") for m in fake.messages_to(TECH)))
    [listing] = await harness.send(TECH, "/cauhoi")
    [question] = await _questions(harness)
    assert f'{question.id}. "giá phân bón' in listing.text

    [refusal] = await harness.send(RESIDENT, f"/traloi {question.id} tự trả lời")
    assert "chỉ tổ công nghệ số" in refusal.text.lower()
    before = len(fake.messages_to(RESIDENT))
    await harness.send(TECH, f"/traloi {question.id} Giá phân bón xem ở bảng tin hợp tác xã, cập nhật mỗi sáng.")
    await fake.wait_for(lambda: len(fake.messages_to(RESIDENT)) > before)
    assert "bảng tin hợp tác xã" in fake.messages_to(RESIDENT)[-1].text
    [question] = await _questions(harness)
    assert question.status == QuestionStatus.ANSWERED

    [title] = await harness.send(TECH, f"/luuhuongdan {question.id}")
    assert '"Giá phân bón hôm nay bao nhiêu"' in title.text  # the suggested title
    [shown] = await harness.send(TECH, "ok")
    assert "bảng tin hợp tác xã" in shown.text
    assert "1. Đồng ý" in shown.text
    [saved] = await harness.send(TECH, "1")
    assert "Đã lưu" in saved.text
    article, _ = await harness.send(RESIDENT, "giá phân bón hôm nay bao nhiêu", expect=2)
    assert "bảng tin hợp tác xã" in article.text  # the search finds the saved answer


async def test_not_helpful_hands_off_and_a_group_question_uses_hoi(harness: Harness) -> None:
    _article, _feedback = await harness.send(RESIDENT, "quen mat khau vneid", expect=2)
    [handed] = await harness.send(RESIDENT, "2")
    assert "đã chuyển cho Tổ công nghệ số" in handed.text
    [question] = await _questions(harness)
    assert question.helpful is False
    assert question.status == QuestionStatus.OPEN

    group, neighbour = VILLAGE_GROUPS["THON-1"], 300  # the neighbour never wrote to the bot in private
    replies = await harness.send(neighbour, "/hoi cach quet ma qr tra tien", chat=group, expect=2)
    assert replies[0].text.startswith("📘")  # the whole article in the group, as the bot cannot write to them
    asked = (await _questions(harness))[-1]
    assert asked.place_id is not None  # a group question belongs to the group's village


def test_langso_ask_prints_the_top_articles(tmp_path: Path) -> None:
    env = {"LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
    result = langso("ask", "cach cai vneid", "--json", env=env)
    assert result.returncode == 0
    printed = json.loads(result.stdout.splitlines()[-1])
    assert printed["decision"] == "answer"
    assert printed["hits"][0]["id"] == "vneid-cai-dat"
    assert printed["ms"] >= 0
    listed = langso("handbook", "list", env=env)
    assert "vneid-cai-dat" in listed.stdout
    assert len(listed.stdout.splitlines()) >= 30


def test_regional_speech_spaced_out_names_and_accents_are_read_as_standard_words() -> None:
    repair = Handbook(load()).index.repair
    assert repair.text("mần răng cài vneid ở mô") == "lam sao cai vneid o dau"
    assert repair.text("v n e i d") == "vneid"
    assert repair.text("zalo pay") == "zalopay"
    assert repair.text("trả tiền đ.iện") == "tra tien dien"  # a syllable broken by a dot
    assert repair.text("lên mứk 2") == "len muc 2"  # no syllable ends in k: typed as it sounds
    # ...but two words, one of them ours, stay two: "gì ạ" typed "gi a" is no "gia" (price)
    assert repair.text("dua the bhyt vao vneid kieu gi a").endswith("kieu gi a")
    assert repair.text("mở tài khoản") == "mo tai khoan"  # "mô" is "đâu" only with its accent
    # the southern "ấp" (a hamlet) is the village, not the abbreviation "ap" (app) its letters spell
    assert repair.text("tổ công nghệ số ở ấp tui") == "to cong nghe so o thon toi"
    assert repair.text("tai ap ve may") == "tai ung dung ve may"
    # "hẻm" (an alley) typed without diacritics after a place is no "hem" (không): the address stays an address
    assert repair.text("nha tui trong hem, giao hang toan lac") == "nha toi trong hem giao hang toan lac"
    assert repair.text("tui hem biet") == "toi khong biet"
    # a people's name that is no syllable stays as typed: "tiếng Hmông" is not "tiếng hướng", one letter away
    assert repair.text("bot nói tiếng Hmông được không") == "bot noi tieng hmong duoc khong"


def test_small_talk_is_decided_before_any_search() -> None:
    handbook = Handbook(load())
    for said in ("alo", "haha", "bot ơi", "Cảm ơn nha!", "👍", "chào bot"):
        assert handbook.decide(said).kind is Kind.CHAT, said
    for asked in ("bot làm được gì", "alo cài vneid sao"):
        assert handbook.decide(asked).kind is not Kind.CHAT, asked


async def test_small_talk_gets_a_friendly_reply_and_never_reaches_the_tech_team(harness: Harness) -> None:
    for said in ("alo", "cảm ơn bot nhiều nha", "haha"):
        [hello] = await harness.send(RESIDENT, said)
        assert "Làng số bot" in hello.text
        assert "/trogiup" in hello.text
        assert "📘" not in hello.text
    assert await _questions(harness) == []
    assert harness.fake.messages_to(TECH) == []


async def test_a_question_about_a_service_next_to_ours_gets_no_direct_answer(harness: Harness) -> None:
    replies = await harness.send(RESIDENT, "đăng ký kết hôn trên dịch vụ công")
    assert not any(r.text.startswith("📘") for r in replies)
    [question] = await _questions(harness)
    assert question.article_id is None


async def test_regional_speech_gets_its_article_in_private_and_in_a_group(harness: Harness) -> None:
    article, _feedback = await harness.send(RESIDENT, "mần răng lấy lại mật khẩu vneid", expect=2)
    assert article.text.startswith("📘 Quên mật khẩu hoặc passcode VNeID")
    group = VILLAGE_GROUPS["THON-1"]
    [in_group, *_] = await harness.send(RESIDENT, "/hoi quét mã qr trả tiền mần răng", chat=group)
    assert "Trả lời bằng số" not in in_group.text  # clearly ahead: the answer, not a menu
    # the article itself goes to the group, or to the asker's private chat with a pointer in the group
    fake = harness.fake
    await fake.wait_for(lambda: any((m.text or "").startswith("📘 Trả tiền bằng cách quét mã QR")
                                    for m in fake.messages_to(group) + fake.messages_to(RESIDENT)))


async def test_a_remark_that_names_something_of_ours_reaches_the_tech_team_only_when_the_person_says_so(
    harness: Harness,
) -> None:
    remark = "thằng cu nhà tôi cứ lấy điện thoại chơi game suốt, hết cả pin, chán ghê"
    [asked] = await harness.send(RESIDENT, remark)
    assert "1. Gửi cho tổ công nghệ số" in asked.text
    assert "2. Không cần" in asked.text
    [kept] = await harness.send(RESIDENT, "2")
    assert "không gửi" in kept.text
    [question] = await _questions(harness)
    assert question.status != QuestionStatus.OPEN
    assert not any("Câu hỏi mới số" in (m.text or "") for m in harness.fake.messages_to(TECH))

    [_asked_again] = await harness.send(RESIDENT, remark)
    [handed] = await harness.send(RESIDENT, "1")
    assert "đã chuyển cho Tổ công nghệ số" in handed.text
    fake = harness.fake
    await fake.wait_for(lambda: any("Câu hỏi mới số" in (m.text or "") for m in fake.messages_to(TECH)))
    assert [q.status for q in await _questions(harness)] == [QuestionStatus.ANSWERED_BY_HANDBOOK, QuestionStatus.OPEN]

    [_asked_again] = await harness.send(RESIDENT, remark)  # moving on instead of choosing: a new question
    article, _feedback = await harness.send(RESIDENT, "cách cài vneid", expect=2)
    assert article.text.startswith("📘 Cài ứng dụng VNeID")
