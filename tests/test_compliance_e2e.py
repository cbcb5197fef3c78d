"""From real hits to a state: /tracking and /TrackingMCDT → writer → rollup → compliance."""

from __future__ import annotations

import httpx

from collector.compliance import compute, month_period
from collector.dossiers import issue_token
from collector.rollup import rollup
from collector.store import Database
from collector.tracking import local_day


async def test_hits_feed_and_copied_code_become_states(client: httpx.AsyncClient,
                                                       db: Database) -> None:
    # site 47's code pasted on a host nobody registered: 20 refused hits (the threshold)
    for i in range(20):
        r = await client.get("/tracking", params={
            "idsite": "47", "rec": "1", "url": f"https://copy.example.com/p{i}"})
        assert r.status_code == 403
    for site, host in ((47, "hanoi.gov.vn"), (48, "dichvucong.hanoi.gov.vn")):
        r = await client.get("/tracking", params={
            "idsite": str(site), "rec": "1", "url": f"https://{host}/", "send_image": "0"})
        assert r.status_code == 204
    for n in range(3):  # three online submissions seen by the browser …
        r = await client.get("/tracking", params={
            "idsite": "48", "rec": "1", "url": "https://dichvucong.hanoi.gov.vn/nop",
            "e_c": "dvc", "e_a": "step", "e_n": "1.001", "e_v": "1",
            "dvc_extra": f"HS-{n};01012026;Nguyen Van A;001099001234", "send_image": "0"})
        assert r.status_code == 204
    token = await issue_token(db, 48)
    for n in range(3):  # … and the same three received online in the one-stop feed
        r = await client.post("/TrackingMCDT", headers={"authorization": f"Bearer {token}"},
                              json={"CodeProfile": f"P{n}", "SiteId": "48", "CodeTTHC": "1.001",
                                    "NameTTHC": "Cấp phép", "MaHoSo": f"HS-{n}", "Status": 1,
                                    "FormsReception": 1, "FormsPayments": 0, "Level": 4,
                                    "IsFromDVCQG": 0, "IsDVCBC": 0, "Data": "",
                                    "User": {"ID_local": "", "ID_QG": "001099001234",
                                             "TYPE": "1", "LOCATION": "H26"}})
        assert r.status_code == 200, r.text
    await rollup(db)
    # the collector stamps hits with the clock: the states are those of that instant's month
    now = (await db.fetch_one("SELECT max(ts) AS ts FROM hits"))["ts"]
    today = local_day(now)
    result = await compute(db, client.app.state.giamsat.config,  # type: ignore[attr-defined]
                           *month_period(today[:7]), now)
    sites = {s.site_id: s for s in result.sites}
    assert sites[47].state == "incomplete"
    assert [f.code for f in sites[47].findings] == ["foreign_hosts"]
    assert sites[47].findings[0].evidence == {"n": 20, "hosts": "copy.example.com"}
    assert sites[47].last_hit_day == today
    assert sites[48].state == "compliant", [f.code for f in sites[48].findings]
    [c] = result.comparisons
    assert (c.agency_code, c.sites, c.service, c.against, c.a, c.b, c.ok) == (
        "H26", (48,), "1.001", "feed-browser", 3, 3, True)
    assert sites[48].counts["dvc_steps"] == 3 and sites[48].counts["feed_events"] == 3
