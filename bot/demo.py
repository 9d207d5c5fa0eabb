"""`langso demo`: the bot on the local channel in this terminal. Act as a seeded commune official,
village head or resident, and see what every group receives."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlmodel import select

from bot import logs
from bot.app import App
from bot.channels.local import LocalChannel, to_payload
from bot.config import Settings
from bot.web.console import mount
from handlers import admin
from handlers.chat import ChatKind, Event, Incoming, Outgoing
from handlers.people import person_for
from handlers.permissions import actor_for
from handlers.web_login import LOGIN_PATH, issue_link
from messages import render
from storage.models import ChatGroup, Place, utcnow

PLATFORM = "local"


@dataclass(frozen=True)
class Persona:
    user_id: str
    name: str
    role: str | None
    place_code: str


def personas(settings: Settings) -> list[Persona]:
    demo = settings.demo
    people = [Persona("can-bo-xa", "Lò Văn Minh", "commune_official", demo.commune_code)]
    for n, village in enumerate(demo.villages, 1):
        people.append(Persona(f"truong-thon-{n}", f"Trưởng {village.name}", "village_head", village.code))
    if demo.villages:
        people.append(Persona("nguoi-dan", "Bà Hà Thị Lan", None, demo.villages[0].code))
    return people


def group_id(code: str) -> str:
    return f"nhom-{code.lower()}"


async def seed(app: App) -> None:
    """Places, roles and one linked group per place; nothing is added twice on a second run."""
    demo = app.settings.demo
    async with app.sessions() as session:
        existing = {p.code for p in (await session.exec(select(Place))).all()}
        if demo.commune_code not in existing:
            await admin.add_place(session, "commune", demo.commune_code, demo.commune_name, None)
        for village in demo.villages:
            if village.code not in existing:
                await admin.add_place(session, "village", village.code, village.name, demo.commune_code)
        for persona in personas(app.settings):
            if persona.role:
                await admin.grant_role(session, PLATFORM, persona.user_id, persona.role, persona.place_code)
        groups = {g.chat_id for g in (await session.exec(select(ChatGroup))).all()}
        places = (await session.exec(select(Place))).all()
        for place in places:
            if group_id(place.code) not in groups:
                session.add(
                    ChatGroup(platform=PLATFORM, chat_id=group_id(place.code), title=f"Nhóm {place.name}", place_id=place.id)
                )
        await session.commit()


def show(out: Outgoing, folder: Path) -> None:
    where = f"nhóm {out.chat.chat_id}" if out.chat.chat_id.startswith("nhom-") else f"riêng → {out.chat.chat_id}"
    buttons = "  ".join(f"[{b.label}]" for b in out.buttons if b.data.startswith("ack:"))
    text = out.text
    if out.upload is not None:  # a chart or an export: saved into the demo's folder (ignored by git)
        folder.mkdir(parents=True, exist_ok=True)
        saved = folder / Path(out.upload.filename).name
        saved.write_bytes(out.upload.content)
        text = "\n".join(filter(None, [text, render("demo_file_saved", path=str(saved))]))
    print(f"\n┌─ {where}\n│ " + text.replace("\n", "\n│ ") + (f"\n│ {buttons}" if buttons else "") + "\n└─")


async def run_demo(settings: Settings) -> None:
    """Until `:thoat`, the end of the input, or Ctrl-C (which leaves at once: nothing waits on a
    blocked read of the terminal)."""
    local = LocalChannel(on_message=lambda out: show(out, settings.demo.output))
    port = _free_port()  # beside a running bot, whose port the config names
    console_url = f"http://127.0.0.1:{port}"
    handler = settings.handler
    settings = dataclasses.replace(
        settings,
        database_url=settings.demo.database_url,  # never the real bot's
        telegram=dataclasses.replace(settings.telegram, token=None),
        zalo=dataclasses.replace(settings.zalo, token=None),
        web_host="127.0.0.1",
        web_port=port,
        handler=dataclasses.replace(handler, links=dataclasses.replace(handler.links, console_url=console_url)),
    )
    app = App(settings, local=local)
    with logs.held_back():
        await app.start()
    try:
        await seed(app)
        cast = personas(settings)
        me = cast[-1] if cast else Persona("nguoi-dan", "Người dân", None, "")
        print(render("demo_intro", personas=list(enumerate(cast, 1))))
        await _serve_console(app, cast[0], console_url)
        loop = asyncio.get_running_loop()
        keyboard = Keyboard(loop)
        while True:
            print(f"\n[{me.name}] > ", end="", flush=True)
            line = (await keyboard.line()).strip()
            if not line:
                continue
            if line in (":thoat", ":q"):
                break
            if line.startswith(":la "):
                pick = line[4:].strip()
                if pick.isdigit() and 1 <= int(pick) <= len(cast):
                    me = cast[int(pick) - 1]
                else:
                    print(render("demo_intro", personas=list(enumerate(cast, 1))))
                continue
            incoming = _incoming(line, me, local)
            if incoming is None:
                print(render("demo_intro", personas=list(enumerate(cast, 1))))
                continue
            await app.dispatcher.receive(PLATFORM, f"demo-{loop.time()}", to_payload(incoming))
            await app.dispatcher.drain()
            await asyncio.sleep(0.3)  # let the delivery worker show what the groups receive
    finally:
        await app.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _serve_console(app: App, official: Persona, console_url: str) -> None:
    """The web console on this machine, and a login link for the demo's commune official."""
    web_app = web.Application()
    mount(web_app, app.console)
    await app.serve(web_app)
    async with app.sessions() as session:
        person = await person_for(session, PLATFORM, official.user_id, official.name)
        token = await issue_link(session, await actor_for(session, person), utcnow())
        await session.commit()
    if token is not None:
        print(render("demo_console", name=official.name, link=f"{console_url}{LOGIN_PATH}{token}"))


class Keyboard:
    """Lines from standard input, read by a daemon thread with os.read: the event loop never waits
    on the terminal, and at exit nothing does (input() in an executor kept Ctrl-C waiting for Enter,
    and sys.stdin's lock held by a daemon thread can stall the interpreter's shutdown)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=self._read, name="demo-stdin", daemon=True).start()

    async def line(self) -> str:
        line = await self._lines.get()
        if line is None:
            raise EOFError
        return line

    def _read(self) -> None:
        pending = b""
        while chunk := os.read(sys.stdin.fileno(), 4096):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._put(line.decode("utf-8", "replace"))
        self._put(pending.decode("utf-8", "replace") if pending else None)
        if pending:
            self._put(None)

    def _put(self, line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the demo is over
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)


def _incoming(line: str, me: Persona, local: LocalChannel) -> Incoming | None:
    """`:nhom CODE text` posts in a group, `:doc CODE` presses "Đã đọc" on its latest notice,
    anything else is a private message to the bot."""
    if line.startswith(":nhom "):
        _, code, *words = [*line.split(" ", 2), ""]
        return Incoming(PLATFORM, group_id(code), ChatKind.GROUP, me.user_id, me.name, text=" ".join(words).strip())
    if line.startswith(":doc "):
        chat = group_id(line[5:].strip())
        acks = [b for out in local.sent.get(chat, []) for b in out.buttons if b.data.startswith("ack:")]
        if not acks:
            return None
        return Incoming(
            PLATFORM, chat, ChatKind.GROUP, me.user_id, me.name, event=Event.BUTTON, button_data=acks[-1].data,
            callback_id="demo",
        )
    if line.startswith(":"):
        return None
    return Incoming(PLATFORM, me.user_id, ChatKind.PRIVATE, me.user_id, me.name, text=line)
