"""The official list of communes: `langso admin place add --official`, `langso admin place search`, and
the look-up behind them (vietnam-provinces, 2025 divisions)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from handlers import communes
from tests.cli_helpers import ROOT, langso


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and " INFO " not in line]


def _places(url: str) -> list[list[str]]:
    listed = langso("admin", "place", "list", env={"LANGSO_DATABASE_URL": url})
    assert listed.returncode == 0, listed.stderr
    return [line.split("\t") for line in listed.stdout.splitlines()]


def test_the_list_is_the_2025_one() -> None:
    units = communes.officials()
    assert len(units) == 3321
    assert len({unit.province for unit in units}) == 34
    assert [unit.code for unit in units] == sorted(unit.code for unit in units)


def test_an_exact_name_adds_the_commune_with_its_official_name_and_code(sqlite_url: str) -> None:
    env = {"LANGSO_DATABASE_URL": sqlite_url}
    added = langso("admin", "place", "add", "--kind", "commune", "--official", "Gia Phú", "--province", "Lào Cai", env=env)
    assert added.returncode == 0, added.stderr
    assert "Xã Gia Phú, Lào Cai (mã chính thức 02923)" in added.stdout
    assert "XA-02923" in added.stdout
    village = langso("admin", "place", "add", "--kind", "village", "--code", "GP-THON-1", "--name", "Thôn Làng Mới",
                      "--parent", "XA-02923", env=env)
    assert village.returncode == 0, village.stderr  # villages stay free text under the commune
    again = langso("admin", "place", "add", "--kind", "commune", "--official", "gia phu", "--province", "lao cai", env=env)
    assert again.returncode == 1
    assert "XA-02923 đã có rồi" in again.stderr
    assert _places(sqlite_url) == [
        ["GP-THON-1", "village", "Thôn Làng Mới", "XA-02923"],
        ["XA-02923", "commune", "Xã Gia Phú", ""],
    ]


def test_without_diacritics_or_prefix_and_with_a_code_of_ones_own(sqlite_url: str) -> None:
    env = {"LANGSO_DATABASE_URL": sqlite_url}
    added = langso("admin", "place", "add", "--kind", "commune", "--official", "PHUONG hoang mai", "--province",
                   "nghe an", "--code", "p-hm", env=env)
    assert added.returncode == 0, added.stderr
    assert "Phường Hoàng Mai, Nghệ An (mã chính thức 17110)" in added.stdout
    assert "P-HM" in added.stdout
    assert _places(sqlite_url) == [["P-HM", "commune", "Phường Hoàng Mai", ""]]


def test_an_ambiguous_name_lists_every_match_with_code_and_province_and_adds_nothing(sqlite_url: str) -> None:
    env = {"LANGSO_DATABASE_URL": sqlite_url}
    refused = langso("admin", "place", "add", "--kind", "commune", "--official", "Binh Minh", env=env)
    assert refused.returncode == 1
    listed = [line for line in _lines(refused.stderr) if line.startswith("- ")]
    assert listed == [
        "- Xã Bình Minh, Thành phố Hà Nội (mã 10141)",
        "- Xã Bình Minh, Ninh Bình (mã 14623)",
        "- Xã Bình Minh, Nghệ An (mã 17515)",
        "- Xã Bình Minh, Quảng Ngãi (mã 21085)",
        "- Phường Bình Minh, Tây Ninh (mã 25480)",
        "- Xã Bình Minh, Đồng Nai (mã 26278)",
        "- Phường Bình Minh, Vĩnh Long (mã 29771)",
    ]
    assert "Chưa thêm gì" in refused.stderr
    assert _places(sqlite_url) == []
    by_code = langso("admin", "place", "add", "--kind", "commune", "--official", "17515", env=env)
    assert by_code.returncode == 0, by_code.stderr
    assert _places(sqlite_url) == [["XA-17515", "commune", "Xã Bình Minh", ""]]


def test_an_unknown_name_says_so_and_suggests_the_closest(sqlite_url: str) -> None:
    env = {"LANGSO_DATABASE_URL": sqlite_url}
    refused = langso("admin", "place", "add", "--kind", "commune", "--official", "Gia Phuu", "--province", "lao cai",
                     env=env)
    assert refused.returncode == 1
    assert 'Không có "Gia Phuu" ở Lào Cai' in refused.stderr
    suggestions = [line for line in _lines(refused.stderr) if line.startswith("- ")]
    assert suggestions[0] == "- Xã Gia Phú, Lào Cai (mã 02923)"
    assert len(suggestions) == 3
    province = langso("admin", "place", "add", "--kind", "commune", "--official", "Gia Phú", "--province", "Lào Kai",
                      env=env)
    assert province.returncode == 1
    assert 'tỉnh, thành phố "Lào Kai"' in province.stderr
    assert "Lào Cai" in province.stderr
    assert _places(sqlite_url) == []


def test_search_prints_name_kind_code_province_best_first(sqlite_url: str) -> None:
    env = {"LANGSO_DATABASE_URL": sqlite_url}
    found = langso("admin", "place", "search", "Gia Phú", env=env)
    assert found.returncode == 0, found.stderr
    rows = [line.split("\t") for line in found.stdout.splitlines()]
    assert rows[:3] == [
        ["Xã Gia Phú", "xã", "02923", "Lào Cai"],
        ["Xã Gia Phúc", "xã", "11050", "Thành phố Hải Phòng"],
        ["Xã Gia Phù", "xã", "03922", "Sơn La"],
    ]
    plain = langso("admin", "place", "search", "gia phu", env=env)
    assert [line.split("\t")[2] for line in plain.stdout.splitlines()][:2] == ["02923", "03922"]  # equal: by code
    nothing = langso("admin", "place", "search", "qqqqqq", env=env)
    assert nothing.returncode == 1
    assert 'giống "qqqqqq"' in nothing.stderr


@pytest.mark.parametrize(
    ("name", "province", "codes"),
    [
        ("Gia Phù", None, [3922]),  # diacritics tell Gia Phù (Sơn La) from Gia Phú (Lào Cai)
        ("gia phu", None, [2923, 3922]),
        ("XÃ GIA PHÚ", None, [2923]),
        ("Gia Phu", "Yên Bái", [2923]),  # a province merged in 2025 names the one it joined
        ("con dao", "TP. Hồ Chí Minh", [26732]),  # an "đặc khu"
        ("Đặc khu Côn Đảo", None, [26732]),
        ("02923", None, [2923]),
        ("Phường Gia Phú", None, []),  # the kind, when written, counts
    ],
)
def test_find(name: str, province: str | None, codes: list[int]) -> None:
    assert [unit.code for unit in communes.find(name, province).found] == codes


def test_a_wrong_kind_suggests_the_same_name() -> None:
    lookup = communes.find("Phường Gia Phú", "Lào Cai")
    assert [unit.name for unit in lookup.closest] == ["Xã Gia Phú", "Xã Gia Phù"]


def test_the_list_is_loaded_only_when_asked_for() -> None:
    """`langso run` and every other command start without loading the 3,321 units."""
    probe = "import sys, bot.cli, bot.app; print(sorted(m for m in sys.modules if m.startswith('vietnam_provinces')))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
