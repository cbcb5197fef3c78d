"""Session revocation: signing out, a password change and ``giamsat user disable`` void
every session cookie issued before (a per-user epoch signed into the cookie)."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from reporthelp import csrf_of, login, make_users

from collector.cli import main
from collector.config import Config
from collector.store import Database
from reports.auth import add_user, set_disabled


def second_browser(c: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another client on the same app holding a copy of ``c``'s session cookie (a second
    browser, or a stolen cookie)."""
    other = httpx.AsyncClient(transport=c._transport, base_url=c.base_url)  # noqa: SLF001
    other.cookies.update(c.cookies)
    return other


async def can_read(c: httpx.AsyncClient) -> bool:
    r = await c.get("/agencies/H26")
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


async def signed_in(client: httpx.AsyncClient, db: Database) -> httpx.AsyncClient:
    await make_users(db)
    assert (await login(client, "hanoi", "hanoi-password")).status_code == 303
    return client


async def test_logout_voids_every_copy_of_the_cookie(client: httpx.AsyncClient,
                                                     db: Database) -> None:
    c = await signed_in(client, db)
    old_cookie = c.cookies["gs_session"]
    async with second_browser(c) as b:
        assert await can_read(c) and await can_read(b)
        token = csrf_of((await c.get("/settings")).text)
        assert (await c.post("/logout", data={"csrf_token": token})).status_code == 303
        assert not await can_read(c)
        assert not await can_read(b)  # the other browser's copy is void too
    replay = httpx.AsyncClient(transport=c._transport, base_url=c.base_url)  # noqa: SLF001
    async with replay:
        replay.cookies.set("gs_session", old_cookie)
        assert not await can_read(replay)
        r = await replay.get("/api/v1/agencies/H26/totals")
        assert r.status_code == 401  # the API does not take the void session either
    # signing in again works, with a new cookie
    assert (await login(c, "hanoi", "hanoi-password")).status_code == 303
    assert await can_read(c)


async def test_password_change_and_disable_void_sessions(client: httpx.AsyncClient,
                                                         db: Database) -> None:
    c = await signed_in(client, db)
    assert await can_read(c)
    await add_user(db, "hanoi", "a-new-password", "agency", "H26")  # as `giamsat user add`
    assert not await can_read(c)
    assert (await login(c, "hanoi", "hanoi-password")).status_code == 401
    assert (await login(c, "hanoi", "a-new-password")).status_code == 303
    assert await can_read(c)
    assert await set_disabled(db, "hanoi")
    assert not await can_read(c)
    assert (await login(c, "hanoi", "a-new-password")).status_code == 401
    assert await set_disabled(db, "hanoi", False)
    assert not await can_read(c)  # enabling again does not revive old cookies
    assert (await login(c, "hanoi", "a-new-password")).status_code == 303
    assert await can_read(c)
    assert not await set_disabled(db, "nobody")


async def test_cli_user_disable(client: httpx.AsyncClient, db: Database, config: Config,
                                capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    c = await signed_in(client, db)
    url = config.database_url
    code = await asyncio.to_thread(main, ["--database-url", url, "user", "disable", "hanoi"])
    assert code == 0 and "hanoi disabled" in capsys.readouterr().out
    assert not await can_read(c)
    assert await asyncio.to_thread(main, ["--database-url", url, "user", "disable", "x"]) == 2
    assert await asyncio.to_thread(main, ["--database-url", url, "user", "enable",
                                          "hanoi"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("changed-password\n"))
    assert await asyncio.to_thread(main, ["--database-url", url, "user", "add", "hanoi",
                                          "--role", "agency", "--agency", "H26",
                                          "--password-stdin"]) == 0
    assert (await login(c, "hanoi", "changed-password")).status_code == 303
    assert await can_read(c)
