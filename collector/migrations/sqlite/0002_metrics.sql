-- giamsat metrics schema (SQLite): dossier feed, sessions, daily rollups, watermarks,
-- retention. Owned by collector/dossiers.py, collector/rollup.py, collector/metrics.py.
-- Days are local dates (UTC+7) 'YYYY-MM-DD'; times integer ms since the epoch (UTC).
-- Every rollup table is keyed by (site_id, day, …) and only ever changed by the rollup.

-- Session recompute reads one visitor-day of hits at a time.
CREATE INDEX hits_visitor_day ON hits (site_id, day, visitor, ts);

-- Per-site secret for POST /TrackingMCDT; only a SHA-256 of the token is kept.
CREATE TABLE site_tokens (
  site_id    INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL,
  created_ts INTEGER NOT NULL
);

-- Dossier events from one-stop systems. One row per event key (site, dossier, status):
-- the same event posted twice is stored once. No personal data: the dossier id and the
-- profile code are keyed hashes, the applicant's ids a keyed hash, names dropped.
CREATE TABLE dossiers (
  id           INTEGER PRIMARY KEY,
  site_id      INTEGER NOT NULL,
  ts           INTEGER NOT NULL,           -- when the collector received the event
  day          TEXT NOT NULL,
  dossier      TEXT NOT NULL,              -- keyed hash of MaHoSo
  profile      TEXT NOT NULL,              -- keyed hash of CodeProfile
  service      TEXT NOT NULL,              -- CodeTTHC (procedure code, public)
  service_name TEXT NOT NULL DEFAULT '',   -- NameTTHC, personal data redacted
  status       INTEGER NOT NULL,           -- 0 other 1 received 2 processing 3 returned 4 assigned
  reception    INTEGER NOT NULL,           -- FormsReception 1 online 2 in person
  payment      INTEGER NOT NULL,           -- FormsPayments 0 none 1 online 2 in person
  level        INTEGER NOT NULL,           -- 0 1 (2 legacy) 3 4
  from_dvcqg   INTEGER NOT NULL,
  dvcbc        INTEGER NOT NULL,
  user_type    TEXT NOT NULL DEFAULT '',
  user_location TEXT NOT NULL DEFAULT '',  -- province code, kept
  user_ref     TEXT NOT NULL DEFAULT '',   -- keyed hash of ID_QG (or ID_local)
  UNIQUE (site_id, dossier, status)
);

-- One row per visit (session), the state that lets a visitor-day be recomputed exactly
-- when a late hit arrives. `first_visit` = 1 for the visitor's first visit of the day.
CREATE TABLE visits (
  site_id     INTEGER NOT NULL,
  day         TEXT NOT NULL,
  visitor     INTEGER NOT NULL,
  start_ts    INTEGER NOT NULL,
  end_ts      INTEGER NOT NULL,
  first_visit INTEGER NOT NULL,
  hits        INTEGER NOT NULL,
  pageviews   INTEGER NOT NULL,
  bounce      INTEGER NOT NULL,
  entry_path  TEXT NOT NULL,
  exit_path   TEXT NOT NULL,
  source      TEXT NOT NULL,               -- direct search social gov campaign other
  referrer    TEXT NOT NULL,               -- external referrer host, '' for none
  campaign    TEXT NOT NULL,
  browser     TEXT NOT NULL,
  os          TEXT NOT NULL,
  device      TEXT NOT NULL,
  province    TEXT NOT NULL,
  hour        INTEGER NOT NULL,            -- local hour of the visit's first hit
  PRIMARY KEY (site_id, day, visitor, start_ts)
);

-- Work tables of one rollup batch (emptied at the start of each batch, inside its
-- transaction): the visitor-days touched by new hits, and the visits removed (-1) and
-- re-added (+1) for them.
CREATE TABLE rollup_pending (
  site_id INTEGER NOT NULL,
  day     TEXT NOT NULL,
  visitor INTEGER NOT NULL,
  PRIMARY KEY (site_id, day, visitor)
);
CREATE TABLE rollup_visit_delta (
  sign        INTEGER NOT NULL,
  site_id     INTEGER NOT NULL,
  day         TEXT NOT NULL,
  first_visit INTEGER NOT NULL,
  pageviews   INTEGER NOT NULL,
  bounce      INTEGER NOT NULL,
  duration    INTEGER NOT NULL,
  entry_path  TEXT NOT NULL,
  exit_path   TEXT NOT NULL,
  source      TEXT NOT NULL,
  referrer    TEXT NOT NULL,
  campaign    TEXT NOT NULL,
  browser     TEXT NOT NULL,
  os          TEXT NOT NULL,
  device      TEXT NOT NULL,
  province    TEXT NOT NULL,
  hour        INTEGER NOT NULL
);

