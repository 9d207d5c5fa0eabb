"""QR posters for the nhà văn hóa: one A4 page per village, in large plain Vietnamese, with a QR code
that opens the village's deep link on Telegram (and one for the bot's Zalo link when configured) and
three numbered steps for people who have never scanned a code.

Plain Python, no chat needed: `langso poster` and `/poster` both call `pages_for` then `poster_pdf`.
Every sentence on the page is a template (messages/templates/poster_*.j2). The font is matplotlib's
DejaVu Sans, which carries every Vietnamese letter and is already installed with matplotlib.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.chat import ChatKind, Outgoing, Upload
from handlers.context import BotLinks, Turn
from handlers.people import place_by_code, villages_of
from handlers.permissions import Spot, may_make_poster
from handlers.villages import village_link_payload
from messages import render
from storage.models import Place, PlaceKind

if TYPE_CHECKING:
    from fpdf import FPDF

FONT = "DejaVuSans"
MARGIN = 15.0  # mm
QR_ALONE = 105.0  # mm: one code, as large as the page allows
QR_PAIR = 82.0  # mm: Telegram and Zalo side by side
QR_SCALE = 10  # pixels per module: sharp at any print size, the PDF keeps them lossless


@dataclass(frozen=True)
class PosterPage:
    village: str
    commune: str
    code: str
    telegram_url: str
    telegram_username: str
    zalo_url: str  # "": no Zalo code on the page


async def pages_for(session: AsyncSession, place: Place, links: BotLinks) -> list[PosterPage]:
    """A village's page, or one page per village of a commune (by name); [] for a commune without any."""
    commune: Place | None
    if place.kind == PlaceKind.COMMUNE:
        villages, commune = await villages_of(session, place), place
    else:
        villages = [place]
        commune = await session.get(Place, place.parent_id) if place.parent_id is not None else None
    return [
        PosterPage(
            village=v.name,
            commune=commune.name if commune else "",
            code=v.code,
            telegram_url=links.telegram(village_link_payload(v)) or "",
            telegram_username=links.telegram_username,
            zalo_url=links.zalo_share_url,
        )
        for v in villages
    ]


async def poster_command(turn: Turn, args: str) -> None:
    """/poster MÃ: staff of a village (or of a commune, for every village in it) get the poster as a PDF
    where the platform takes files and the bot's Telegram username is known; elsewhere, how to make it
    with `langso poster`."""
    code = args.strip()
    if turn.incoming.chat_kind is ChatKind.GROUP or not code:
        turn.say("poster_usage")
        return
    place = await place_by_code(turn.session, code)
    if place is None:
        turn.say("poster_unknown_place", code=code)
        return
    if not may_make_poster(await turn.actor(), Spot.of(place)):
        turn.say("poster_not_allowed")
        return
    links = turn.settings.links
    if turn.incoming.sends_files and links.telegram_username:
        pages = await pages_for(turn.session, place, links)
        pdf = await asyncio.to_thread(poster_pdf, pages)
        turn.say("poster_ready", place=place.name, pages=len(pages))
        turn.reply.messages.append(
            Outgoing(turn.incoming.chat, "", upload=Upload("document", f"poster-{place.code.lower()}.pdf", pdf))
        )
        return
    pages_count = len(await villages_of(turn.session, place)) if place.kind == PlaceKind.COMMUNE else 1
    turn.say("poster_from_shell", place=place.name, code=place.code, pages=pages_count,
             zalo=not turn.incoming.sends_files)


def qr_png(url: str) -> bytes:
    """The QR code of `url` as a PNG (error correction raised as far as the size allows)."""
    out = io.BytesIO()
    import segno  # loaded with the first poster, not at start-up

    segno.make(url, error="m", micro=False).save(out, kind="png", scale=QR_SCALE, border=4)
    return out.getvalue()


def poster_pdf(pages: Sequence[PosterPage]) -> bytes:
    """The A4 PDF, one page per village. CPU work: chat handlers run it in a thread."""
    from fpdf import FPDF  # loaded with the first poster, not at start-up

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    fonts = _font_dir()
    pdf.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
    for page in pages:
        _draw(pdf, page)
    return bytes(pdf.output())


@cache
def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _draw(pdf: FPDF, page: PosterPage) -> None:
    pdf.add_page()
    _centred(pdf, page.village, 36, 15, bold=True)
    if page.commune:
        _centred(pdf, page.commune, 24, 11)
    pdf.ln(4)
    _centred(pdf, render("poster_call"), 17, 8)
    pdf.ln(5)
    codes = [(page.telegram_url, render("poster_telegram"))]
    if page.zalo_url:
        codes.append((page.zalo_url, render("poster_zalo", code=page.code)))
    _codes(pdf, codes)
    pdf.ln(6)
    for step in render("poster_steps", zalo=bool(page.zalo_url), code=page.code).splitlines():
        _step(pdf, step)
    pdf.ln(3)
    _centred(pdf, render("poster_help", username=page.telegram_username, code=page.code), 13, 6.5)


def _centred(pdf: FPDF, text: str, size: float, line: float, *, bold: bool = False) -> None:
    pdf.set_font(FONT, "B" if bold else "", size)
    pdf.multi_cell(0, line, text, align="C", new_x="LMARGIN", new_y="NEXT")


def _codes(pdf: FPDF, codes: list[tuple[str, str]]) -> None:
    """QR codes side by side, each with its caption (first line bold) underneath."""
    side = QR_ALONE if len(codes) == 1 else QR_PAIR
    gap = (pdf.epw - side * len(codes)) / (len(codes) + 1)
    top = pdf.get_y()
    bottom = top
    for n, (url, caption) in enumerate(codes):
        x = pdf.l_margin + gap + n * (side + gap)
        pdf.image(io.BytesIO(qr_png(url)), x=x, y=top, w=side, h=side)
        pdf.set_xy(x - gap / 2, top + side + 1)
        head, _, rest = caption.partition("\n")
        pdf.set_font(FONT, "B", 18)
        pdf.multi_cell(side + gap, 8, head, align="C", new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "", 13)
        pdf.multi_cell(side + gap, 6.5, rest, align="C", new_x="LEFT", new_y="NEXT")
        bottom = max(bottom, pdf.get_y())
    pdf.set_xy(pdf.l_margin, bottom)


def _step(pdf: FPDF, step: str) -> None:
    """"Bước 1: …" with its number in bold, wrapped across the page."""
    number, _, text = step.partition(":")
    pdf.set_font(FONT, "B", 16)
    pdf.write(8, f"{number}:")
    pdf.set_font(FONT, "", 16)
    pdf.write(8, text)
    pdf.ln(10)
