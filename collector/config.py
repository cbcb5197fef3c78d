"""Configuration: one frozen dataclass, read from ``GIAMSAT_*`` environment variables once.

Every field has a sane default so ``giamsat serve`` with no configuration just works on an
embedded SQLite file. CLI options use the same names (``--database-url`` ↔
``GIAMSAT_DATABASE_URL``) and override the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A configuration value could not be read; the message names the variable."""


def _cast(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"GIAMSAT_{name.upper()}: expected a boolean, got {raw!r}")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"GIAMSAT_{name.upper()}: expected {kind.__name__}, got {raw!r}"
        ) from None


@dataclass(frozen=True)
class Config:
    # where data lives: a SQLite path (default) or postgresql://…
    database_url: str = "giamsat.db"
    host: str = "127.0.0.1"
    port: int = 8000
    # public base URL of this collector, used in the snippet (https://emc.example.gov.vn)
    public_url: str = ""
    # other hosts this collector answers /tracking on (comma separated), for the scanner's
    # "tracker URL is ours" check; with neither set that check is reported as unknown
    public_hosts: str = ""
    # GeoIP database (MaxMind/DB-IP City .mmdb); empty = provinces are "unknown"
    geoip_path: str = ""
    # secret for keyed hashes of dossier ids and personal data; generated and stored if empty
    secret: str = ""
    # group commit: most hits in one transaction
    batch_max: int = 2000
    # ingest limits (bytes / characters)
    max_body: int = 65536
    # trust X-Forwarded-For from these proxies (comma separated IPs); empty = trust none
    trusted_proxies: str = ""
    # how often the running server reloads the site registry (seconds)
    registry_refresh: float = 10.0
    # how often the running server rolls up (seconds); 0 disables the in-server job
    rollup_interval: float = 60.0
    # raw events older than this are deleted after they were rolled up
    retention_days: int = 400
    # PostgreSQL: hits are spooled here (fsynced) while the database is unreachable;
    # empty = no spool, hits are refused with 503 during an outage
    spool_dir: str = "giamsat-spool"
    access_log: bool = False
    workers: int = 1
    # load the demo registry into an empty database (make run)
    demo: bool = False
    timezone_offset_hours: int = 7  # Vietnam has no DST: UTC+7 all year
    # compliance (collector/scan.py, collector/compliance.py)
    scan_interval: float = 0.0  # seconds between in-server install scans; 0 = off (86400 daily)
    scan_sample: int = 5  # pages scanned per site besides the home page
    gap_days: int = 3  # consecutive days without hits in (or into) a period = interrupted
    reconcile_abs: int = 2  # reconciliation tolerance: max(abs, rel × larger count)
    reconcile_rel: float = 0.05
    foreign_host_min: int = 20  # hits from unregistered hostnames that make a site incomplete
    # reports: pages anonymous visitors may read (overview, dvc, agencies, sites, compliance)
    public_pages: str = "overview,compliance"
    # reports: national targets drawn as reference lines (ratios)
    target_online_rate: float = 0.5          # dossiers received online
    target_full_online_procedures: float = 0.8  # procedures offered full-process online
    target_satisfaction: float = 0.95        # share of ratings >= 4 (2026)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Config:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f"GIAMSAT_{f.name.upper()}"
            if key in env:
                values[f.name] = _cast(f.name, env[key], type(f.default))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))