-- Daily totals per site. visitors = unique visitors of that day (ids rotate daily).
CREATE TABLE rollup_site_day (
  site_id     INTEGER NOT NULL,
  day         TEXT NOT NULL,
  visits      INTEGER NOT NULL DEFAULT 0,
  visitors    INTEGER NOT NULL DEFAULT 0,
  pageviews   INTEGER NOT NULL DEFAULT 0,
  bounces     INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,  -- total visit duration
  hits        INTEGER NOT NULL DEFAULT 0,  -- every stored hit, pings included
  events      INTEGER NOT NULL DEFAULT 0,
  outlinks    INTEGER NOT NULL DEFAULT 0,
  downloads   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (site_id, day)
);

-- Daily figures per site per dimension value. Dimensions:
--   page (pageviews only), entry (visits, bounces), exit (visits),
--   source, referrer, campaign, browser, os, device, province, hour
--   (visits, pageviews, bounces, duration_ms of the visits, attributed to the first hit).
-- hour: local hour '00'…'23' of the visit's start (pageviews: of the visits started then).
CREATE TABLE rollup_dimensions (
  site_id     INTEGER NOT NULL,
  dimension   TEXT NOT NULL,
  day         TEXT NOT NULL,
  value       TEXT NOT NULL,
  visits      INTEGER NOT NULL DEFAULT 0,
  pageviews   INTEGER NOT NULL DEFAULT 0,
  bounces     INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (site_id, dimension, day, value)
);

-- The same figures per calendar month ('YYYY-MM'), so a long range reads full months here
-- and only its partial edge months from rollup_dimensions (page/entry/exit have many values).
CREATE TABLE rollup_dimensions_month (
  site_id     INTEGER NOT NULL,
  dimension   TEXT NOT NULL,
  month       TEXT NOT NULL,
  value       TEXT NOT NULL,
  visits      INTEGER NOT NULL DEFAULT 0,
  pageviews   INTEGER NOT NULL DEFAULT 0,
  bounces     INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (site_id, dimension, month, value)
);

-- Work table of one rollup batch: the dimension deltas, applied to both tables above.
CREATE TABLE rollup_dim_delta (
  site_id     INTEGER NOT NULL,
  dimension   TEXT NOT NULL,
  day         TEXT NOT NULL,
  value       TEXT NOT NULL,
  visits      INTEGER NOT NULL,
  pageviews   INTEGER NOT NULL,
  bounces     INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL
);

-- DVC per site, day and service code (from trackDVC steps and ratings).
CREATE TABLE rollup_dvc (
  site_id      INTEGER NOT NULL,
  day          TEXT NOT NULL,
  service      TEXT NOT NULL,
  views        INTEGER NOT NULL DEFAULT 0,  -- state -1
  submissions  INTEGER NOT NULL DEFAULT 0,  -- state 1
  other_steps  INTEGER NOT NULL DEFAULT 0,  -- any other state
  ratings      INTEGER NOT NULL DEFAULT 0,
  rating_sum   INTEGER NOT NULL DEFAULT 0,
  ratings_good INTEGER NOT NULL DEFAULT 0,  -- ratings >= 4 (satisfaction)
  PRIMARY KEY (site_id, day, service)
);

-- Dossier events per site, day and service code. Receipt figures come from Status 1
-- events: received, online (FormsReception 1) / in person (2), full-process online
-- (Level 4 and online), payment online (FormsPayments 1) / in person (2);
-- results = Status 3 events; events = every stored event.
CREATE TABLE rollup_dossiers (
  site_id            INTEGER NOT NULL,
  day                TEXT NOT NULL,
  service            TEXT NOT NULL,
  events             INTEGER NOT NULL DEFAULT 0,
  received           INTEGER NOT NULL DEFAULT 0,
  received_online    INTEGER NOT NULL DEFAULT 0,
  received_in_person INTEGER NOT NULL DEFAULT 0,
  full_online        INTEGER NOT NULL DEFAULT 0,
  paid_online        INTEGER NOT NULL DEFAULT 0,
  paid_in_person     INTEGER NOT NULL DEFAULT 0,
  results            INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (site_id, day, service)
);

-- How far each source table has been rolled up: every id <= last_id is counted.
CREATE TABLE rollup_watermarks (
  name       TEXT PRIMARY KEY,             -- 'hits' | 'dossiers'
  last_id    INTEGER NOT NULL,
  updated_ts INTEGER NOT NULL
);
INSERT INTO rollup_watermarks (name, last_id, updated_ts) VALUES ('hits', 0, 0);
INSERT INTO rollup_watermarks (name, last_id, updated_ts) VALUES ('dossiers', 0, 0);

-- One row per retention run (shown in reports).
CREATE TABLE retention_runs (
  id                  INTEGER PRIMARY KEY,
  ran_ts              INTEGER NOT NULL,
  cutoff_day          TEXT NOT NULL,       -- raw rows of days before this were eligible
  hits_deleted        INTEGER NOT NULL,
  dossiers_deleted    INTEGER NOT NULL,
  visits_deleted      INTEGER NOT NULL,
  oldest_remaining_day TEXT                -- oldest day still in hits, NULL if empty
);
