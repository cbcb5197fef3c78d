"""Known fixture data for report tests, sent through the real edges (/tracking and
/TrackingMCDT), stored by the real writer, then rolled up by the real rollup.

Everything happens "now", so it falls on today (local time; `populate` checks that it all
fell on one local day, not across midnight). Expected figures:

site 47 (H26 portal, hanoi.gov.vn):
  A (203.0.113.7): /tin-tuc then /gioi-thieu         → 1 visit, 2 page views
  B (198.51.100.9): / from https://www.google.com/    → 1 visit, bounce
  C (198.51.100.10): /tin-tuc?utm_campaign=tet-2026   → 1 visit, bounce
  = visits 3, visitors 3, page views 4, bounces 2 (66,7 %)
  one refused hit: host evil.example → "host not registered to this site"
site 48 (H26 dvc, dichvucong.hanoi.gov.vn):
  D (198.51.100.20): page view /dvc, trackDVC 1.001234 -1 ×2, 1 ×1, 2.000111 -1 ×1,
    rating 1.001234 5
  E (198.51.100.21): page view /dvc, trackDVC 1.001234 -1 ×2, rating 1.001234 3
  = visits 2, page views 2; DVC views 1.001234: 4, submissions 1; 2.000111: 1, 0
  satisfaction 1/2 = 50 %
  dossiers: 1.001234 received online L4 paid online; received online L3 no payment;
  received in person L1 paid in person; one result (Status 3)
  = received 3, online 2 (66,7 %), full-process online 1 (33,3 %), paid online 1/2 (50 %)
site 60 (BYT portal, moh.gov.vn): F (198.51.100.30): / → 1 visit, 1 page view
nation: visits 6, page views 7.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from collector.dossiers import issue_token
from collector.registry import make_site, save_site
from collector.rollup import rollup
from collector.store import Database

UA_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:131.0) Gecko/131.0 Firefox/131.0"
UA_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


def client_from(app: Any, ip: str, ua: str = UA_CHROME) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 4000)),
                             base_url="http://collector.test", headers={"user-agent": ua})


async def hit(app: Any, ip: str, ua: str = UA_CHROME, expect: int = 204, **params: Any) -> None:
    async with client_from(app, ip, ua) as c:
        r = await c.post("/tracking", content=urlencode({"rec": "1", **params}).encode(),
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == expect, (r.status_code, r.text, params)


def dossier(site: int, code: str, mahoso: str, status: int, reception: int, payment: int,
            level: int) -> dict[str, Any]:
    return {"CodeProfile": "P-" + mahoso, "SiteId": site, "CodeTTHC": code,
            "NameTTHC": "Thủ tục", "MaHoSo": mahoso, "Status": status,
            "FormsReception": reception, "FormsPayments": payment, "Level": level,
            "IsFromDVCQG": 0, "IsDVCBC": 0, "Data": "", "User": '{"LOCATION": "H26"}'}


async def populate(app: Any, db: Database, evil: dict[str, str] | None = None) -> None:
    """Send the fixture traffic; ``evil`` overrides text fields (injection test)."""
    await save_site(db, make_site(60, "BYT", "portal", "Cổng TTĐT Bộ Y tế", ["moh.gov.vn"]))
    await app.state.giamsat.sites.refresh(db)
    e = evil or {}
    h = "https://hanoi.gov.vn"
    await hit(app, "203.0.113.7", idsite=47, url=e.get("url", f"{h}/tin-tuc"),
              action_name=e.get("title", "Tin tức"))
    await hit(app, "203.0.113.7", idsite=47, url=f"{h}/gioi-thieu", action_name="Giới thiệu")
    await hit(app, "198.51.100.9", UA_FIREFOX, idsite=47, url=f"{h}/",
              urlref=e.get("referrer", "https://www.google.com/"))
    await hit(app, "198.51.100.10", idsite=47,
              url=f"{h}/tin-tuc?utm_campaign=" + e.get("campaign", "tet-2026"))
    await hit(app, "198.51.100.11", expect=403, idsite=47, url="https://evil.example/x")
    d = "https://dichvucong.hanoi.gov.vn"
    code = e.get("service", "1.001234")
    for ip, views, subs, stars in (("198.51.100.20", 2, 1, 5), ("198.51.100.21", 2, 0, 3)):
        await hit(app, ip, idsite=48, url=f"{d}/dvc")
        for _ in range(views):
            await hit(app, ip, idsite=48, url=f"{d}/dvc", e_c="dvc", e_a="step", e_n=code,
                      e_v="-1")
        for _ in range(subs):
            await hit(app, ip, idsite=48, url=f"{d}/dvc", e_c="dvc", e_a="step", e_n=code,
                      e_v="1")
        await hit(app, ip, idsite=48, url=f"{d}/dvc", e_c="dvc", e_a="rating", e_n=code,
                  e_v=str(stars))
    await hit(app, "198.51.100.20", idsite=48, url=f"{d}/dvc", e_c="dvc", e_a="step",
              e_n="2.000111", e_v="-1")
    await hit(app, "198.51.100.30", idsite=60, url="https://moh.gov.vn/")
    token = await issue_token(db, 48)
    events = [dossier(48, code, "HS-1", 1, 1, 1, 4), dossier(48, code, "HS-2", 1, 1, 0, 3),
              dossier(48, code, "HS-3", 1, 2, 2, 1), dossier(48, code, "HS-1", 3, 1, 1, 4)]
    async with client_from(app, "10.0.0.5") as c:
        for ev in events:
            r = await c.post("/TrackingMCDT", json=ev,
                             headers={"authorization": f"Bearer {token}"})
            assert r.status_code in (200, 201, 204), r.text
    days = await db.fetch_all("SELECT DISTINCT day FROM hits UNION SELECT DISTINCT day "
                              "FROM dossiers")
    assert len(days) == 1, f"the fixture traffic straddled local midnight: {days}; run again"
    await rollup(db)
