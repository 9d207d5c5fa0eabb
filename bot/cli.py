"""`langso`: run the bot, the terminal demo, administration and migrations."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from pathlib import Path

import aiohttp

from bot import logs
from bot.config import ChannelSettings, ConfigError, Settings, load
from handlers import admin, invitations
from handlers.handbook.search import Handbook
from handlers.context import BotLinks
from handlers.posters import pages_for, poster_pdf
from handlers.surveys.catalog import Catalog
from handlers.surveys.export import FORMATS
from handlers.surveys.forms import FormError
from messages import render
from handlers.people import place_by_code
from storage.db import create_engine, session_factory
from storage.models import utcnow
from storage.migrate import upgrade


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="langso", description="Làng số bot")
    root.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run every channel that has a token (the local demo when none has)")
    sub.add_parser("demo", help="the local channel in this terminal")

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations")

    adm = sub.add_parser("admin", help="places, roles, groups").add_subparsers(dest="admin_command", required=True)
    place = adm.add_parser("place").add_subparsers(dest="place_command", required=True)
    add = place.add_parser("add")
    add.add_argument("--kind", required=True, choices=["commune", "village"])
    add.add_argument("--code", help="default for --official: the kind and the official code, e.g. XA-02923")
    named = add.add_mutually_exclusive_group()
    named.add_argument("--name")
    named.add_argument("--official", help="a commune's name (or code) in the official 2025 list")
    add.add_argument("--province", help="the province of --official")
    add.add_argument("--parent")
    place.add_parser("list")
    search = place.add_parser("search", help="communes and wards of the official 2025 list")
    search.add_argument("text")
    search.add_argument("--province")
    role = adm.add_parser("role").add_subparsers(dest="role_command", required=True)
    grant = role.add_parser("grant")
    grant.add_argument("--platform", required=True, choices=["telegram", "zalo", "local"])
    grant.add_argument("--user-id", required=True)
    grant.add_argument("--role", required=True, choices=["commune_official", "village_head", "tech_team"])
    grant.add_argument("--place", required=True)
    invite = adm.add_parser("invite", help="a one-time invitation to a role (the first one of a commune)")
    invite.add_argument("--role", required=True, choices=["commune_official", "village_head", "tech_team"])
    invite.add_argument("--place", required=True)
    group = adm.add_parser("group").add_subparsers(dest="group_command", required=True)
    group.add_parser("list")

    ask = sub.add_parser("ask", help="ask the handbook as a resident would, and see the scores")
    ask.add_argument("question", help='the question; "-" reads one question a line from standard input')
    ask.add_argument("--json", action="store_true")
    survey = sub.add_parser("survey", help="survey definitions").add_subparsers(dest="survey_command", required=True)
    survey.add_parser("import", help="check and import a survey file (.toml or XLSForm .xlsx)").add_argument("path")
    survey.add_parser("list", help="the surveys the bot can run")
    export = sub.add_parser("export", help="a village's or commune's survey answers as XLSX or CSV")
    export.add_argument("--survey", required=True, help="survey code (langso survey list)")
    export.add_argument("--place", required=True, help="village or commune code")
    export.add_argument("--format", choices=FORMATS, default="xlsx")
    export.add_argument("--out", help="file to write (default: <survey>-<place>.<format>)")
    poster = sub.add_parser("poster", help="QR posters for the nhà văn hóa: an A4 PDF, one page per village")
    poster.add_argument("--place", required=True, help="village code, or a commune code for all its villages")
    poster.add_argument("--out", help="file to write (default: poster-<place>.pdf)")
    sub.add_parser("handbook", help="the handbook").add_subparsers(dest="handbook_command", required=True).add_parser(
        "list"
    )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load()
    except ConfigError as exc:
        print(render("config_error", reason=str(exc)), file=sys.stderr)
        return 2
    logs.install(logs.secrets_of(settings))
    if args.command == "run":
        if not (settings.telegram.token or settings.zalo.token):
            print(render("no_token_demo", database=settings.database_url))
            return _demo(settings)
        return _run(settings)
    if args.command == "demo":
        return _demo(settings)
    if args.command == "db":
        upgrade(settings.database_url)
        print(render("db_upgraded"))
        return 0
    if args.command in ("ask", "handbook"):
        return asyncio.run(_with_session(settings, lambda session: _handbook(args, session)))
    if args.command == "poster":
        return asyncio.run(_with_session(settings, lambda session: _poster(args, session, settings)))
    if args.command in ("survey", "export"):
        return asyncio.run(_with_session(settings, lambda session: _surveys(args, session, settings)))
    if args.admin_command == "invite":
        return asyncio.run(_with_session(settings, lambda session: _invite(args, session, settings)))
    return asyncio.run(_with_session(settings, lambda session: _admin(args, session)))


def _run(settings: Settings) -> int:
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings) -> None:
    """The bot until SIGINT or SIGTERM, then a graceful stop (also used by bench/surveys.py)."""
    from bot.app import App

    app = App(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop()


def _demo(settings: Settings) -> int:
    from bot.demo import run_demo

    with contextlib.suppress(KeyboardInterrupt, EOFError):
        asyncio.run(run_demo(settings))
    return 0


async def _with_session(settings: Settings, action: Callable[[object], Awaitable[int]]) -> int:
    await asyncio.to_thread(upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            try:
                code = await action(session)
            except (admin.AdminError, FormError) as exc:
                print(exc, file=sys.stderr)
                return 1
            await session.commit()
            return code
    finally:
        await engine.dispose()


async def _admin(args: argparse.Namespace, session) -> int:  # noqa: ANN001 - AsyncSession
    if args.admin_command == "place" and args.place_command == "add":
        print(await _add_place(args, session))
    elif args.admin_command == "place" and args.place_command == "search":
        for unit in admin.search_officials(args.text, args.province):
            print(f"{unit.name}\t{unit.kind}\t{unit.official_code}\t{unit.province}")
    elif args.admin_command == "place":
        for place, parent in await admin.list_places(session):
            print(f"{place.code}\t{place.kind}\t{place.name}\t{parent.code if parent else ''}")
    elif args.admin_command == "role":
        place = await admin.grant_role(session, args.platform, args.user_id, args.role, args.place)
        print(render("admin_role_granted", role=args.role, place=place, platform=args.platform, user_id=args.user_id))
    elif args.admin_command == "group":
        for group, place in await admin.list_groups(session):
            state = "active" if group.active else "inactive"
            print(f"{group.platform}\t{group.chat_id}\t{state}\t{place.code if place else '-'}\t{group.title}")
    return 0


async def _add_place(args: argparse.Namespace, session) -> str:  # noqa: ANN001 - AsyncSession
    if args.official:
        place, unit = await admin.add_official_commune(
            session, args.kind, args.official, args.province, args.code, args.parent
        )
        return render("admin_official_added", place=place, unit=unit)
    if args.province:
        raise admin.AdminError("admin_province_needs_official")
    place = await admin.add_place(session, args.kind, args.code or "", args.name or "", args.parent)
    return render("admin_place_added", place=place)


async def _invite(args: argparse.Namespace, session, settings: Settings) -> int:  # noqa: ANN001 - AsyncSession
    """`langso admin invite`: what to send to the person invited; no user id needed."""
    place = await place_by_code(session, args.place)
    if place is None:
        raise admin.AdminError("admin_unknown_place", code=args.place)
    try:
        issued = await invitations.create_invitation(session, None, args.role, place, utcnow())
    except invitations.NotAllowed:
        raise admin.AdminError("admin_role_wrong_place", code=place.code, role=invitations.role_label(args.role)) from None
    link = settings.handler.links.telegram(issued.payload)  # the running bot learns the username from getMe
    expires = issued.invitation.expires_at.astimezone(settings.handler.timezone)
    print(render("invite_cli", number=issued.invitation.id, role=invitations.role_label(args.role),
                 place=place.name, code=place.code, link=link))
    print()
    print(invitations.card(issued, link, expires))
    return 0


async def _surveys(args: argparse.Namespace, session, settings: Settings) -> int:  # noqa: ANN001
    if args.command == "export":
        content, households = await admin.export_answers(
            session, Catalog(), args.survey, args.place, args.format, settings.handler.timezone
        )
        out = Path(args.out or f"{args.survey}-{args.place}.{args.format}".lower())
        out.write_bytes(content)
        print(render("export_written", path=str(out), households=households))
    elif args.survey_command == "import":
        path = Path(args.path)
        try:
            content = path.read_bytes()
        except OSError as exc:
            print(render("survey_file_unreadable", path=str(path), reason=exc.strerror or str(exc)), file=sys.stderr)
            return 1
        survey = await admin.import_survey(session, path.name, content)
        print(render("survey_imported", survey=survey, questions=len(survey.questions)))
    else:
        catalog = Catalog()
        await catalog.refresh(session)
        for survey in catalog.all():
            print(f"{survey.code}\t{len(survey.questions)}\t{survey.source}\t{survey.title}")
    return 0


async def _poster(args: argparse.Namespace, session, settings: Settings) -> int:  # noqa: ANN001
    place = await place_by_code(session, args.place)
    if place is None:
        raise admin.AdminError("admin_unknown_place", code=args.place)
    links = BotLinks(await _telegram_username(settings.telegram), settings.zalo.share_url)
    pages = await pages_for(session, place, links)
    if not pages:
        raise admin.AdminError("poster_no_villages", name=place.name, code=place.code)
    out = Path(args.out or f"poster-{place.code}.pdf".lower())
    out.write_bytes(await asyncio.to_thread(poster_pdf, pages))
    print(render("poster_written", path=str(out), pages=len(pages)))
    return 0


async def _telegram_username(telegram: ChannelSettings) -> str:
    """The bot's username for the poster's deep links: `telegram.username`, else getMe with the token."""
    if telegram.username:
        return telegram.username
    if telegram.token:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
                async with http.get(f"{telegram.api_url}/bot{telegram.token}/getMe") as response:
                    username = (await response.json()).get("result", {}).get("username", "")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            username = ""  # the reason may quote the URL, which holds the token: the template says what to do
        if username:
            return username
    raise admin.AdminError("poster_needs_username")


async def _handbook(args: argparse.Namespace, session) -> int:  # noqa: ANN001 - AsyncSession
    handbook = await Handbook.load(session)
    if args.command == "handbook":
        for article in handbook.articles:
            print(f"{article.id}\t{article.title}")
        return 0
    questions = [line.strip() for line in sys.stdin] if args.question == "-" else [args.question]
    for question in filter(None, questions):
        _answer(handbook, question, args.json)
    return 0


def _answer(handbook: Handbook, question: str, as_json: bool) -> None:
    started = time.perf_counter()
    decision = handbook.decide(question)
    ms = (time.perf_counter() - started) * 1000
    hits = [{"id": h.article.id, "title": h.article.title, "score": round(h.score, 4),
             "coverage": round(h.coverage, 3)} for h in decision.hits]
    if as_json:
        print(json.dumps({"question": question, "decision": decision.kind, "hits": hits, "ms": round(ms, 3)},
                         ensure_ascii=False))
    else:
        print(f"{decision.kind} ({ms:.2f} ms)")
        for hit in hits:
            print(f"{hit['score']:.3f}\t{hit['coverage']:.2f}\t{hit['id']}\t{hit['title']}")


if __name__ == "__main__":
    sys.exit(main())
