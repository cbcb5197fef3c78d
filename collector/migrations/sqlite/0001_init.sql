-- giamsat core schema (SQLite). Times are integer milliseconds since the epoch (UTC);
-- `day` is the local date (Asia/Ho_Chi_Minh, UTC+7) as YYYY-MM-DD, computed at ingest.

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Ministries, ministerial-level agencies and the 34 provincial units.
CREATE TABLE agencies (
  code           TEXT PRIMARY KEY,         -- H01…H61 (national DVC portal codes), BYT, …
  kind           TEXT NOT NULL,            -- province | city | ministry | ministerial_agency
  name           TEXT NOT NULL,
  merged_from    TEXT NOT NULL DEFAULT '', -- ';'-separated names of units merged into it
  effective_from TEXT NOT NULL,
  effective_to   TEXT
);

CREATE TABLE sites (
  id            INTEGER PRIMARY KEY,       -- the numeric site id of setSiteId('47')
  agency_code   TEXT NOT NULL REFERENCES agencies(code),
  kind          TEXT NOT NULL CHECK (kind IN ('portal', 'dvc', 'onestop', 'other')),
  name          TEXT NOT NULL,
  registered_on TEXT NOT NULL,
  required      INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE site_hosts (
  site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  host    TEXT NOT NULL,                   -- lower case, no port, no leading "www."
  PRIMARY KEY (site_id, host)
);
CREATE INDEX site_hosts_host ON site_hosts (host);

-- Raw events. No IP, no clear personal data.
CREATE TABLE hits (
  id           INTEGER PRIMARY KEY,
  site_id      INTEGER NOT NULL,
  ts           INTEGER NOT NULL,
  day          TEXT NOT NULL,
  kind         TEXT NOT NULL,              -- pageview event dvc rating outlink download ping
  visitor      INTEGER NOT NULL,           -- keyed hash of (daily salt, site, ip, user agent)
  pv_id        TEXT NOT NULL DEFAULT '',
  host         TEXT NOT NULL,
  path         TEXT NOT NULL,
  url          TEXT NOT NULL,
  title        TEXT NOT NULL DEFAULT '',
  referrer     TEXT NOT NULL DEFAULT '',
  ref_host     TEXT NOT NULL DEFAULT '',
  utm_source   TEXT NOT NULL DEFAULT '',
  utm_medium   TEXT NOT NULL DEFAULT '',
  utm_campaign TEXT NOT NULL DEFAULT '',
  browser      TEXT NOT NULL DEFAULT '',
  os           TEXT NOT NULL DEFAULT '',
  device       TEXT NOT NULL DEFAULT '',   -- desktop | mobile | tablet | other
  country      TEXT NOT NULL DEFAULT '',   -- ISO 3166-1 alpha-2, '' unknown
  province     TEXT NOT NULL DEFAULT '',   -- today's provincial unit code (H01…), '' unknown
  screen       TEXT NOT NULL DEFAULT '',
  lang         TEXT NOT NULL DEFAULT '',
  e_c          TEXT NOT NULL DEFAULT '',
  e_a          TEXT NOT NULL DEFAULT '',
  e_n          TEXT NOT NULL DEFAULT '',
  e_v          REAL,
  target       TEXT NOT NULL DEFAULT '',   -- outlink / download destination
  dvc_service  TEXT NOT NULL DEFAULT '',
  dvc_state    INTEGER,
  dvc_ref      TEXT NOT NULL DEFAULT ''    -- keyed hash of the dossier id, never the id
);

-- Hits refused at the edge, per site, day and reason (host only for host mismatches).
CREATE TABLE dropped (
  site_id INTEGER NOT NULL,                -- 0 when the site id was missing or unknown
  day     TEXT NOT NULL,
  reason  TEXT NOT NULL,
  host    TEXT NOT NULL DEFAULT '',
  n       INTEGER NOT NULL,
  PRIMARY KEY (site_id, day, reason, host)
);

-- Daily rotating salts for visitor hashes; rows older than two days are deleted.
CREATE TABLE salts (
  day  TEXT PRIMARY KEY,
  salt TEXT NOT NULL
);
