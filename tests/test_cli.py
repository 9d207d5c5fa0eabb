"""The `langso` command as an operator uses it."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import config_in, langso


def test_admin_commands_build_the_place_tree(tmp_path: Path) -> None:
    env = {"LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    add = ("admin", "place", "add")
    assert langso(*add, "--kind", "commune", "--code", "xa-1", "--name", "Xã Một", env=env).returncode == 0
    added = langso(*add, "--kind", "village", "--code", "T1", "--name", "Thôn Một", "--parent", "XA-1", env=env)
    assert added.returncode == 0
    assert "Đã thêm thôn Thôn Một" in added.stdout
    orphan = langso(*add, "--kind", "village", "--code", "T2", "--name", "Thôn Hai", "--parent", "KHONG", env=env)
    assert orphan.returncode == 1
    assert "KHONG" in orphan.stderr
    grant = ("admin", "role", "grant", "--platform", "telegram", "--user-id", "77")
    granted = langso(*grant, "--role", "village_head", "--place", "t1", env=env)
    assert granted.returncode == 0
    wrong = langso(*grant, "--role", "commune_official", "--place", "T1", env=env)
    assert wrong.returncode == 1
    assert "phải được cấp quyền trên một xã" in wrong.stderr
    listed = langso("admin", "place", "list", env=env).stdout.splitlines()
    assert listed == ["T1\tvillage\tThôn Một\tXA-1", "XA-1\tcommune\tXã Một\t"]
    assert langso("db", "upgrade", env=env).returncode == 0


def test_bad_settings_stop_start_up_with_one_clear_line(tmp_path: Path) -> None:
    for env, setting in [
        ({"LANGSO_DATABASE_URL": "mysql://x/y"}, "LANGSO_DATABASE_URL"),
        ({"LANGSO_TELEGRAM_TOKEN": "no-colon"}, "LANGSO_TELEGRAM_TOKEN"),
        ({"LANGSO_CONFIG": str(tmp_path / "missing.toml")}, "LANGSO_CONFIG"),
        ({"LANGSO_TELEGRAM_API_URL": "ftp://x", "LANGSO_TELEGRAM_TOKEN": "1:a"}, "LANGSO_TELEGRAM_API_URL"),
    ]:
        result = langso("run", env=env)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert setting in result.stderr, result.stderr


def test_run_without_a_token_is_the_local_demo_on_its_own_database(tmp_path: Path) -> None:
    env = {"LANGSO_CONFIG": str(config_in(tmp_path)), "LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'real.db'}"}
    script = ":la 2\n/thongbao Họp thôn tối nay\n5\n1\n:thoat\n"
    result = langso("run", env=env, stdin=script)
    assert result.returncode == 0
    assert "Chưa có LANGSO_TELEGRAM_TOKEN" in result.stdout
    assert str(tmp_path / "langso-demo.db") in result.stdout
    assert "nhóm nhom-thon-1" in result.stdout
    assert "Họp thôn tối nay" in result.stdout
    assert (tmp_path / "langso-demo.db").exists()
    assert not (tmp_path / "real.db").exists()


def test_help_and_mistakes_are_in_vietnamese() -> None:
    helped = langso("--help")
    assert helped.returncode == 0
    assert "cách dùng: langso" in helped.stdout
    assert "langso db where" in helped.stdout
    assert "show this help" not in helped.stdout
    assert "positional arguments" not in helped.stdout
    wrong = langso("admin", "place", "add", "--kind", "town")
    assert wrong.returncode == 2
    assert "lỗi: tham số --kind: không có lựa chọn 'town'" in wrong.stderr
    missing = langso("export", "--survey", "x")
    assert "thiếu tham số bắt buộc: --place" in missing.stderr
