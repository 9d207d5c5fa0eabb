"""QR posters: the PDF reads back in full Vietnamese, its QR codes decode from the rendered page to the
village's deep link, a commune gives one page per village; /poster is for staff only."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp

from bot.config import ConfigError
from handlers import admin
from handlers.posters import PosterPage, poster_pdf
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from tests.cli_helpers import langso
from tests.conftest import TOKEN, settings_for
from tests.fake_telegram import FakeTelegram
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, Harness

BOT = "langso_test_bot"
ZALO_LINK = "https://zalo.me/2345678901234567890"
VILLAGES = (("THON-2", "Thôn Tây"), ("THON-1", "Thôn Đông"), ("THON-3", "Bản Nà Lầu"))
# every Vietnamese letter that carries a mark, both cases: none may come out as a blank box
VIETNAMESE = "àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"


def _pages(pdf: bytes) -> list[tuple[str, list[str]]]:
    """Each page's text, and what its QR codes say when the page is rendered as a phone would see it."""
    found = []
    for page in pdfium.PdfDocument(pdf):
        image = page.render(scale=2).to_pil()
        found.append((page.get_textpage().get_text_range(), [code.text for code in zxingcpp.read_barcodes(image)]))
    return found


async def _commune(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
            for code, name in VILLAGES:
                await admin.add_place(session, "village", code, name, "XA1")
            await session.commit()
    finally:
        await engine.dispose()


def _config(tmp_path: Path, telegram: dict[str, str], zalo: dict[str, str]) -> str:
    """A config file with these [telegram] and [zalo] settings (the rest are defaults)."""
    sections = "".join(
        f"[{name}]\n" + "".join(f'{key} = "{value}"\n' for key, value in values.items())
        for name, values in (("telegram", telegram), ("zalo", zalo))
    )
    path = tmp_path / "config.toml"
    path.write_text(f'database_url = "sqlite:///unused.db"\ntimezone = "Asia/Ho_Chi_Minh"\n{sections}', encoding="utf-8")
    return str(path)


async def test_a_commune_poster_has_one_page_per_village_in_full_vietnamese_with_working_codes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    await _commune(url)
    out = tmp_path / "xa1.pdf"
    config = _config(tmp_path, {"username": BOT}, {"share_url": ZALO_LINK})
    done = await asyncio.to_thread(
        langso, "poster", "--place", "xa1", "--out", str(out), env={"LANGSO_DATABASE_URL": url, "LANGSO_CONFIG": config}
    )
    assert done.returncode == 0, done.stderr
    assert "3 trang" in done.stdout

    pages = _pages(out.read_bytes())
    assert len(pages) == 3
    for (text, codes), (code, village) in zip(pages, sorted(VILLAGES, key=lambda v: v[1]), strict=True):
        assert village in text
        assert "Xã Hòa Bình" in text
        assert all(f"Bước {n}:" in text for n in (1, 2, 3))
        assert f"/thamgia {code}" in text
        assert "Quét mã QR bằng điện thoại" in text
        assert codes == [f"https://t.me/{BOT}?start=thon_{code}", ZALO_LINK]


async def test_a_village_poster_without_zalo_has_the_telegram_code_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    await _commune(url)
    out = tmp_path / "thon-1.pdf"
    done = await asyncio.to_thread(
        langso, "poster", "--place", "THON-1", "--out", str(out),
        env={"LANGSO_DATABASE_URL": url, "LANGSO_CONFIG": _config(tmp_path, {"username": BOT}, {})},
    )
    assert done.returncode == 0, done.stderr
    [(text, codes)] = _pages(out.read_bytes())
    assert codes == [f"https://t.me/{BOT}?start=thon_THON-1"]
    assert "Thôn Đông" in text
    assert "Zalo" not in text


async def test_the_username_comes_from_telegram_when_not_configured(tmp_path: Path, fake: FakeTelegram) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    await _commune(url)
    out = tmp_path / "thon-3.pdf"
    env = {"LANGSO_DATABASE_URL": url, "LANGSO_TELEGRAM_TOKEN": TOKEN, "LANGSO_TELEGRAM_API_URL": fake.url}
    done = await asyncio.to_thread(langso, "poster", "--place", "THON-3", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    [(_text, codes)] = _pages(out.read_bytes())
    assert codes == [f"https://t.me/{fake.bot_username}?start=thon_THON-3"]


async def test_without_a_username_or_a_token_the_operator_is_told_what_to_set(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    await _commune(url)
    done = await asyncio.to_thread(langso, "poster", "--place", "THON-1", env={"LANGSO_DATABASE_URL": url})
    assert done.returncode == 1
    assert "username" in done.stderr
    assert "LANGSO_TELEGRAM_TOKEN" in done.stderr
    unknown = await asyncio.to_thread(
        langso, "poster", "--place", "KHONG", env={"LANGSO_DATABASE_URL": url, "LANGSO_TELEGRAM_TOKEN": "1:a"}
    )
    assert unknown.returncode == 1
    assert "KHONG" in unknown.stderr


def test_every_vietnamese_letter_reads_back_from_the_pdf(caplog: pytest.LogCaptureFixture) -> None:
    name = f"Thôn {VIETNAMESE} {VIETNAMESE.upper()}"
    page = PosterPage(name, "Xã Hòa Bình", "THON-1", f"https://t.me/{BOT}?start=thon_THON-1", BOT, "")
    with caplog.at_level(logging.WARNING, logger="fpdf"):
        [(text, _codes)] = _pages(poster_pdf([page]))
    assert not caplog.records  # fpdf2 warns of glyphs the font lacks
    letters = "".join(text.split())  # the name wraps across lines
    assert VIETNAMESE in letters
    assert VIETNAMESE.upper() in letters


async def test_poster_in_chat_is_for_the_staff_of_that_place(harness: Harness) -> None:
    """The running bot knows its username from getMe: staff get the PDF itself."""
    _ready, document = await harness.send(TECH, "/poster THON-1", expect=2)
    assert document.params["document"].filename == "poster-thon-1.pdf"
    [(text, codes)] = _pages(document.params["document"].content)
    assert "Thôn 1" in text
    assert codes == [f"https://t.me/{BOT}?start=thon_THON-1"]
    ready, document = await harness.send(OFFICIAL, "/poster XA1", expect=2)
    assert "3 trang" in ready.text
    assert len(_pages(document.params["document"].content)) == 3
    [resident] = await harness.send(RESIDENT, "/poster THON-1")
    assert "trưởng thôn, cán bộ xã và tổ công nghệ số" in resident.text
    assert "langso" not in resident.text
    [head] = await harness.send(HEAD, "/poster XA1")  # head of every village, but not of the commune
    assert "langso" not in head.text
    [unknown] = await harness.send(TECH, "/poster KHONG")
    assert "KHONG" in unknown.text


def test_a_zalo_link_that_is_not_a_web_address_stops_start_up(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"zalo\.share_url"):
        settings_for(sqlite_url, zalo={"share_url": "zalo.me/123"})
