from collector.store import Database


async def test_pageview_is_stored(client, db: Database) -> None:
    r = await client.post("/tracking", content=b"idsite=47&rec=1&url=https://hanoi.gov.vn/tin-tuc",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 204, r.text
    rows = await db.fetch_all("SELECT site_id, kind, path, browser FROM hits")
    assert rows == [{"site_id": 47, "kind": "pageview", "path": "/tin-tuc", "browser": "Chrome"}]
