"""Access rules, sign-in/out, CSRF, session cookie attributes, API tokens, CLI accounts."""

from __future__ import annotations

from reporthelp import csrf_of, login

from collector.cli import main as cli


async def test_anonymous_sees_only_public_pages(report_client) -> None:
    c = report_client
    assert (await c.get("/")).status_code == 200  # overview public by default
    for path in ("/sites/47", "/agencies/H26", "/dvc", "/settings", "/sites/999"):
        r = await c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")
    for path in ("/api/v1/sites/47/totals", "/api/v1/agencies/H26/totals"):
        r = await c.get(path)
        assert r.status_code == 401 and "www-authenticate" in r.headers
    assert (await c.get("/api/v1/national/totals")).status_code == 200


async def test_agency_user_cannot_read_another_agency(report_client, db) -> None:
    from reports.auth import add_token

    c = report_client
    r = await login(c, "byt", "byt-password-1")
    assert r.status_code == 303
    assert (await c.get("/sites/60")).status_code == 200  # its own site
    assert (await c.get("/agencies/BYT")).status_code == 200
    for path in ("/sites/47", "/sites/48", "/agencies/H26", "/sites/47?table=pages&format=csv",
                 "/sites/47/install"):
        r = await c.get(path)
        assert r.status_code == 403, path
        assert "Cổng TTĐT Hà Nội" not in r.text
    token = await add_token(db, "byt")
    h = {"authorization": f"Bearer {token}"}
    assert (await c.get("/api/v1/sites/60/totals", headers=h)).status_code == 200
    for path in ("/api/v1/sites/47/totals", "/api/v1/agencies/H26/sites",
                 "/api/v1/sites/48/top_page"):
        r = await c.get(path, headers=h)
        assert r.status_code == 403, path
        assert "visits" not in r.text
    # a made-up token is nobody
    r = await c.get("/api/v1/sites/60/totals", headers={"authorization": "Bearer gs_nope"})
    assert r.status_code == 401


async def test_admin_reads_everything(report_client) -> None:
    c = report_client
    await login(c, "bo", "ministry-password")
    for path in ("/sites/47", "/sites/60", "/agencies/H26", "/agencies/BYT", "/dvc"):
        assert (await c.get(path)).status_code == 200, path
    assert (await c.get("/sites/999")).status_code == 404
    assert (await c.get("/agencies/NOPE")).status_code == 404


async def test_login_wrong_password_and_cookie_flags(report_client) -> None:
    c = report_client
    r = await login(c, "bo", "wrong-password")
    assert r.status_code == 401 and "Sai tên đăng nhập" in r.text
    r = await login(c, "nobody", "whatever-password")
    assert r.status_code == 401
    r = await login(c, "bo", "ministry-password")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "gs_session=" in cookie


