"""tools/mariadb_server.py logic that needs no server: install-on-demand and secret-free info."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tools import mariadb_server
from tools.mariadb_server import ServerInfo


def test_missing_binaries_trigger_the_project_setup_script(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    installed = {"done": False}

    def fake_run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        installed["done"] = True
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(mariadb_server, "_find_binary", lambda names: "/usr/sbin/x" if installed["done"] else None)
    monkeypatch.setattr("tools.mariadb_server.subprocess.run", fake_run)
    assert mariadb_server.ensure_installed() == "/usr/sbin/x"
    assert calls and calls[0][0] == "bash" and calls[0][1].endswith("tools/setup.sh") and calls[0][2] == "mariadb"


def test_failed_install_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mariadb_server, "_find_binary", lambda names: None)
    monkeypatch.setattr(
        "tools.mariadb_server.subprocess.run", lambda cmd, **_: subprocess.CompletedProcess(cmd, 1, "", "apt failed")
    )
    with pytest.raises(mariadb_server.MariaDBServerError, match="apt failed"):
        mariadb_server.ensure_installed()


def test_server_info_hides_the_admin_password() -> None:
    info = ServerInfo("127.0.0.1", 3307, "/s", "root", "s3cret-pw", "/d", 1)
    assert "s3cret-pw" not in repr(info)
    assert info.as_connection_input() == {
        "mode": "direct",
        "host": "127.0.0.1",
        "port": 3307,
        "user": "root",
        "password": "s3cret-pw",
    }
