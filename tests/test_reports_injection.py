"""Attacker-controlled text (url, title, referrer, campaign, DVC service code) sent through
the real /tracking edge, rolled up, then shown: escaped in every page, neutralised in CSV,
inert in JSON."""

from __future__ import annotations

import csv
import io
import json

from reportdata import hit, populate
from reporthelp import login

SCRIPT = "<script>alert(1)</script>"
ATTR = "\"' onmouseover=alert(2) x=\""
EVIL = {
    "url": f"https://hanoi.gov.vn/a{SCRIPT}{ATTR}",
    "title": f"</title>{SCRIPT}{ATTR}",
    "referrer": f"https://ref.example/{SCRIPT}?q={ATTR}",
    "campaign": f"=HYPERLINK(\"http://evil.example\"){SCRIPT}{ATTR}",
    "service": "-1.000001",  # codes are [\w.-/]: the worst that gets in is a formula start
}
RAW = ("<script>alert", "onmouseover=alert(2) x=\"\"", "' onmouseover")


def assert_no_raw(text: str, where: str) -> None:
    for bad in RAW:
        assert bad not in text, (where, bad)


async def test_payloads_are_escaped_everywhere(client, db) -> None:
    app = client.app
    await populate(app, app.state.giamsat.db, evil=EVIL)
    # a service code carrying markup is refused at the edge, with its reason counted
    await hit(app, "198.51.100.50", expect=400, idsite=48,
              url="https://dichvucong.hanoi.gov.vn/dvc", e_c="dvc", e_a="step",
              e_n=f"1.2{SCRIPT}", e_v="-1")
    # drop counters ride on the next committed batch: send one valid hit after it
    await hit(app, "198.51.100.50", idsite=48, url="https://dichvucong.hanoi.gov.vn/dvc")
    from collector.rollup import rollup
    from reports.auth import add_user

    await rollup(app.state.giamsat.db)
    stored = await db.fetch_all("SELECT path, title, referrer, utm_campaign FROM hits "
                                "WHERE site_id = 47")
    # the payloads were stored (so the test exercises the report side)
    assert any("<script>" in r["path"] + r["title"] for r in stored)
    assert any(r["utm_campaign"].startswith("=HYPERLINK") for r in stored)
    await add_user(db, "bo", "ministry-password", "admin")
    await login(client, "bo", "ministry-password")
    for path in ("/sites/47?period=7d", "/sites/48?period=7d", "/agencies/H26?period=7d",
                 "/dvc?period=7d", "/dvc?period=7d&service=-1.000001", "/?period=7d",
                 f"/sites/47?period=7d&lang=en&x={SCRIPT}", "/sites/48/install"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert_no_raw(r.text, path)
        assert "script-src" not in r.headers["content-security-policy"]  # no script allowed
    page = (await client.get("/sites/47?period=7d")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, escaped
    assert "=HYPERLINK(&#34;http://evil.example&#34;)" in page
    for table in ("pages", "entry", "campaigns", "referrers", "sources"):
        r = await client.get(f"/sites/47?period=7d&table={table}&format=json")
        assert r.status_code == 200 and "<" not in r.text, table  # never readable as HTML
        r = await client.get(f"/sites/47?period=7d&table={table}&format=csv")
        # CSV is data, not HTML: an attachment that must not be sniffed, no formula cell
        assert r.headers["content-disposition"].startswith("attachment")
        assert r.headers["x-content-type-options"] == "nosniff"
        rows = csv.reader(io.StringIO(r.content.decode("utf-8-sig")))
        for cell in (c for row in rows for c in row):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (table, cell)
    r = await client.get("/sites/47?period=7d&table=campaigns&format=csv")
    cells = [c for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))) for c in row]
    camp = [c for c in cells if "HYPERLINK" in c]
    assert camp and all(c.startswith("'=") for c in camp)
    r = await client.get("/sites/48?period=7d&table=dvc&format=csv")
    cells = [c for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))) for c in row]
    assert "'-1.000001" in cells and "-1.000001" not in cells
    r = await client.get("/sites/47?period=7d&table=campaigns&format=json")
    labels = [x["label"] for x in json.loads(r.text)["rows"]]
    assert any(x.startswith("=HYPERLINK") for x in labels)  # the data itself is intact
    assert "\\u003cscript\\u003e" in r.text
    r = await client.get("/api/v1/sites/47/top_campaign?period=7d")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert "<" not in r.text and ">" not in r.text
    assert SCRIPT in json.dumps(r.json())  # decoded, the value is what was sent
    r = await client.get("/sites/48?period=7d")
    assert "dvc service code invalid" in r.text
