"""The web console over plain HTTP (aiohttp): logging in with the /web link, sessions, CSRF, and a
walk of every route as each kind of person."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import func, select, update

from handlers.web_login import GUESSES
from storage.models import (
    Acknowledgement,
    Announcement,
    AnnouncementStatus,
    ChatGroup,
    ConsoleLogin,
    ConsoleSession,
    Delivery,
    DeliveryStatus,
    HandbookQuestion,
    Identity,
    Person,
    QuestionStatus,
    Role,
    utcnow,
)
from tests.conftest import settings_for
from tests.console_helpers import (
    OTHER_HEAD,
    base,
    client,
    csrf_of,
    handed_off_question,
    log_in,
    web_link,
)
from tests.fake_telegram import FakeTelegram
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, VILLAGE_GROUPS, Harness


async def test_the_web_link_opens_a_session_once(console: Harness) -> None:
    app = console.app
    assert app is not None
    path = await web_link(console, OFFICIAL)
    async with client() as browser:
        async with browser.get(base(app) + path) as page:  # a link preview fetching it spends nothing
            assert page.status == 200
            assert "Vào trang quản lý" in await page.text()
        async with browser.post(base(app) + path, allow_redirects=False) as answer:
            assert answer.status == 303
            cookie = answer.cookies["langso_phien"]
            assert cookie["httponly"]
            assert cookie["samesite"] == "Lax"
            assert not cookie["secure"]
            assert int(cookie["max-age"]) == 12 * 3600
        async with browser.get(base(app) + "/") as home:
            text = await home.text()
            assert home.status == 200
            assert "Thôn 1" in text
            assert "Đăng xuất" in text
    async with client() as again, again.post(base(app) + path, allow_redirects=False) as answer:
        assert answer.status == 403
        assert "/web" in await answer.text()


async def test_a_resident_gets_a_polite_no(console: Harness) -> None:
    reply = await console.send(RESIDENT, "/web")
    assert "chỉ dành cho" in (reply[0].text or "")
    assert "dang-nhap" not in (reply[0].text or "")


async def test_under_https_the_cookie_is_secure(fake: FakeTelegram, sqlite_url: str) -> None:
    h = Harness(fake, settings_for(sqlite_url, fake.url, web={"public_url": "https://bot.example.vn"}))
    await h.start()
    try:
        await h.seed_commune()
        reply = await h.send(OFFICIAL, "/web")
        path = (reply[0].text or "").split("https://bot.example.vn", 1)[1].split()[0]
        async with client() as browser, browser.post(base(h.app) + path, allow_redirects=False) as answer:
            assert answer.status == 303
            assert answer.cookies["langso_phien"]["secure"]
    finally:
        await h.stop()


async def test_a_link_past_ten_minutes_or_guessed_opens_nothing_and_guessing_locks_the_address(console: Harness) -> None:
    app = console.app
    assert app is not None
    path = await web_link(console, OFFICIAL)
    async with app.sessions() as session:
        await session.exec(update(ConsoleLogin).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    async with client() as browser:
        async with browser.post(base(app) + path, allow_redirects=False) as answer:
            assert answer.status == 403
        fresh = await web_link(console, OFFICIAL)
        for n in range(GUESSES.failures - 1):  # the expired one counted too
            async with browser.post(f"{base(app)}/dang-nhap/doan-{n}", allow_redirects=False) as answer:
                assert answer.status == 403
        async with browser.post(base(app) + fresh, allow_redirects=False) as answer:
            assert answer.status == 403  # locked out: the right link is not even looked at
    async with app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(ConsoleSession))).one() == 0


async def test_forms_without_the_sessions_csrf_token_change_nothing(console: Harness) -> None:
    app = console.app
    assert app is not None
    number = await handed_off_question(console, RESIDENT, "THON-1", "cach cai vneid cho me")
    async with client() as browser:
        await log_in(console, browser, TECH)
        token = await csrf_of(browser, base(app) + "/cau-hoi")
        for sent in ({}, {"csrf": "0" * len(token)}, {"csrf": token[:-1]}):
            async with browser.post(f"{base(app)}/cau-hoi/{number}/tra-loi", data={"tra_loi": "Bác mở Zalo…", **sent},
                                    allow_redirects=False) as answer:
                assert answer.status == 403
        async with app.sessions() as session:
            assert (await session.get(HandbookQuestion, number)).status == QuestionStatus.OPEN
        async with browser.post(f"{base(app)}/dang-xuat", data={}, allow_redirects=False) as answer:
            assert answer.status == 403  # a page elsewhere cannot log the person out either
        before = len(console.fake.messages_to(RESIDENT))
        async with browser.post(f"{base(app)}/cau-hoi/{number}/tra-loi",
                                data={"tra_loi": "Bác tải VNeID trên CH Play <b>nhé</b>", "csrf": token}) as answer:
            assert answer.status == 200
            assert "Đã gửi câu trả lời" in await answer.text()
        await console.fake.wait_for(lambda: len(console.fake.messages_to(RESIDENT)) > before)
        relayed = console.fake.messages_to(RESIDENT)[-1].text or ""
        assert "Bác tải VNeID trên CH Play <b>nhé</b>" in relayed
        assert "cach cai vneid cho me" in relayed
        async with browser.get(f"{base(app)}/cau-hoi?tim=vneid") as page:
            text = await page.text()
            assert "&lt;b&gt;nhé&lt;/b&gt;" in text
            assert "<b>nhé</b>" not in text  # autoescaped


async def test_taking_a_role_back_ends_its_holders_sessions_and_the_audit_log_shows_it(console: Harness) -> None:
    app = console.app
    assert app is not None
    async with client() as tech, client() as head, client() as official:
        await log_in(console, tech, TECH)
        await log_in(console, head, HEAD)
        await log_in(console, official, OFFICIAL)
        async with app.sessions() as session:
            role = (await session.exec(select(Role).where(Role.role == "tech_team"))).one()
            one_of_three = (await session.exec(select(Role).join(Person).join(Identity).where(
                Role.role == "village_head", Identity.user_id == str(HEAD)))).first()
        for taken in (role, one_of_three):
            url = f"{base(app)}/vai-tro/{taken.id}/thu-hoi"
            token = await csrf_of(official, url)
            async with official.post(url, data={"csrf": token}) as answer:
                assert answer.status == 200
                assert "Đã thu hồi vai trò" in await answer.text()
        await console.fake.wait_for(lambda: len(console.fake.messages_to(TECH)) > 1)
        assert "Tổ công nghệ số" in (console.fake.messages_to(TECH)[-1].text or "")
        for browser in (tech, head):  # the head keeps two villages, and still logs in again with /web
            async with browser.get(f"{base(app)}/", allow_redirects=False) as answer:
                assert answer.status == 303
                assert answer.headers["Location"] == "/dang-nhap"
        async with official.get(f"{base(app)}/nhat-ky") as page:
            text = await page.text()
            assert "Đăng nhập trang quản lý" in text
            assert "Thu hồi vai trò" in text
        token = await csrf_of(official, f"{base(app)}/")
        async with official.post(f"{base(app)}/dang-xuat", data={"csrf": token}) as answer:
            assert "Bạn đã đăng xuất" in await answer.text()
        async with official.get(f"{base(app)}/", allow_redirects=False) as answer:
            assert answer.status == 303
            assert answer.headers["Location"] == "/dang-nhap"


async def test_home_shows_the_latest_notices_delivery_per_village_and_a_head_sees_only_theirs(console: Harness) -> None:
    app = console.app
    assert app is not None
    async with app.sessions() as session:
        groups = {g.chat_id: g for g in (await session.exec(select(ChatGroup))).all()}
        head = (await session.exec(select(Person).join(Role).where(Role.role == "village_head"))).first()
        older = Announcement(author_id=head.id, text="Thông báo cũ", status=AnnouncementStatus.QUEUED)
        latest = Announcement(author_id=head.id, text="Họp thôn tối nay lúc 19 giờ", status=AnnouncementStatus.QUEUED)
        session.add_all([older, latest])
        await session.flush()
        thon1, thon2 = groups[str(VILLAGE_GROUPS["THON-1"])], groups[str(VILLAGE_GROUPS["THON-2"])]
        session.add_all([
            Delivery(announcement_id=older.id, group_id=thon1.id, status=DeliveryStatus.SENT),
            Delivery(announcement_id=latest.id, group_id=thon1.id, status=DeliveryStatus.SENT),
            Delivery(announcement_id=latest.id, group_id=thon2.id, status=DeliveryStatus.FAILED, last_error="blocked"),
            Acknowledgement(announcement_id=latest.id, group_id=thon1.id, platform="telegram", user_id="7"),
            Acknowledgement(announcement_id=latest.id, group_id=thon1.id, platform="telegram", user_id="8"),
            Acknowledgement(announcement_id=older.id, group_id=thon1.id, platform="telegram", user_id="9"),
        ])
        thon2.active = False
        session.add(thon2)
        await session.commit()
    async with client() as official, client() as head_of_thon2:
        await log_in(console, official, OFFICIAL)
        async with official.get(base(app) + "/") as page:
            text = " ".join((await page.text()).split())
        thon1_card = text.split('id="noi-THON-1"')[1].split("</article>")[0]
        thon2_card = text.split('id="noi-THON-2"')[1].split("</article>")[0]
        assert "Họp thôn tối nay" in thon1_card
        assert "Đã đến 1 nhóm" in thon1_card
        assert '2 người bấm "Đã đọc"' in thon1_card
        assert "Thông báo cũ" not in thon1_card
        assert "Đã đến 0 nhóm" in thon2_card
        assert "lỗi 1" in thon2_card
        assert "1 đã xóa bot" in thon2_card
        await log_in(console, head_of_thon2, OTHER_HEAD)
        async with head_of_thon2.get(base(app) + "/") as page:
            text = await page.text()
        assert 'id="noi-THON-2"' in text
        assert 'id="noi-THON-1"' not in text
        assert 'id="noi-XA1"' not in text


async def test_web_in_a_group_gives_no_link(console: Harness) -> None:
    [in_group] = await console.send(OFFICIAL, "/web", chat=VILLAGE_GROUPS["THON-1"])
    assert "riêng" in (in_group.text or "")
    assert "dang-nhap" not in (in_group.text or "")


async def test_web_without_public_url_says_the_console_is_not_set_up(harness: Harness) -> None:
    [unset] = await harness.send(OFFICIAL, "/web")  # the shipped config: public_url = ""
    assert "public_url" in (unset.text or "")
    assert "dang-nhap" not in (unset.text or "")
