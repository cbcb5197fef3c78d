"""Helpers for report tests: sign in through the real form, read figures off pages."""

from __future__ import annotations

import html
import re

import httpx

from reports.auth import add_user

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    m = CSRF.search(page)
    assert m, "no CSRF token on the page"
    return m.group(1)


async def login(c: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await c.get("/login")
    return await c.post("/login", data={"username": username, "password": password,
                                        "csrf_token": csrf_of(page.text), "next": "/"})


async def make_users(db) -> None:  # type: ignore[no-untyped-def]
    await add_user(db, "bo", "ministry-password", "admin")
    await add_user(db, "hanoi", "hanoi-password", "agency", "H26")
    await add_user(db, "byt", "byt-password-1", "agency", "BYT")


def kpi(page: str, key: str) -> str:
    m = re.search(rf'data-kpi="{key}"><div class="label">[^<]*</div><div class="value">([^<]*)<',
                  page)
    assert m, f"no KPI {key}"
    return html.unescape(m.group(1)).strip()


def table_rows(page: str, name: str) -> list[list[str]]:
    m = re.search(rf'<table data-table="{name}">(.*?)</table>', page, re.S)
    assert m, f"no table {name}"
    body = m.group(1).split("<tbody>", 1)[1]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows
