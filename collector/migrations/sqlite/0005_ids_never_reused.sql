-- Raw-event ids are never reused (SQLite). Rollup watermarks are ids (rollup_watermarks:
-- the last hits.id / dossiers.id rolled up), so a new row must always get an id above
-- every id handed out before. `INTEGER PRIMARY KEY` alone takes max(id) + 1: once
-- retention has deleted the newest rows (or emptied the table) new rows would get ids at
-- or below the watermark and never be rolled up. AUTOINCREMENT keeps the largest id ever
-- used in sqlite_sequence and never goes below it.
--
-- A column's PRIMARY KEY clause cannot be altered in place, so both tables are rebuilt:
-- new table (the same columns, types, defaults and constraints as 0001 / 0002, plus
-- AUTOINCREMENT), rows copied with their ids, old table dropped (its indexes go with it),
-- new table renamed, indexes recreated exactly (dossiers' only index is the one of its
-- UNIQUE constraint, made by the table itself). The sequence is seeded with the larger of
-- max(id) and the rollup watermark: when retention had already emptied a table, the
-- watermark is the only trace of the ids used. One transaction (the migration runner's):
-- on a large database this copies every raw row once and needs that much free disk space.

CREATE TABLE hits_new (
  id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: rollup watermarks
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
INSERT INTO hits_new (id, site_id, ts, day, kind, visitor, pv_id, host, path, url, title,
                      referrer, ref_host, utm_source, utm_medium, utm_campaign, browser, os,
                      device, country, province, screen, lang, e_c, e_a, e_n, e_v, target,
                      dvc_service, dvc_state, dvc_ref)
  SELECT id, site_id, ts, day, kind, visitor, pv_id, host, path, url, title,
         referrer, ref_host, utm_source, utm_medium, utm_campaign, browser, os,
         device, country, province, screen, lang, e_c, e_a, e_n, e_v, target,
         dvc_service, dvc_state, dvc_ref
  FROM hits ORDER BY id;
DROP TABLE hits;
ALTER TABLE hits_new RENAME TO hits;
CREATE INDEX hits_visitor_day ON hits (site_id, day, visitor, ts);

CREATE TABLE dossiers_new (
  id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: rollup watermarks
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
INSERT INTO dossiers_new (id, site_id, ts, day, dossier, profile, service, service_name,
                          status, reception, payment, level, from_dvcqg, dvcbc, user_type,
                          user_location, user_ref)
  SELECT id, site_id, ts, day, dossier, profile, service, service_name,
         status, reception, payment, level, from_dvcqg, dvcbc, user_type,
         user_location, user_ref
  FROM dossiers ORDER BY id;
DROP TABLE dossiers;
ALTER TABLE dossiers_new RENAME TO dossiers;

-- the largest id ever handed out, as far as the database still knows it
DELETE FROM sqlite_sequence WHERE name IN ('hits', 'dossiers', 'hits_new', 'dossiers_new');
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'hits', max(coalesce((SELECT max(id) FROM hits), 0),
                     coalesce((SELECT last_id FROM rollup_watermarks WHERE name = 'hits'), 0));
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'dossiers', max(coalesce((SELECT max(id) FROM dossiers), 0),
                         coalesce((SELECT last_id FROM rollup_watermarks
                                   WHERE name = 'dossiers'), 0));
