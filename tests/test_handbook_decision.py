"""How the handbook decides, on the real articles: small talk typed with Telex leftovers and typos,
plain questions answered directly instead of with a menu, and services an article says it does not
cover kept from a direct answer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from handlers.handbook.articles import load
from handlers.handbook.chitchat import asks
from handlers.handbook.decision import FEATURES, Model, shipped, signals
from handlers.handbook.search import Handbook, Kind
from tests.harness import RESIDENT, TECH, Harness


def test_small_talk_with_telex_leftovers_and_typos_is_still_small_talk() -> None:
    handbook = Handbook(load())
    for said in ("bot oiw", "camon nhìu", "cảm ơn nhìu nha", "thankss"):
        assert handbook.decide(said).kind is Kind.CHAT, said
    # a handbook word one letter from a small-talk word stays itself: "khóa" (locked) is not "khỏe"
    assert handbook.decide("khoa roi").kind is not Kind.CHAT


def test_emoticons_stickers_and_everyday_chatter_are_small_talk_but_a_question_with_them_is_not() -> None:
    handbook = Handbook(load())
    for said in (":))", "=))", "^^", "<3", "ok :)", "👍🏻", "❤️", "?", "ahihi", "hjhj", "haizz", "ô kê", "xin cảm ơn",
                 "chào buổi chiều", "bot thông minh ghê", "thôi không cần nữa", "trời nóng quá", "cho em hỏi chút"):
        assert handbook.decide(said).kind is Kind.CHAT, said
    for asked in ("mật khẩu wifi :)", "tôi bị lừa mất tiền :(", "😢 mất điện thoại rồi", "cho em hỏi cài vneid", "sao?"):
        assert handbook.decide(asked).kind is not Kind.CHAT, asked


def test_a_problem_described_without_naming_the_service_gets_its_article_through_the_problems_field() -> None:
    articles = load()
    described = "bạn bè bảo zalo của tôi nhắn đi mượn tiền"  # a taken-over account, not named as such
    assert Handbook(articles).decide(described).hits[0].article.id == "bao-mat-tai-khoan"
    bare = Handbook([replace(a, problems=()) for a in articles]).decide(described)
    assert bare.hits[0].article.id != "bao-mat-tai-khoan"


def _answered_with(article: str, questions: tuple[str, ...]) -> None:
    """Each question gets `article` as the answer, not a menu or the tech team."""
    handbook = Handbook(load())
    for asked in questions:
        decision = handbook.decide(asked)
        assert decision.kind is Kind.ANSWER, asked
        assert decision.hits[0].article.id == article, asked


def test_a_plain_question_however_typed_gets_the_article_not_a_menu() -> None:
    _answered_with("vneid-cai-dat", ("man rang cai vneid", "caif ddawtj vneidd", "cách cài vneid trên điện thoại"))


def test_a_service_the_top_article_says_it_does_not_cover_gets_no_direct_answer() -> None:
    articles = load()
    sure = replace(shipped(), answer_from=0.0)  # a model that would answer everything it finds
    question = "cấp lại bằng lái trên vneid"  # the VNeID documents article has "cấp lại bằng lái" as not covered
    decision = Handbook(articles, sure).decide(question)
    assert decision.hits[0].article.id == "vneid-tich-hop-giay-to"
    assert decision.kind is not Kind.ANSWER
    # the same articles without their "not covered" lists would answer it with that article
    bare = Handbook([replace(a, not_covered=()) for a in articles], sure).decide(question)
    assert bare.kind is Kind.ANSWER
    assert bare.hits[0].article.id == "vneid-tich-hop-giay-to"


async def test_small_talk_typed_in_telex_gets_the_hello_and_never_reaches_the_tech_team(harness: Harness) -> None:
    [hello] = await harness.send(RESIDENT, "bot oiw")
    assert "Làng số bot" in (hello.text or "")
    assert "📘" not in (hello.text or "")
    assert harness.fake.messages_to(TECH) == []


def test_a_civil_status_copy_next_to_the_birth_article_goes_to_the_tech_team_not_to_that_article() -> None:
    # "trích lục" (a copy from the civil-status register) is in the [elsewhere] list of adjacent services
    decision = Handbook(load()).decide("xin trích lục khai sinh bản sao")
    assert decision.kind is Kind.HANDOFF


def test_small_talk_read_every_way_it_splits_into_phrases_with_shorthand_and_dropped_letters() -> None:
    handbook = Handbook(load())
    # "bot ngủ" is itself a phrase, yet the message is "chúc" + "bot" + "ngủ ngon"; "ddc" is "dc", which
    # is "được"; "sag" lost the n of "sáng"; "bn" and "v" are chat shorthand for "bạn", "vậy"
    for said in ("Chúc bot ngủ ngon", "ddc roi cam own", "chao buoi sag ca nha", "bn laf ai v"):
        assert handbook.decide(said).kind is Kind.CHAT, said
    for asked in ("bot ngủ ngon không lấy được mã otp", "dc roi cam on, con mat khau vneid doi sao"):
        assert handbook.decide(asked).kind is not Kind.CHAT, asked


def test_a_question_naming_a_service_next_to_ours_is_never_answered_directly_however_sure_the_model() -> None:
    sure = replace(shipped(), answer_from=0.0)  # a model that would answer everything it finds
    handbook = Handbook(load(), sure)
    # the services named in another word order than the [elsewhere] list has them ("thay màn hình",
    # "giấy phép kinh doanh"), with words between
    # a bank card's chip, a product's barcode, a hospital referral, a name changed, an ID card made
    for question in ("màn hình điện thoại vỡ rồi thay ở đâu", "giấy phép của hộ kinh doanh xin ở đâu",
                     "thẻ từ đổi sang thẻ chip có mất phí không", "đăng ký mã vạch cho chai nước mắm thế nào",
                     "xin giấy chuyển tuyến lên bệnh viện tỉnh ở đâu", "muốn đổi họ tên cho con",
                     "làm thẻ căn cước cho con 5 tuổi"):
        decision = handbook.decide(question)
        assert decision.hits, question
        assert decision.hits[0].elsewhere, question
        assert decision.kind is not Kind.ANSWER, question
    assert handbook.decide("cách cài vneid trên điện thoại").kind is Kind.ANSWER


def test_a_short_hello_with_a_word_the_handbook_never_uses_is_small_talk_but_a_handbook_word_makes_it_a_question() -> None:
    handbook = Handbook(load())
    # small talk plus a word no article is about (a name): not on the small-talk list as a whole
    assert handbook.decide("chào bot, tui là Tèo").kind is Kind.CHAT
    # a word of the handbook ("dùng", "khóa", "wifi"), a service next to ours ("lương hưu"), a word typo
    # repair would change ("wifj"), or a small-talk word only guessed from a typo ("hnay" is not "hay")
    for asked in ("Bot này dùng thế nào", "bot làm được gì", "khoa roi", "chào bot, wifi hỏng rồi", "alo lương hưu",
                  "chào bot, wifj hỏng rồi", "gia phan ure hnay"):
        assert handbook.decide(asked).kind is not Kind.CHAT, asked


def test_chatter_with_everyday_words_and_personal_questions_to_the_bot_is_small_talk_but_asking_what_it_does_is_not() -> None:
    handbook = Handbook(load())
    # stopwords and times of day ("hôm nay", "mai", "quá") name no topic, though the articles' phrases use
    # them; "ủa" is surprise; a question to the bot about itself is chatter
    for said in ("hôm qua trời mưa to quá", "tạm biệt nhé, mai nói chuyện tiếp", "ủa bot là người hay máy vậy",
                 "bot có người yêu chưa", "bot ơi tên gì", "c.ơn bot nhìu", "cảm ơn đã hướng dẫn"):
        assert handbook.decide(said).kind is Kind.CHAT, said
    # a question word outside a small-talk phrase makes it a question, and a time word does not hide a topic
    # ("hướng dẫn" asks for instructions: "hướng dẫn dùng bot" had been a remark about the bot)
    for asked in ("bot nay lm dc nhung j", "tìm bot ở đâu trên zalo", "hôm nay tiền điện đóng ở đâu", "mai đi khám đặt lịch sao",
                  "hướng dẫn dùng bot"):
        assert handbook.decide(asked).kind is not Kind.CHAT, asked


@pytest.mark.parametrize("said", ["ủa bot là người hay máy vậy", "trời nay lạnh qá, bot có lạnh hok"])
async def test_a_personal_question_or_weather_chatter_to_the_bot_gets_the_hello_and_creates_no_hand_off(
    harness: Harness, said: str
) -> None:
    [hello] = await harness.send(RESIDENT, said)
    assert "Làng số bot" in (hello.text or "")
    assert harness.fake.messages_to(TECH) == []


def test_a_service_an_article_names_but_does_not_cover_gets_no_direct_answer() -> None:
    handbook = Handbook(load())
    # the origin-tracing and birth articles mention OCOP and permanent residence, so only their not_covered
    # keeps a question about scoring OCOP products or registering residence from a direct answer
    for question in ("Sản phẩm muốn được công nhận OCOP thì chấm điểm thế nào", "Đăng ký thường trú cho con dâu"):
        assert handbook.decide(question).kind is not Kind.ANSWER, question


def _chatter_and_questions(chatter: tuple[str, ...], questions: tuple[str, ...]) -> None:
    handbook = Handbook(load())
    assert [s for s in chatter if handbook.decide(s).kind is not Kind.CHAT] == []
    assert [q for q in questions if handbook.decide(q).kind is Kind.CHAT] == []


def test_telling_ones_day_with_an_ask_word_in_passing_is_chatter_but_asking_about_the_same_things_is_not() -> None:
    # "không ... được" and "không muốn" ask, yet the rest of the words tell a day, as the learned small-talk
    # reading says (chatter.py); the same things asked about still ask
    # "ad" (the admin, as "bot") is no name of a topic however rare a word it is
    _chatter_and_questions(("mưa cả tuần không phơi lúa được, chán ghê", "trời lạnh quá không muốn dậy mở tiệm",
                            "ad ơi, bot này giỏi thật, hơn cả thằng cháu nhà tôi"),
                           ("mất điện cả tối thì điện thoại có sạc được không", "mưa cả tuần, wifi nhà văn hóa có bị hỏng không",
                            "không phơi lúa được thì có bán lúa trên mạng được không", "ad ơi cho hỏi cài vneid"))


def test_a_word_small_talk_uses_is_no_topic_in_chatter_with_the_bot_but_other_topic_words_still_ask() -> None:
    # without accents "lạnh" and "trai" are also syllables of the articles; the small-talk phrases use them
    # ("trời lạnh", "đẹp trai"), so in a message that chats they name no topic, up to eight words
    _chatter_and_questions(("trời nay lạnh qá, bot có lạnh hok", "bot la trai hay gai"),
                           ("trời lạnh quá, wifi nhà văn hóa hỏng rồi", "bot lạnh lùng quá, không trả lời mã otp vneid"))


def test_a_remark_the_handbook_cannot_answer_gets_the_small_talk_reply_but_a_question_a_request_or_a_trouble_goes_on() -> None:
    handbook = Handbook(load())
    # statements of everyday words, longer than the small-talk table's short messages: nothing to hand off
    for said in ("hôm qua con gà mái nhà tui đẻ được ba quả trứng, mừng ghê",
                 "ngoai ruong lua nam nay tot lam, chac duoc mua lon",
                 "chiều nay thằng cháu về chơi, cả nhà ngồi ăn cơm vui lắm"):
        assert handbook.decide(said).kind is Kind.CHAT, said
    # a price asked, a trouble, a licence (a service next to ours), a question word: still the tech team's
    for asked in ("giá lúa hôm nay", "trời mưa to, điện thoại bị vô nước", "thi bằng lái hạng A1",
                  "chiều nay ra xã làm giấy tờ ở phòng nào"):
        assert handbook.decide(asked).kind is not Kind.CHAT, asked



def test_an_ask_word_is_read_with_its_diacritics_when_typed_with_them() -> None:
    for asked in ("giá lúa hôm nay", "gia lua hom nay", "hỏi về bảo hiểm", "hoi ve bao hiem",
                  "lệ phí trả qua ngân hàng đc hông ta", "muốn đổi số thì làm"):
        assert asks(asked), asked
    for said in ("già rồi mà vui ghê", "hơi mệt chút", "tui muốn ngủ"):
        assert not asks(said), said


def test_a_regional_question_with_particles_and_chat_spellings_gets_its_article_directly() -> None:
    handbook = Handbook(load())
    for said, article in (("ba tui muốn bán gạo trên sàn shopee mà hông biết mần sao hen", "ban-hang-san-tmdt"),
                          ("tui quên mật khẩu zalo hoài, giờ mần răng", "bao-mat-tai-khoan"),
                          ("ma tui muon cai vneid ma hok bit man sao", "vneid-cai-dat")):
        decision = handbook.decide(said)
        assert decision.kind is Kind.ANSWER, said
        assert decision.hits[0].article.id == article, said


def test_a_question_about_the_bot_itself_is_small_talk_but_asking_the_bot_for_a_task_is_not() -> None:
    handbook = Handbook(load())
    for said in ("Hôm nay trời nóng quá, bot có thấy nóng không?", "trời mưa to ghê, bot có thấy lạnh hông?"):
        assert handbook.decide(said).kind is Kind.CHAT, said
    for asked in ("bot có giúp tôi cài vneid được không?", "bot có trả lời được về bảo hiểm y tế không?",
                  "bot làm được gì?", "dùng bot sao?"):
        assert handbook.decide(asked).kind is not Kind.CHAT, asked


def test_a_brand_written_as_heard_gets_its_article_directly() -> None:
    decision = Handbook(load()).decide("mobai mani la gi")
    assert decision.kind is Kind.ANSWER
    assert decision.hits[0].article.id == "mobile-money"


def test_asking_how_the_bot_feels_is_chatter_even_when_it_names_what_the_bot_does() -> None:
    # "trả lời" is one of the bot's tasks, but a question about its feelings asks for none of them
    _chatter_and_questions(("Bot có buồn không khi phải trả lời suốt ngày?", "Bạn có mệt không khi phải trả lời suốt ngày?"),
                           ("bạn có biết cách cài vneid không", "bot có trả lời được về bảo hiểm y tế không?"))


def test_downloading_vneid_said_with_tai_gets_the_install_article_directly() -> None:
    # "tải" (download) is what many say for installing an app, and they drop the word "app"
    _answered_with("vneid-cai-dat", ("tải vneid về máy như thế nào", "Tải VNeID ở đâu?", "tải app công an về máy"))


def test_asking_how_to_do_something_with_the_bot_is_a_question_not_chatter() -> None:
    # "cách" asks how, as "gì" asks what, though "hỏi", "bot" and "đúng" are small-talk words: the article on
    # using the bot comes first, answered or offered, never the hello
    handbook = Handbook(load())
    for question in ("cach hoi bot cho dung", "cách nói chuyện với bot"):
        decision = handbook.decide(question)
        assert decision.kind in (Kind.ANSWER, Kind.OFFER), question
        assert decision.hits[0].article.id == "su-dung-bot", question


def test_a_greeting_thanks_or_apology_with_xin_asks_nothing_but_a_request_with_xin_still_asks() -> None:
    # "xin" asks for something ("xin mã", "xin cấp lại"), but not in "xin chào", "xin cảm ơn", "xin lỗi"
    _chatter_and_questions(("xin chào, tôi là ông Năm ở xóm 5", "Xin chào cả nhà, tôi là cô giáo mới về bản",
                            "xin lỗi nha, tôi gõ nhầm tin nhắn", "xin cảm ơn bot nhiều, tôi biết làm rồi"),
                           ("xin chào, cho hỏi cài vneid", "xin lỗi, xin mã otp ở đâu",
                            "xin chào bot, tôi muốn xin giấy khai sinh cho con"))
    for said in ("xin chào, tôi là ông Năm ở xóm 5", "xin lỗi nha, tôi gõ nhầm tin nhắn"):
        assert not asks(said), said


def test_the_model_read_back_from_its_file_bends_at_the_same_knots_and_decides_the_same() -> None:
    model = shipped()
    assert len(model.knots) > len(FEATURES)  # most signals bend at their quartiles
    handbook = Handbook(load())
    lookups = [handbook.index.search(q) for q in ("cách cài vneid trên điện thoại", "mobai mani la gi",
                                                  "quên mật khẩu wifi nhà văn hóa", "điện thoại hết pin nhanh")]
    x = np.vstack([signals(lookup) for lookup in lookups])
    again = Model.from_json(model.to_json())
    assert np.allclose(again.probabilities(x), model.probabilities(x), atol=1e-6)
    assert [again.kind(lookup) for lookup in lookups] == [model.kind(lookup) for lookup in lookups]
    assert again.to_json() == model.to_json()  # the small-talk reading too


def test_asking_the_bot_about_itself_as_a_person_or_praising_it_is_chatter_but_finding_it_still_asks() -> None:
    # where it lives, whether it is a person, whether it eats; a grandmother's "mệ" and the southern
    # "thiệt" ("thật"); praise for a quick answer
    _chatter_and_questions(("bot sống ở đâu vậy", "quê bot ở mô rứa, bot quê ở đâu", "bot có phải ngừi thiệt không",
                            "bot có phải là người thật không vậy",
                            "bot ăn cơm chưa rứa", "mệ chào bot nghe", "hay quá, bot trả lời nhanh ghê"),
                           ("bot ở đâu để hỏi cài vneid", "tìm bot ở đâu trên zalo", "bot ơi mệ quên mật khẩu vneid"))


def test_greeting_the_commune_or_its_officials_and_new_year_wishes_are_chatter_but_a_question_to_them_asks() -> None:
    # "xã", "UBND", "cán bộ" are words of the articles, yet a hello or a wish to them asks nothing
    _chatter_and_questions(("chào ủy ban xã nhé", "kính chào cán bộ xã", "năm mới chúc cả xã an khang thịnh vượng",
                            "trời rét quá cán bộ xã ơi"),
                           ("chào cán bộ xã, cho hỏi đăng ký khai sinh online ở đâu", "xã ơi tiền điện đóng ở đâu"))


def test_weather_keeping_people_off_the_fields_and_making_friends_are_chatter_and_names_said_by_ear_are_read() -> None:
    _chatter_and_questions(("trời mưa quá không ra rẫy được", "làm quen với bot nhé"),
                           ("trời mưa không ra ruộng được, tiền điện đóng ở đâu", "kết bạn zalo với trưởng thôn sao"))
    handbook = Handbook(load())
    # "vê en i đi" drops the "e" of VNeID; "es" is how many say the letter s ("vi es es ai đi")
    assert handbook.index.search("vê en i đi là gì").query.split()[0] == "vneid"
    assert handbook.index.search("vi es es ai đi đăng nhập").query.split()[0] == "vssid"
    assert handbook.index.search("mốp bai mơ ni dùng sao").query.split()[0] == "mobilemoney"


def test_work_at_sea_or_in_the_forest_kept_off_by_the_weather_and_everyone_is_glad_are_remarks_not_questions() -> None:
    # "không" and "ai" ask, but not in "không ra khơi được" or "ai cũng mừng"; "lm quen" is not "quên"
    _chatter_and_questions(("Mưa suốt cả tuần không ra khơi được, buồn ghê", "biển động, không đi biển được",
                            "trời mưa không đi cạo mủ được", "lm quen nhe bottt",
                            "nam nay lua tot ba con trong thon ai cung mung toi cung ghe vao chao bot cai",
                            "hok cần nữa đâu, bye bot", "ai trả lời đấy ạ, cán bộ xã hả"),
                           ("không ra khơi được thì nhận tiền hỗ trợ qua tài khoản sao",
                            "ai cũng quên mật khẩu vneid thì làm sao", "quen mat khau vneid"))
    for said in ("Mưa suốt cả tuần không ra khơi được, buồn ghê", "lm quen nhe bot"):
        assert not asks(said), said


def test_the_bot_asked_where_it_lives_is_chatter_even_though_the_article_on_the_bot_scores_well() -> None:
    handbook = Handbook(load())
    for said in ("bot ơi bot ở đâu z", "bot nhà ở đâu thế, có ở hà nội ko"):
        decision = handbook.decide(said)
        assert decision.kind is Kind.CHAT, said
    assert handbook.decide("bot làm được gì").kind is Kind.ANSWER


def test_services_next_to_articles_that_share_their_words_get_no_direct_answer() -> None:
    # a locked Zalo account, a child born abroad, a disability card, renewing health insurance, a bank
    # loan, an OCOP star rating, getting scammed money back: each shares words with an article that does
    # not do it
    handbook = Handbook(load())
    for question in ("zalo bị khóa", "Đăng ký khai sinh cho con sinh ở Trung Quốc, mẹ là người Trung Quốc, làm thế nào?",
                     "Làm thế nào để được cấp thẻ người khuyết tật?", "dong bao hiem y te cho ca nha o buu dien duoc khong",
                     "vừa mở tk ngân hàng trên đt xong, h muốn vay 50tr mua máy cày cần j",
                     "san pham ocop muon duoc cham 3 sao thi can dieu kien gi",
                     "bị lừa mất tiền, công an bắt đc người rồi bao giờ tôi mới dc trả lại tiền"):
        assert handbook.decide(question).kind is not Kind.ANSWER, question
    _answered_with("dvc-khai-sinh", ("đăng ký khai sinh online cho con",))
    _answered_with("binh-dan-hoc-vu-so", ("Tổ công nghệ số giúp được gì",))


def test_a_parent_abroad_gets_the_birth_article_but_a_child_born_abroad_does_not() -> None:
    # registering a child born at home is the article's, wherever the parent works; one born abroad is
    # the embassy's
    _answered_with("dvc-khai-sinh", ("Con tui mới đẻ, làm khai sinh trên điện thoại mần sao, tui đang ở Đài Loan",))
    assert Handbook(load()).decide("làm khai sinh cho con sinh bên Đài Loan thế nào").kind is not Kind.ANSWER


def test_a_birth_registered_for_a_young_child_is_the_article_but_one_registered_years_late_is_not() -> None:
    # without diacritics "trẻ" (a child) and "trễ" (late) are both "tre": what is not covered must not
    # catch the child the article is about
    _answered_with("dvc-khai-sinh", ("Lam khai sinh online cho tre duoi 6 tuoi can chuan bi gi",
                                     "đăng ký khai sinh cho trẻ mới sinh trên điện thoại"))
    assert Handbook(load()).decide("khai sinh trễ hạn cho người lớn tuổi chưa có giấy").kind is not Kind.ANSWER


def test_paying_for_fibre_is_the_bill_article_but_installing_it_is_not() -> None:
    _answered_with("thanh-toan-dien-nuoc", ("tra tien cap quang nha me bang app ngan hang ra rang",))
    handbook = Handbook(load())
    for question in ("lắp cáp quang cho nhà mới ở đâu", "đăng ký cáp quang viettel"):
        assert handbook.decide(question).kind is not Kind.ANSWER, question


def test_missing_tet_at_home_and_thanks_for_help_given_are_chatter_but_registering_asks() -> None:
    # "không ... được" and "giúp" ask, but not in "không về quê được" or "giúp được bà em rồi"; "đăng ký"
    # asks for something even with no question word
    _chatter_and_questions(("Tết này em không về quê được, buồn quá", "Cảm ơn bot nhiều, giúp được bà em rồi"),
                           ("dang ky cho con vao lop 1 truc tuyen", "không về quê được thì làm căn cước ở đâu",
                            "cảm ơn, bot giúp được gì"))


def test_a_telex_w_typed_after_the_whole_word_is_read_and_more_field_work_chatter_asks_nothing() -> None:
    # Unikey takes the w of "ơ" at the end of the word: "onw" is "ơn"
    _chatter_and_questions(("cam onw bot nhieuf", "hnay mua qá ko đi nương dc", "bot oi t buon qa, con trai di lam xa ko ve tet"),
                           ("cam onw, cho hoir cai vneid", "không về tết thì đóng tiền điện thế nào"))
    _answered_with("thanh-toan-dien-nuoc", ("trả tiền điện bằng điện thoại",))


def test_a_sleepless_night_regards_sent_and_a_child_into_university_are_remarks() -> None:
    # "không … được", "chỉ", "nhờ" and, typed without accents, "do" ("đơ") ask, but not here
    _chatter_and_questions(("Tối rồi mà vẫn mưa to, nằm mãi không ngủ được", "Cháu chào bot, bà cháu nhờ cháu hỏi thăm bot",
                            "Cảm ơn bot đêm qua đã chỉ, sáng nay tôi bình tĩnh làm lại thì xong rồi",
                            "hom nay con toi do dai hoc, vui qua"),
                           ("không ngủ được vì lo bị lừa mất tiền, giờ làm sao", "nhờ bot chỉ cách cài vneid"))


def test_restoring_messages_repairing_a_phone_and_a_hospital_refund_are_next_to_articles_not_in_them() -> None:
    handbook = Handbook(load())
    for question in ("Zalo của tôi tự dưng mất hết tin nhắn cũ, trong đó có ảnh cháu nội, khôi phục lại thế nào?",
                     "Điện thoại bị rơi vỡ màn hình, sửa ở đâu rẻ mà không bị tráo linh kiện?",
                     ("Mẹ tôi nằm viện cả tháng, tự mua thuốc ngoài hết mấy triệu, giờ muốn xin bảo hiểm y tế thanh toán"
                      " lại thì làm hồ sơ ở đâu?"),
                     "đổi sđt đăng ký với ngân hàng ra quầy hay làm trên app dc"):
        assert handbook.decide(question).kind is not Kind.ANSWER, question
    _answered_with("vneid-doi-thiet-bi", ("máy cũ bị vỡ màn hình, đăng nhập vneid máy mới sao",))


def test_a_formal_letter_is_searched_without_its_address_and_closing() -> None:
    # "gửi" and "bot" are words of articles ("gửi tiền", the article on using the bot): in "Kính gửi bot, …
    # Trân trọng cảm ơn" they name nothing, and the question inside is searched as if asked plainly
    handbook = Handbook(load())
    for asked, article in (("gửi tiền cho con qua số điện thoại", "mobile-money"), ("cài vneid cho mẹ", "vneid-cai-dat"),
                           ("quên mật khẩu vneid", "vneid-quen-mat-khau"), ("tra cứu hồ sơ đã nộp", "dvc-tra-cuu-ho-so")):
        framed = f"Kính gửi bot, {asked}. Trân trọng cảm ơn!"
        assert handbook.index.search(framed).query == handbook.index.search(asked).query
        decision = handbook.decide(framed)
        assert (decision.kind, decision.hits[0].article.id) == (Kind.ANSWER, article), framed


def test_chatter_about_coffee_or_a_new_phone_screen_is_small_talk_but_a_name_no_everyday_word_has_still_asks() -> None:
    # "cà phê", "màn hình" are pairs of words few articles have: they make a message ask, but a day told
    # around them is still read as chatter; "mã otp" names the handbook's thing however chatty the rest
    _chatter_and_questions(("năm nay được mùa cà phê, giá lại cao, cả nhà vui lắm",
                            "sáng nay mưa to quá, mẹ con ướt hết cả"),
                           ("bot ngủ ngon không lấy được mã otp", "màn hình điện thoại bị sọc",
                            "cà phê bán trên shopee thế nào"))


def test_chatter_that_names_something_of_ours_is_asked_about_neither_taken_for_small_talk_nor_handed_off() -> None:
    # "game", "mã otp": names of ours, so the bot cannot just say hello; the words around them are small
    # talk, so it does not bother the tech team either: it asks (Kind.CONFIRM)
    handbook = Handbook(load())
    for said in ("thằng cu nhà tôi cứ lấy điện thoại chơi game suốt, hết cả pin, chán ghê",
                 "bot ngủ ngon không lấy được mã otp"):
        assert handbook.decide(said).kind is Kind.CONFIRM, said
    assert handbook.decide("mưa cả tuần không phơi lúa được, chán ghê").kind is Kind.CHAT
    assert handbook.decide("vneid của tôi không vào được, chán ghê").kind is Kind.HANDOFF


def test_only_sure_small_talk_that_names_nothing_of_ours_gets_the_hello_and_the_rest_of_it_is_asked_about() -> None:
    # the rule, whatever the fitted operating points: read everything as sure small talk, and a service
    # next to ours is asked about while plain talk is small talk; read everything as small talk but never
    # surely, and plain talk is asked about too; read nothing as small talk, and nothing is asked
    model = shipped()
    sure = Handbook(load(), replace(model, chatter=replace(model.chatter, chat_from=0.0, sure_from=0.0)))
    assert sure.decide("đổi bằng lái xe ở đâu").kind is Kind.CONFIRM
    assert sure.decide("chợ phiên tháng này họp ngày nào").kind is Kind.CHAT
    unsure = Handbook(load(), replace(model, chatter=replace(model.chatter, chat_from=0.0, sure_from=1.01)))
    assert unsure.decide("chợ phiên tháng này họp ngày nào").kind is Kind.CONFIRM
    never = Handbook(load(), replace(model, chatter=replace(model.chatter, chat_from=1.01)))
    assert never.decide("đổi bằng lái xe ở đâu").kind is Kind.HANDOFF
    assert never.decide("thằng cu nhà tôi cứ lấy điện thoại chơi game suốt, hết cả pin, chán ghê").kind is not Kind.CONFIRM


def test_a_benefit_amount_asked_goes_to_the_tech_team_but_an_amount_an_article_shows_gets_it() -> None:
    # "how much a month" is a service next to ours (a benefit's level), however well the welfare-payment
    # article matches the rest; the months of insurance paid are what the VssID article shows
    handbook = Handbook(load())
    for question in ("Trợ cấp cho người khuyết tật nặng một tháng được bao nhiêu?",
                     "tro cap nguoi cao tuoi tren 80 dc bn tien 1 thang"):
        lookup = handbook.index.search(question)
        assert lookup.amount, question
        assert handbook.decide(question).kind is Kind.HANDOFF, question
    shown = handbook.decide("xem mình đã đóng bảo hiểm được bao nhiêu tháng")
    assert shown.kind is Kind.ANSWER
    assert shown.hits[0].article.id == "vssid"
    assert not handbook.index.search("cach cai vneid").amount


def test_a_name_of_ours_typed_alone_gets_the_menu_of_its_articles_not_the_tech_team() -> None:
    # "vneid" alone says which topic, not which of its articles: the person picks, the team is not asked
    handbook = Handbook(load())
    for name, first in (("vneid", "vneid-cai-dat"), ("mã QR", "thanh-toan-qr"), ("zalo", "nhom-zalo-thon")):
        decision = handbook.decide(name)
        assert decision.kind is Kind.OFFER, name
        assert decision.hits[0].article.id == first, name
    # with anything more it is a question again: "không được" is a trouble for the tech team
    assert handbook.decide("vssid đăng ký không được").kind is not Kind.OFFER
