"""The web console under test: a harness whose bot has [web] public_url, more people for the walk
(a head of another village, an official of another commune), and logging in as a browser would."""

from __future__ import annotations

import re

import aiohttp
from sqlmodel import select
from yarl import URL

from bot.app import App
from handlers import admin, codes
from handlers.people import person_for
from handlers.web_login import SESSION_LIFETIME
from storage.models import ConsoleSession, HandbookQuestion, Identity, Place, QuestionStatus, utcnow
from tests.harness import Harness

PUBLIC_URL = "http://console.example.vn"  # http: the test browser sends the cookie to 127.0.0.1
OTHER_HEAD = 102  # village head of THON-2 only
OTHER_OFFICIAL = 300  # commune official of XA2, which has THON-X
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/dang-nhap/\S+)")


async def seed_strangers(h: Harness) -> None:
    assert h.app is not None
    async with h.app.sessions() as session:
        await admin.add_place(session, "commune", "XA2", "Xã Bên Cạnh", None)
        await admin.add_place(session, "village", "THON-X", "Thôn Xa", "XA2")
        await admin.grant_role(session, "telegram", str(OTHER_HEAD), "village_head", "THON-2")
        await admin.grant_role(session, "telegram", str(OTHER_OFFICIAL), "commune_official", "XA2")
        await session.commit()
    for user in (OTHER_HEAD, OTHER_OFFICIAL):
        h.fake.add_private(user)


def base(app: App) -> str:
    return f"http://127.0.0.1:{app.web_port}"


def client() -> aiohttp.ClientSession:
    """A browser's cookies, for the bot on 127.0.0.1 (aiohttp keeps none for an IP address by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def web_link(h: Harness, user: int) -> str:
    """/web in the user's private chat; the path of the link the bot sent."""
    reply = await h.send(user, "/web")
    found = LINK.search(reply[-1].text or "")
    assert found, reply[-1].text
    return found.group(1)


async def log_in(h: Harness, browser: aiohttp.ClientSession, user: int) -> None:
    assert h.app is not None
    path = await web_link(h, user)
    async with browser.post(base(h.app) + path, allow_redirects=False) as answer:
        assert answer.status == 303, await answer.text()


async def session_as(h: Harness, user: int, browser: aiohttp.ClientSession) -> None:
    """A session cookie for anyone at all, residents included (as if they had had a link): what the
    route walk needs to show that every page asks the roles, not only the login."""
    assert h.app is not None
    secret = f"walk-{user}-{utcnow().timestamp()}"
    async with h.app.sessions() as session:
        person_id = (await session.exec(
            select(Identity.person_id).where(Identity.platform == "telegram", Identity.user_id == str(user))
        )).first()
        if person_id is None:
            person_id = (await person_for(session, "telegram", str(user), f"Người {user}")).id
        now = utcnow()
        session.add(ConsoleSession(token_hash=codes.digest(secret), person_id=person_id, created_at=now,
                                   expires_at=now + SESSION_LIFETIME))
        await session.commit()
    browser.cookie_jar.update_cookies({"langso_phien": secret}, URL(base(h.app)))


async def csrf_of(browser: aiohttp.ClientSession, url: str) -> str:
    async with browser.get(url) as answer:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', await answer.text())
    assert found, "no form on " + url
    return found.group(1)


async def handed_off_question(h: Harness, user: int, village: str, text: str) -> int:
    """A question `user` asked in private that the handbook handed to `village`'s team; its number."""
    assert h.app is not None
    async with h.app.sessions() as session:
        person = await person_for(session, "telegram", str(user), f"Người {user}", private=True)
        place = (await session.exec(select(Place).where(Place.code == village))).one()
        question = HandbookQuestion(platform="telegram", chat_id=str(user), user_id=str(user), person_id=person.id,
                                    place_id=place.id, text=text, decision="handoff", status=QuestionStatus.OPEN)
        session.add(question)
        await session.commit()
        assert question.id is not None
        return question.id
