"""`make run` without a token: the local demo serves the web console on 127.0.0.1 and prints a login
link for its commune official, which opens the console on the demo's commune."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from bot.demo import run_demo
from tests.conftest import settings_for
from tests.console_helpers import client


async def test_the_demo_prints_a_login_link_for_its_official(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'bot.db'}", demo={"database_url": f"sqlite:///{tmp_path / 'demo.db'}"})
    read, write = os.pipe()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read))
    demo = asyncio.create_task(run_demo(settings))
    printed = ""
    for _ in range(200):
        printed += capsys.readouterr().out
        if found := re.search(r"(http://127\.0\.0\.1:\d+)(/dang-nhap/\S+)", printed):
            break
        await asyncio.sleep(0.1)
    assert found, printed
    root, path = found.groups()
    try:
        async with client() as browser:
            async with browser.post(root + path) as home:
                text = await home.text()
            assert home.status == 200
            assert "Xã Hòa Bình" in text
            assert "Thôn Đông" in text
            assert "Lò Văn Minh" in text
    finally:
        os.write(write, b":thoat\n")
        await asyncio.wait_for(demo, 30)
        os.close(write)
