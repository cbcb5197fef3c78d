"""``giamsat …`` commands, in process (``main(argv)``) and once through the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import main
from collector.config import Config
from collector.store import migration_files


def run(capsys: pytest.CaptureFixture[str], config: Config, *argv: str) -> tuple[int, str, str]:
    code = main(["--database-url", config.database_url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def applied(dialect: str) -> str:
    return f"applied: {', '.join(p.stem for p in migration_files(dialect))}\n"


def test_migrate_twice(capsys, config: Config) -> None:
    # the PostgreSQL test database is a copy of an already migrated template
    first = "schema up to date\n" if config.is_postgres else applied("sqlite")
    assert run(capsys, config, "migrate") == (0, first, "")
    assert run(capsys, config, "migrate") == (0, "schema up to date\n", "")


def test_migrate_console_script(tmp_path: Path) -> None:
    env = {**os.environ, "GIAMSAT_DATABASE_URL": str(tmp_path / "x.db")}
    exe = Path(sys.executable).with_name("giamsat")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "collector.cli"]
    first = subprocess.run([*cmd, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout == applied("sqlite")
    again = subprocess.run([*cmd, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert again.stdout == "schema up to date\n"


def test_site_add_list_snippet(capsys, config: Config) -> None:
    code, out, err = run(capsys, config, "site", "add", "47", "--agency", "H26", "--kind",
                         "portal", "--name", "Cổng TTĐT Hà Nội", "--host", "WWW.Hanoi.gov.vn",
                         "--host", "hanoi.gov.vn:443", "--registered-on", "2024-04-05")
    assert (code, err) == (0, "")
    assert out == "site 47 saved: Cổng TTĐT Hà Nội (hanoi.gov.vn)\n"
    run(capsys, config, "site", "add", "9", "--agency", "BYT", "--kind", "dvc", "--name",
        "DVC Bộ Y tế", "--host", "dichvucong.moh.gov.vn", "--optional")
    code, out, _ = run(capsys, config, "site", "list")
    assert code == 0
    assert out.splitlines() == [
        "9\tBYT\tdvc\toptional\tDVC Bộ Y tế\tdichvucong.moh.gov.vn",
        "47\tH26\tportal\trequired\tCổng TTĐT Hà Nội\thanoi.gov.vn",
    ]
    code, out, _ = run(capsys, config, "snippet", "47")
    assert code == 0
    assert "_govaq.push(['setSiteId', '47']);" in out
    assert "var u = 'http://127.0.0.1:8000';" in out


def test_snippet_public_url(capsys, config: Config) -> None:
    code, out, _ = run(capsys, config, "snippet", "5", "--public-url", "https://emc.gov.vn")
    assert code == 0 and "var u = 'https://emc.gov.vn';" in out


def test_site_add_refused(capsys, config: Config) -> None:
    code, out, err = run(capsys, config, "site", "add", "5", "--agency", "NOPE", "--kind",
                         "portal", "--name", "X", "--host", "x.vn")
    assert code == 2 and out == ""
    assert err == "giamsat: agency: unknown agency code 'NOPE'\n"


def test_site_import(capsys, config: Config, tmp_path: Path) -> None:
    f = tmp_path / "sites.csv"
    f.write_text("id,agency,kind,name,hosts\n1,H26,portal,A,a.vn\nx,H26,portal,B,b.vn\n"
                 "2,H26,dvc,C,c.vn\n", encoding="utf-8")
    code, out, err = run(capsys, config, "site", "import", str(f))
    assert code == 1
    assert out == "2 site(s) saved, 1 row(s) refused\n"
    assert err == f"{f}:3: id: expected a positive number, got 'x'\n"
    code, out, _ = run(capsys, config, "site", "import", str(f))
    assert out == "2 site(s) saved, 1 row(s) refused\n"
    _, listing, _ = run(capsys, config, "site", "list")
    assert [line.split("\t")[0] for line in listing.splitlines()] == ["1", "2"]


def test_bad_environment(capsys, monkeypatch: pytest.MonkeyPatch, config: Config) -> None:
    monkeypatch.setenv("GIAMSAT_BATCH_MAX", "lots")
    code, _, err = run(capsys, config, "migrate")
    assert code == 2 and err == "giamsat: GIAMSAT_BATCH_MAX: expected int, got 'lots'\n"


def test_serve_refuses_workers_on_sqlite(capsys, config: Config) -> None:
    if config.is_postgres:  # it would serve: see test_workers.py for PostgreSQL
        pytest.skip("SQLite only")
    code, _, err = run(capsys, config, "serve", "--workers", "2")
    assert code == 2 and "needs PostgreSQL" in err