async def test_login_next_is_local_only(report_client) -> None:
    c = report_client
    page = await c.get("/login")
    r = await c.post("/login?next=//evil.example/", data={
        "username": "bo", "password": "ministry-password", "csrf_token": csrf_of(page.text),
        "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/"


async def test_csrf_on_login_logout_settings(report_client) -> None:
    c = report_client
    await c.get("/login")
    r = await c.post("/login", data={"username": "bo", "password": "ministry-password"})
    assert r.status_code == 403
    r = await c.post("/login", data={"username": "bo", "password": "ministry-password",
                                     "csrf_token": "forged"})
    assert r.status_code == 403
    assert (await c.get("/sites/47")).status_code == 303  # still anonymous
    await login(c, "bo", "ministry-password")
    page = (await c.get("/settings")).text
    token = csrf_of(page)
    r = await c.post("/settings", data={"period": "7d"})
    assert r.status_code == 403
    r = await c.post("/settings", data={"period": "7d", "csrf_token": token})
    assert r.status_code == 200 and "Đã lưu." in r.text
    # the setting is the default period now
    assert 'class="on">7 ngày' in (await c.get("/sites/47")).text
    r = await c.post("/logout", data={})
    assert r.status_code == 403
    assert (await c.get("/sites/47")).status_code == 200  # logout refused: still signed in
    r = await c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303
    assert (await c.get("/sites/47")).status_code == 303


async def test_tampered_session_cookie_is_ignored(report_client) -> None:
    c = report_client
    await login(c, "hanoi", "hanoi-password")
    value = c.cookies.get("gs_session")
    c.cookies.set("gs_session", value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"),
                  domain="collector.test")
    assert (await c.get("/sites/47")).status_code == 303


async def test_public_pages_from_configuration(db, config) -> None:
    import dataclasses

    import httpx

    from collector.app import create_app

    app = create_app(dataclasses.replace(config, public_pages="dvc"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            assert (await c.get("/")).status_code == 303
            assert (await c.get("/dvc")).status_code == 200


async def test_cli_user_and_token(db, config, monkeypatch, capsys) -> None:
    import asyncio
    import io

    url = config.database_url
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert await asyncio.to_thread(cli, ["--database-url", url, "user", "add", "ha", "--role",
                                         "agency", "--agency", "H26", "--password-stdin"]) == 0
    assert await asyncio.to_thread(cli, ["--database-url", url, "token", "add", "ha"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("gs_")
    rows = await db.fetch_all("SELECT u.username, u.pw_hash, t.token_hash FROM users u "
                              "JOIN api_tokens t ON t.user_id = u.id")
    assert rows[0]["username"] == "ha" and rows[0]["pw_hash"].startswith("$argon2id$")
    assert token not in rows[0]["token_hash"]  # only its hash is stored
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert await asyncio.to_thread(cli, ["--database-url", url, "user", "add", "x", "--role",
                                         "admin", "--password-stdin"]) == 2


SITE_TABLES = ("pages", "entry", "sources", "referrers", "campaigns", "devices", "browsers",
               "os", "provinces", "hours", "dvc", "dossiers", "dropped", "daily")


async def test_agency_user_gets_no_export_of_another_agency(report_client, db) -> None:
    """Every CSV/JSON download of H26's site and agency pages, and every API report on
    them, by session or token, is refused to BYT's user; its own exports work."""
    from reports.api import REPORTS
    from reports.auth import add_token

    c = report_client
    assert (await login(c, "byt", "byt-password-1")).status_code == 303
    for fmt in ("csv", "json"):
        for table in SITE_TABLES:
            for site in (47, 48):
                r = await c.get(f"/sites/{site}?table={table}&format={fmt}&period=30d")
                assert r.status_code == 403, (site, table, fmt)
                assert "content-disposition" not in r.headers
                assert "tin-tuc" not in r.text and "1.001234" not in r.text
            own = await c.get(f"/sites/60?table={table}&format={fmt}")
            assert own.status_code == 200, (table, fmt)
        for table in ("sites", "dvc", "dossiers"):
            r = await c.get(f"/agencies/H26?table={table}&format={fmt}")
            assert r.status_code == 403 and "DVC Hà Nội" not in r.text
            assert (await c.get(f"/agencies/BYT?table={table}&format={fmt}")).status_code == 200
        for site in (47, 48):
            r = await c.get(f"/compliance/sites/{site}?format={fmt}")
            # compliance is public by default: published anyway (a site's page has JSON,
            # no CSV: format=csv is a 400 naming the parameter)
            assert r.status_code == (200 if fmt == "json" else 400), (site, fmt)
    token = await add_token(db, "byt")
    for auth in ({}, {"authorization": f"Bearer {token}"}):  # the session, then the token
        for report in REPORTS:
            for path in (f"/api/v1/sites/47/{report}", f"/api/v1/sites/48/{report}",
                         f"/api/v1/agencies/H26/{report}"):
                r = await c.get(path, headers=auth)
                assert r.status_code == 403, (path, auth)
                assert "visits" not in r.text and "1.001234" not in r.text
        assert (await c.get("/api/v1/sites/60/totals", headers=auth)).status_code == 200


async def test_agency_user_and_pages_that_are_not_public(db, config) -> None:
    """With nothing public, an agency user sees its own agency, its sites and their
    compliance — not the national pages that compare every agency (admins do)."""
    import dataclasses

    import httpx
    from reportdata import populate
    from reporthelp import make_users

    from collector.app import create_app
    from reports.auth import add_token

    app = create_app(dataclasses.replace(config, public_pages=""))
    async with app.router.lifespan_context(app):
        await populate(app, app.state.giamsat.db)
        await make_users(db)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            national = ("/", "/?table=province_visits&format=csv", "/dvc",
                        "/dvc?service=1.001234&table=by_agency&format=json", "/compliance",
                        "/compliance?format=csv", "/api/v1/national/totals",
                        "/api/v1/national/rankings_provinces")
            for path in (*national, "/compliance/sites/47", "/sites/47"):
                r = await c.get(path)
                assert r.status_code in (303, 401), path  # anonymous: sign in first
            r = await login(c, "byt", "byt-password-1")
            assert r.headers["location"] == "/agencies/BYT"
            for path in national:
                r = await c.get(path)
                assert r.status_code == 403, path
                assert "Thành phố Hà Nội" not in r.text
            token = await add_token(db, "byt")
            r = await c.get("/api/v1/national/totals",
                            headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 403
            for path in ("/agencies/BYT", "/sites/60", "/sites/60/install",
                         "/compliance/sites/60", "/api/v1/sites/60/totals"):
                assert (await c.get(path)).status_code == 200, path
            for path in ("/compliance/sites/47", "/compliance/sites/47?format=json",
                         "/compliance/sites/99999"):
                r = await c.get(path)
                assert r.status_code == 403, path
                assert "Cổng TTĐT Hà Nội" not in r.text
            c.cookies.clear()
            assert (await login(c, "bo", "ministry-password")).status_code == 303
            for path in (*national, "/compliance/sites/47"):
                assert (await c.get(path)).status_code == 200, path
