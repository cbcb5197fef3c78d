"""Agencies and sites: who is registered, which hostnames belong to which site.

Agencies ship with the project (``collector/data/agencies.csv``: 34 provincial units with
the national DVC portal's codes, 14 ministries, 3 ministerial-level agencies) and are
loaded at every migration, so a newer file updates names and mergers.

A site is one numeric site id (``setSiteId('47')``), owned by one agency, of one kind
(portal / dvc / onestop / other), with the hostnames that may send hits for it. Hostnames
are compared lower-cased, without port and without a leading ``www.``.

Site CSV files (``giamsat site import``) have the header
``id,agency,kind,name,hosts,registered_on,required`` with hosts separated by ``;`` or
spaces, ``registered_on`` as YYYY-MM-DD (default: today's local, UTC+7, date) and
``required`` 1/0 (default 1).
Import is idempotent (upsert by id; the host list is replaced); bad rows are reported
with their line number and good rows are kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from collector.store import Database

DATA = Path(__file__).resolve().parent / "data"
SITE_KINDS = ("portal", "dvc", "onestop", "other")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class RegistryError(ValueError):
    """A site or agency record is invalid; the message says which field."""


def normalize_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    host = host.split(":", 1)[0]
    return host.removeprefix("www.")


@dataclass(frozen=True)
class Site:
    id: int
    agency_code: str
    kind: str
    name: str
    hosts: tuple[str, ...]
    registered_on: str
    required: bool = True


def read_agencies(path: Path = DATA / "agencies.csv") -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


async def load_agencies(db: Database, path: Path = DATA / "agencies.csv") -> int:
    rows = [
        {
            "code": r["code"],
            "kind": r["kind"],
            "name": r["name"],
            "merged_from": r.get("merged_from") or "",
            "effective_from": r["effective_from"],
            "effective_to": r.get("effective_to") or None,
        }
        for r in read_agencies(path)
    ]
    await db.execute_many(
        "INSERT INTO agencies (code, kind, name, merged_from, effective_from, effective_to) "
        "VALUES (:code, :kind, :name, :merged_from, :effective_from, :effective_to) "
        "ON CONFLICT (code) DO UPDATE SET kind = excluded.kind, name = excluded.name, "
        "merged_from = excluded.merged_from, effective_from = excluded.effective_from, "
        "effective_to = excluded.effective_to",
        rows,
    )
    return len(rows)


def fold_name(name: str) -> str:
    """Compare province names without prefix, diacritics or case."""
    name = name.lower().strip()
    for prefix in ("thành phố ", "tỉnh ", "tp. ", "tp "):
        name = name.removeprefix(prefix)
    name = name.replace("đ", "d")
    name = "".join(c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "", name)


_ALIASES = {"thuathienhue": "hue", "hochiminhcity": "hochiminh", "saigon": "hochiminh"}


def province_codes() -> dict[str, str]:
    """Map GeoIP subdivision keys (ISO 3166-2 code or folded name, old or new) to today's unit.

    GeoIP databases still name the 63 provinces from before the 2025 merger; a visitor
    from old Bắc Giang counts for Bắc Ninh through the ``merged_from`` column.
    """
    by_name: dict[str, str] = {}
    for a in read_agencies():
        if a["kind"] not in ("province", "city"):
            continue
        by_name[fold_name(a["name"])] = a["code"]
        for old in filter(None, (a.get("merged_from") or "").split(";")):
            by_name[fold_name(old)] = a["code"]
    for alias, target in _ALIASES.items():
        if target in by_name:
            by_name[alias] = by_name[target]
    codes = dict(by_name)
    with (DATA / "vn_subdivisions.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            folded = fold_name(row["name"])
            code = by_name.get(_ALIASES.get(folded, folded))
            if code:
                codes[row["iso_code"]] = code
                codes[row["iso_code"].removeprefix("VN-")] = code
    return codes


def local_today() -> str:
    """Today's local (UTC+7) date, whatever the server's time zone: the default
    registration day."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).date().isoformat()


