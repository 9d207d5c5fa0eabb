"""`langso`: run the bot, the terminal demo, administration and migrations."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import cli_db, logs
from bot.cli_words import HELP, WORDS, translate_argparse
from bot.config import ChannelSettings, ConfigError, Settings, load
from bot.startup import StartError
from handlers import admin, invitations
from handlers.context import BotLinks
from handlers.handbook.search import Handbook
from handlers.people import place_by_code
from handlers.posters import pages_for, poster_pdf
from handlers.surveys.catalog import Catalog
from handlers.surveys.export import FORMATS, ExportOptions, Naming
from handlers.surveys.forms import FormError
from messages import render
from storage.db import create_engine, session_factory, shown
from storage.migrate import upgrade
from storage.models import utcnow

ROLES = ["commune_official", "village_head", "tech_team"]


def parser() -> argparse.ArgumentParser:
    translate_argparse()
    h = HELP
    root = argparse.ArgumentParser(prog="langso", description=h["prog"], epilog=_where_epilog(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("-v", "--verbose", action="store_true", help=h["verbose"])
    sub = root.add_subparsers(dest="command", required=True, title=h["command"])
    sub.add_parser("run", help=h["run"], description=h["run"])
    sub.add_parser("demo", help=h["demo"], description=h["demo"])

    db = sub.add_parser("db", help=h["db"], description=h["db"]).add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help=h["db_upgrade"], description=h["db_upgrade"])
    db.add_parser("where", help=h["db_where"], description=h["db_where"])
    db.add_parser("backup", help=h["db_backup"], description=h["db_backup"]).add_argument("path", help=h["db_backup_path"])
    db.add_parser("restore", help=h["db_restore"], description=h["db_restore"]).add_argument(
        "path", help=h["db_restore_path"]
    )

    adm = sub.add_parser("admin", help=h["admin"], description=h["admin"]).add_subparsers(
        dest="admin_command", required=True
    )
    place = adm.add_parser("place", help=h["place"]).add_subparsers(dest="place_command", required=True)
    add = place.add_parser("add", help=h["place_add"], description=h["place_add"])
    add.add_argument("--kind", required=True, choices=["commune", "village"], help=h["kind"])
    add.add_argument("--code", help=h["code"])
    named = add.add_mutually_exclusive_group()
    named.add_argument("--name", help=h["name"])
    named.add_argument("--official", help=h["official"])
    add.add_argument("--province", help=h["province"])
    add.add_argument("--parent", help=h["parent"])
    place.add_parser("list", help=h["place_list"])
    search = place.add_parser("search", help=h["place_search"], description=h["place_search"])
    search.add_argument("text", help=h["search_text"])
    search.add_argument("--province", help=h["province"])
    role = adm.add_parser("role", help=h["role"]).add_subparsers(dest="role_command", required=True)
    grant = role.add_parser("grant", help=h["role_grant"], description=h["role_grant"])
    grant.add_argument("--platform", required=True, choices=["telegram", "zalo", "local"], help=h["platform"])
    grant.add_argument("--user-id", required=True, help=h["user_id"])
    grant.add_argument("--role", required=True, choices=ROLES, help=h["role_name"])
    grant.add_argument("--place", required=True, help=h["role_place"])
    invite = adm.add_parser("invite", help=h["invite"], description=h["invite"])
    invite.add_argument("--role", required=True, choices=ROLES, help=h["role_name"])
    invite.add_argument("--place", required=True, help=h["role_place"])
    group = adm.add_parser("group", help=h["group"]).add_subparsers(dest="group_command", required=True)
    group.add_parser("list", help=h["group_list"])

    ask = sub.add_parser("ask", help=h["ask"], description=h["ask"])
    ask.add_argument("question", help=h["question"])
    ask.add_argument("--json", action="store_true", help=h["json"])
    survey = sub.add_parser("survey", help=h["survey"]).add_subparsers(dest="survey_command", required=True)
    survey_import = survey.add_parser("import", help=h["survey_import"], description=h["survey_import"])
    survey_import.add_argument("path", help=h["survey_path"])
    survey_import.add_argument("--media", metavar="DIR", help=h["survey_media"])
    survey.add_parser("list", help=h["survey_list"])
    export = sub.add_parser("export", help=h["export"], description=h["export"])
    export.add_argument("--survey", required=True, help=h["survey_code"])
    export.add_argument("--place", required=True, help=h["export_place"])
    export.add_argument("--format", choices=FORMATS, default="xlsx", help=h["format"])
    export.add_argument("--out", help=h["export_out"])
    export.add_argument("--names", action="store_true", help=h["names"])
    poster = sub.add_parser("poster", help=h["poster"], description=h["poster"])
    poster.add_argument("--place", required=True, help=h["poster_place"])
    poster.add_argument("--out", help=h["poster_out"])
    handbook = sub.add_parser("handbook", help=h["handbook"]).add_subparsers(dest="handbook_command", required=True)
    handbook.add_parser("list", help=h["handbook_list"])
    return root


def _where_epilog() -> str:
    """`langso --help` ends with the config file and the database the commands would use."""
    try:
        settings = load()
    except ConfigError as exc:
        return HELP["epilog_unknown"].format(reason=exc)
    return HELP["epilog"].format(config=settings.source, database=shown(settings.database_url))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load()
    except ConfigError as exc:
        print(render("config_error", reason=str(exc)), file=sys.stderr)
        return 2
    logs.configure(verbose=args.verbose, as_json=settings.log_json)
    logs.install(logs.secrets_of(settings))
    if args.command == "run":
        if not (settings.telegram.token or settings.zalo.token):
            print(render("no_token_demo", database=shown(settings.demo.database_url)))
            return _demo(settings)
        return _run(settings)
    if args.command == "demo":
        return _demo(settings)
    if args.command == "db":
        return cli_db.run(args, settings)
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
    try:
        asyncio.run(serve(settings))
    except StartError as exc:
        print(exc.line(), file=sys.stderr)
        return 2
    return 0


async def serve(settings: Settings) -> None:
    """The bot until SIGINT or SIGTERM, then a graceful stop (also used by bench/surveys.py). A failed
    start raises StartError with every connection closed, and its log lines held back (logs.held_back)."""
    from bot.app import App

    app = App(settings)
    with logs.held_back():
        await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop()


def _demo(settings: Settings) -> int:
    from bot.demo import run_demo

    try:
        with contextlib.suppress(KeyboardInterrupt, EOFError):
            asyncio.run(run_demo(settings))
    except StartError as exc:
        print(exc.line(), file=sys.stderr)
        return 2
    return 0


async def _with_session(settings: Settings, action: Callable[[AsyncSession], Awaitable[int]]) -> int:
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


async def _admin(args: argparse.Namespace, session: AsyncSession) -> int:
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
        for group, linked in await admin.list_groups(session):
            state = WORDS["group_active"] if group.active else WORDS["group_inactive"]
            print(f"{group.platform}\t{group.chat_id}\t{state}\t{linked.code if linked else '-'}\t{group.title}")
    return 0


async def _add_place(args: argparse.Namespace, session: AsyncSession) -> str:
    if args.official:
        place, unit = await admin.add_official_commune(
            session, args.kind, args.official, args.province, args.code, args.parent
        )
        return render("admin_official_added", place=place, unit=unit)
    if args.province:
        raise admin.AdminError("admin_province_needs_official")
    place = await admin.add_place(session, args.kind, args.code or "", args.name or "", args.parent)
    return render("admin_place_added", place=place)


async def _invite(args: argparse.Namespace, session: AsyncSession, settings: Settings) -> int:
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


def _media_files(folder: Path) -> dict[str, bytes]:
    """The files a form names (select_one_from_file's lists): every file of the folder, by its name."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


async def _surveys(args: argparse.Namespace, session: AsyncSession, settings: Settings) -> int:
    if args.command == "export":
        naming: Naming = "name" if args.names else "label"
        exported = await admin.export_answers(session, Catalog(), args.survey, args.place, args.format,
                                              settings.handler.timezone, ExportOptions(naming, naming),
                                              public_url=settings.handler.links.console_url)
        out = Path(args.out or f"{args.survey}-{args.place}.{args.format}".lower())
        await asyncio.to_thread(out.write_bytes, exported.content)
        print(render("export_written", path=str(out), households=exported.households, left_out=exported.left_out))
    elif args.survey_command == "import":
        path = Path(args.path)
        media_dir = Path(args.media) if args.media else None
        try:
            content = await asyncio.to_thread(path.read_bytes)
            media = await asyncio.to_thread(_media_files, media_dir) if media_dir else {}
        except OSError as exc:
            where = exc.filename or path
            print(render("survey_file_unreadable", path=str(where), reason=exc.strerror or str(exc)), file=sys.stderr)
            return 1
        survey = await admin.import_survey(session, path.name, content, media)
        print(render("survey_imported", survey=survey, questions=len(survey.questions)))
    else:
        catalog = Catalog()
        await catalog.refresh(session)
        for survey in catalog.all():
            print(f"{survey.code}\t{len(survey.questions)}\t{survey.source}\t{survey.title}")
    return 0


async def _poster(args: argparse.Namespace, session: AsyncSession, settings: Settings) -> int:
    place = await place_by_code(session, args.place)
    if place is None:
        raise admin.AdminError("admin_unknown_place", code=args.place)
    links = BotLinks(await _telegram_username(settings.telegram), settings.zalo.share_url)
    pages = await pages_for(session, place, links)
    if not pages:
        raise admin.AdminError("poster_no_villages", name=place.name, code=place.code)
    out = Path(args.out or f"poster-{place.code}.pdf".lower())
    pdf = await asyncio.to_thread(poster_pdf, pages)
    await asyncio.to_thread(out.write_bytes, pdf)
    print(render("poster_written", path=str(out), pages=len(pages)))
    return 0


async def _telegram_username(telegram: ChannelSettings) -> str:
    """The bot's username for the poster's deep links: `telegram.username`, else getMe with the token."""
    if telegram.username:
        return telegram.username
    if telegram.token:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
                http.get(f"{telegram.api_url}/bot{telegram.token}/getMe") as response,
            ):
                username = (await response.json()).get("result", {}).get("username", "")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            username = ""  # the reason may quote the URL, which holds the token: the template says what to do
        if username:
            return username
    raise admin.AdminError("poster_needs_username")


async def _handbook(args: argparse.Namespace, session: AsyncSession) -> int:
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
