"""A real City-like .mmdb for tests, written the way MaxMind/DB-IP shape their records."""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def _vn(sub: dict) -> dict:
    return {"country": {"iso_code": "VN", "names": {"en": "Vietnam"}}, "subdivisions": [sub]}


def write_city_mmdb(path: Path) -> str:
    """203.0.113.0/28 Hà Nội, 198.51.100.0/28 old Bắc Giang (today's Bắc Ninh), 192.0.2.0/28
    Ho Chi Minh City, 100.64.0.0/28 a province by name only, 100.64.1.0/28 Vietnam with no
    province, 8.8.8.0/24 abroad (US, CA), 2001:db8::/32 Hà Nội."""
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City",
                   languages=["en"], description="giamsat test")
    w.insert_network(IPSet(["203.0.113.0/28"]), _vn({"iso_code": "HN", "names": {"en": "Hanoi"}}))
    w.insert_network(IPSet(["198.51.100.0/28"]),  # old Bắc Giang → today's Bắc Ninh
                     _vn({"iso_code": "54", "names": {"en": "Bac Giang"}}))
    w.insert_network(IPSet(["192.0.2.0/28"]),
                     _vn({"iso_code": "SG", "names": {"en": "Ho Chi Minh City"}}))
    w.insert_network(IPSet(["100.64.0.0/28"]), _vn({"names": {"en": "Thua Thien Hue"}}))
    w.insert_network(IPSet(["100.64.1.0/28"]), {"country": {"iso_code": "VN"}})
    w.insert_network(IPSet(["8.8.8.0/24"]),
                     {"country": {"iso_code": "US"}, "subdivisions": [{"iso_code": "CA"}]})
    w.insert_network(IPSet(["2001:db8::/32"]), _vn({"iso_code": "HN"}))
    w.to_db_file(str(path))
    return str(path)