def _site_from_fields(
    id_: str, agency: str, kind: str, name: str, hosts: str, registered_on: str, required: str
) -> Site:
    if not id_.strip().isdigit() or not 0 < int(id_) < 2**31:
        raise RegistryError(f"id: expected a positive number, got {id_!r}")
    kind = kind.strip().lower().replace("-", "")
    if kind not in SITE_KINDS:
        raise RegistryError(f"kind: expected one of {', '.join(SITE_KINDS)}, got {kind!r}")
    if not name.strip():
        raise RegistryError("name: empty")
    host_list = tuple(dict.fromkeys(normalize_host(h) for h in re.split(r"[;,\s]+", hosts) if h))
    if not host_list:
        raise RegistryError("hosts: at least one hostname is needed")
    for h in host_list:
        if not _HOST.match(h) and not h.startswith("["):
            raise RegistryError(f"hosts: {h!r} is not a hostname")
    registered_on = registered_on.strip() or local_today()
    try:
        dt.date.fromisoformat(registered_on)
    except ValueError:
        raise RegistryError(f"registered_on: expected YYYY-MM-DD, got {registered_on!r}") from None
    req = required.strip().lower() or "1"
    if req not in ("1", "0", "true", "false", "yes", "no"):
        raise RegistryError(f"required: expected 1 or 0, got {required!r}")
    return Site(
        int(id_), agency.strip().upper(), kind, name.strip(), host_list, registered_on,
        req in ("1", "true", "yes"),
    )


def make_site(
    id: str | int, agency: str, kind: str, name: str, hosts: str | list[str],
    registered_on: str = "", required: str | bool = "1",
) -> Site:
    if isinstance(hosts, list):
        hosts = ";".join(hosts)
    if isinstance(required, bool):
        required = "1" if required else "0"
    return _site_from_fields(str(id), agency, kind, name, hosts, registered_on, required)


async def save_site(db: Database, site: Site) -> None:
    """Insert or update a site and replace its hostnames, in one transaction."""
    async with db.transaction() as tx:
        agency = await tx.fetch_one(
            "SELECT code FROM agencies WHERE code = :c", {"c": site.agency_code}
        )
        if agency is None:
            raise RegistryError(f"agency: unknown agency code {site.agency_code!r}")
        await tx.execute(
            "INSERT INTO sites (id, agency_code, kind, name, registered_on, required) "
            "VALUES (:id, :agency, :kind, :name, :reg, :req) "
            "ON CONFLICT (id) DO UPDATE SET agency_code = excluded.agency_code, "
            "kind = excluded.kind, name = excluded.name, "
            "registered_on = excluded.registered_on, required = excluded.required",
            {"id": site.id, "agency": site.agency_code, "kind": site.kind, "name": site.name,
             "reg": site.registered_on, "req": int(site.required)},
        )
        await tx.execute("DELETE FROM site_hosts WHERE site_id = :id", {"id": site.id})
        await tx.execute_many(
            "INSERT INTO site_hosts (site_id, host) VALUES (:id, :host)",
            [{"id": site.id, "host": h} for h in site.hosts],
        )


@dataclass
class ImportReport:
    saved: int
    errors: list[tuple[int, str]]  # (line number, message)


async def import_sites(db: Database, text: str) -> ImportReport:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    needed = {"id", "agency", "kind", "name", "hosts"}
    missing = needed - set(reader.fieldnames or [])
    if missing:
        return ImportReport(0, [(1, f"header: missing column(s) {', '.join(sorted(missing))}")])
    saved, errors = 0, []
    for row in reader:
        line = reader.line_num
        try:
            site = _site_from_fields(
                row["id"] or "", row["agency"] or "", row["kind"] or "", row["name"] or "",
                row["hosts"] or "", row.get("registered_on") or "", row.get("required") or "",
            )
            await save_site(db, site)
            saved += 1
        except RegistryError as e:
            errors.append((line, str(e)))
    return ImportReport(saved, errors)


async def list_sites(db: Database) -> list[Site]:
    rows = await db.fetch_all(
        "SELECT s.id, s.agency_code, s.kind, s.name, s.registered_on, s.required, h.host "
        "FROM sites s LEFT JOIN site_hosts h ON h.site_id = s.id ORDER BY s.id, h.host"
    )
    sites: dict[int, dict] = {}
    for r in rows:
        s = sites.setdefault(r["id"], {**r, "hosts": []})
        if r["host"]:
            s["hosts"].append(r["host"])
    return [
        Site(s["id"], s["agency_code"], s["kind"], s["name"], tuple(s["hosts"]),
             s["registered_on"], bool(s["required"]))
        for s in sites.values()
    ]


class SiteIndex:
    """What ingest needs to know, in memory: site id → its hostnames."""

    def __init__(self, sites: list[Site] | None = None) -> None:
        self.hosts: dict[int, frozenset[str]] = {}
        self.replace(sites or [])

    def replace(self, sites: list[Site]) -> None:
        self.hosts = {s.id: frozenset(s.hosts) for s in sites}

    async def refresh(self, db: Database) -> None:
        self.replace(await list_sites(db))


async def load_demo(db: Database) -> int:
    """Register the demo sites if the registry is empty (``make run``)."""
    if await db.fetch_one("SELECT id FROM sites LIMIT 1"):
        return 0
    report = await import_sites(db, (DATA / "demo_sites.csv").read_text(encoding="utf-8"))
    return report.saved
