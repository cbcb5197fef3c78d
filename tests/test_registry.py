"""Agencies, sites, host normalisation, site import, the embed snippet."""

from __future__ import annotations

import time

import pytest

from collector.embed import snippet_html
from collector.registry import (
    RegistryError,
    SiteIndex,
    import_sites,
    list_sites,
    load_agencies,
    make_site,
    normalize_host,
    province_codes,
    read_agencies,
    save_site,
)
from collector.store import Database
from collector.tracking import local_day


@pytest.mark.parametrize("raw, host", [
    ("hanoi.gov.vn", "hanoi.gov.vn"),
    ("WWW.HaNoi.Gov.VN", "hanoi.gov.vn"),
    ("www.hanoi.gov.vn:8443", "hanoi.gov.vn"),
    (" hanoi.gov.vn. ", "hanoi.gov.vn"),
    ("dichvucong.hanoi.gov.vn", "dichvucong.hanoi.gov.vn"),
    ("[::1]:8000", "[::1]"),
    ("wwwhanoi.gov.vn", "wwwhanoi.gov.vn"),
])
def test_normalize_host(raw: str, host: str) -> None:
    assert normalize_host(raw) == host


def test_agencies_file() -> None:
    rows = read_agencies()
    kinds = [r["kind"] for r in rows]
    assert kinds.count("province") + kinds.count("city") == 34
    assert kinds.count("ministry") == 14
    assert kinds.count("ministerial_agency") == 3
    assert len({r["code"] for r in rows}) == len(rows)


async def test_load_agencies_idempotent(db: Database) -> None:
    before = await db.fetch_all("SELECT * FROM agencies ORDER BY code")
    assert await load_agencies(db) == len(before) == 51
    assert await db.fetch_all("SELECT * FROM agencies ORDER BY code") == before


def test_province_codes_map_old_provinces() -> None:
    codes = province_codes()
    assert codes["HN"] == codes["VN-HN"] == "H26"
    assert codes["54"] == codes["VN-54"] == "H05"  # Bắc Giang merged into Bắc Ninh
    assert codes["SG"] == "H29"
    assert codes["bacgiang"] == "H05"
    assert codes["thuathienhue"] == "H57"


@pytest.mark.parametrize("args, message", [
    (("x", "H26", "portal", "A", "a.vn"), "id: expected a positive number"),
    (("0", "H26", "portal", "A", "a.vn"), "id: expected a positive number"),
    (("5", "H26", "blog", "A", "a.vn"), "kind: expected one of"),
    (("5", "H26", "portal", " ", "a.vn"), "name: empty"),
    (("5", "H26", "portal", "A", ""), "hosts: at least one hostname"),
    (("5", "H26", "portal", "A", "bad_host!.vn"), "is not a hostname"),
    (("5", "H26", "portal", "A", "a.vn", "05/04/2024"), "registered_on: expected YYYY-MM-DD"),
    (("5", "H26", "portal", "A", "a.vn", "", "maybe"), "required: expected 1 or 0"),
])
def test_make_site_refuses(args: tuple, message: str) -> None:
    with pytest.raises(RegistryError, match=message.replace("(", r"\(")):
        make_site(*args)


def test_make_site_normalises() -> None:
    s = make_site(9, "byt", "one-stop", " Một cửa ", "WWW.A.vn; a.vn b.vn:80", "2024-04-05",
                  False)
    assert (s.agency_code, s.kind, s.name, s.hosts, s.required) == (
        "BYT", "onestop", "Một cửa", ("a.vn", "b.vn"), False)


def test_registration_day_defaults_to_the_local_date() -> None:
    """Today in Vietnam (UTC+7), whatever the server's time zone."""
    before = int(time.time() * 1000)
    day = make_site(5, "H26", "portal", "A", "a.vn").registered_on
    assert day in {local_day(before), local_day(int(time.time() * 1000))}


async def test_save_site_unknown_agency(db: Database) -> None:
    with pytest.raises(RegistryError, match="unknown agency code 'XXX'"):
        await save_site(db, make_site(5, "XXX", "portal", "A", "a.vn"))
    assert await db.fetch_one("SELECT id FROM sites WHERE id = 5") is None


CSV = """\ufeffid,agency,kind,name,hosts,registered_on,required
100,H29,portal,Cổng TTĐT TP.HCM,hochiminhcity.gov.vn;www.hochiminhcity.gov.vn,2024-04-05,1
abc,H29,portal,Bad id,x.vn,,
101,H05,dvc,DVC Bắc Ninh,dichvucong.bacninh.gov.vn,,0
102,ZZZ,portal,Unknown agency,z.vn,,
103,BYT,blog,Bad kind,y.vn,,
104,BYT,portal,Bộ Y tế,moh.gov.vn,2024-13-01,
"""


async def test_import_sites_keeps_good_rows_reports_bad(db: Database) -> None:
    report = await import_sites(db, CSV)
    assert report.saved == 2
    assert [line for line, _ in report.errors] == [3, 5, 6, 7]
    assert "id:" in report.errors[0][1]
    assert "unknown agency" in report.errors[1][1]
    assert "kind:" in report.errors[2][1]
    assert "registered_on" in report.errors[3][1]
    sites = {s.id: s for s in await list_sites(db)}
    assert sites[100].hosts == ("hochiminhcity.gov.vn",)
    assert sites[101].required is False and sites[101].kind == "dvc"
    assert sorted(sites) == [47, 48, 100, 101]


async def test_import_is_idempotent_and_replaces_hosts(db: Database) -> None:
    await import_sites(db, CSV)
    first = await db.fetch_all("SELECT * FROM site_hosts ORDER BY site_id, host")
    await import_sites(db, CSV)
    assert await db.fetch_all("SELECT * FROM site_hosts ORDER BY site_id, host") == first
    await import_sites(db, "id,agency,kind,name,hosts\n100,H29,portal,HCM,tphcm.gov.vn\n")
    sites = {s.id: s for s in await list_sites(db)}
    assert sites[100].hosts == ("tphcm.gov.vn",) and sites[100].name == "HCM"


async def test_import_missing_columns(db: Database) -> None:
    report = await import_sites(db, "id,name\n1,x\n")
    assert report.saved == 0
    assert report.errors == [(1, "header: missing column(s) agency, hosts, kind")]


async def test_site_index(db: Database) -> None:
    index = SiteIndex()
    await index.refresh(db)
    assert index.hosts == {47: frozenset({"hanoi.gov.vn"}),
                           48: frozenset({"dichvucong.hanoi.gov.vn"})}


def test_snippet_html() -> None:
    html = snippet_html(47, "https://emc.example.gov.vn/")
    assert "_govaq.push(['setSiteId', '47']);" in html
    assert "var u = 'https://emc.example.gov.vn';" in html
    assert "_govaq.push(['setTrackerUrl', u + '/tracking']);" in html
    assert "u + '/embed/gov-tracking.min.js'" in html
    assert ('<noscript><img src="https://emc.example.gov.vn/tracking?idsite=47&amp;rec=1" '
            'alt="" /></noscript>') in html


def test_snippet_escapes_base_url() -> None:
    html = snippet_html(1, "https://x.vn/'</script><script>alert(1)//")
    assert "</script><script>alert(1)" not in html
    assert "'</script>" not in html
