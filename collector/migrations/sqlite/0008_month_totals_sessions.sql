-- Per-site totals per calendar month ('YYYY-MM'), so a long range (a year-long national
-- overview) reads whole months here and only its partial edge days from the daily tables.
-- Derived from rollup_site_day, rollup_dvc and rollup_dossiers by
-- collector/rollup_month.py (refresh_site_months, run after each rollup) for the months a
-- rollup touched; never written by ingest.
CREATE TABLE rollup_site_month (
  site_id            INTEGER NOT NULL,
  month              TEXT NOT NULL,
  visits             INTEGER NOT NULL DEFAULT 0,
  visitors           INTEGER NOT NULL DEFAULT 0,
  pageviews          INTEGER NOT NULL DEFAULT 0,
  bounces            INTEGER NOT NULL DEFAULT 0,
  duration_ms        INTEGER NOT NULL DEFAULT 0,
  hits               INTEGER NOT NULL DEFAULT 0,
  events             INTEGER NOT NULL DEFAULT 0,
  outlinks           INTEGER NOT NULL DEFAULT 0,
  downloads          INTEGER NOT NULL DEFAULT 0,
  views              INTEGER NOT NULL DEFAULT 0,
  submissions        INTEGER NOT NULL DEFAULT 0,
  other_steps        INTEGER NOT NULL DEFAULT 0,
  ratings            INTEGER NOT NULL DEFAULT 0,
  rating_sum         INTEGER NOT NULL DEFAULT 0,
  ratings_good       INTEGER NOT NULL DEFAULT 0,
  dossier_events     INTEGER NOT NULL DEFAULT 0,
  received           INTEGER NOT NULL DEFAULT 0,
  received_online    INTEGER NOT NULL DEFAULT 0,
  received_in_person INTEGER NOT NULL DEFAULT 0,
  full_online        INTEGER NOT NULL DEFAULT 0,
  paid_online        INTEGER NOT NULL DEFAULT 0,
  paid_in_person     INTEGER NOT NULL DEFAULT 0,
  results            INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (site_id, month)
);
-- National reads take every site of a month range: covering, as the daily tables' (0004).
CREATE INDEX rollup_site_month_by_month ON rollup_site_month
  (month, site_id, visits, visitors, pageviews, bounces, duration_ms, hits, events, outlinks,
   downloads, views, submissions, other_steps, ratings, rating_sum, ratings_good,
   dossier_events, received, received_online, received_in_person, full_online, paid_online,
   paid_in_person, results);

-- The same summed over every site, one row per month: the national overview's totals.
CREATE TABLE rollup_nation_month (
  month              TEXT PRIMARY KEY,
  visits             INTEGER NOT NULL DEFAULT 0,
  visitors           INTEGER NOT NULL DEFAULT 0,
  pageviews          INTEGER NOT NULL DEFAULT 0,
  bounces            INTEGER NOT NULL DEFAULT 0,
  duration_ms        INTEGER NOT NULL DEFAULT 0,
  hits               INTEGER NOT NULL DEFAULT 0,
  events             INTEGER NOT NULL DEFAULT 0,
  outlinks           INTEGER NOT NULL DEFAULT 0,
  downloads          INTEGER NOT NULL DEFAULT 0,
  views              INTEGER NOT NULL DEFAULT 0,
  submissions        INTEGER NOT NULL DEFAULT 0,
  other_steps        INTEGER NOT NULL DEFAULT 0,
  ratings            INTEGER NOT NULL DEFAULT 0,
  rating_sum         INTEGER NOT NULL DEFAULT 0,
  ratings_good       INTEGER NOT NULL DEFAULT 0,
  dossier_events     INTEGER NOT NULL DEFAULT 0,
  received           INTEGER NOT NULL DEFAULT 0,
  received_online    INTEGER NOT NULL DEFAULT 0,
  received_in_person INTEGER NOT NULL DEFAULT 0,
  full_online        INTEGER NOT NULL DEFAULT 0,
  paid_online        INTEGER NOT NULL DEFAULT 0,
  paid_in_person     INTEGER NOT NULL DEFAULT 0,
  results            INTEGER NOT NULL DEFAULT 0
);

-- And per day ('YYYY-MM-DD'): the national totals and chart of any range.
CREATE TABLE rollup_nation_day (
  day                TEXT PRIMARY KEY,
  visits             INTEGER NOT NULL DEFAULT 0,
  visitors           INTEGER NOT NULL DEFAULT 0,
  pageviews          INTEGER NOT NULL DEFAULT 0,
  bounces            INTEGER NOT NULL DEFAULT 0,
  duration_ms        INTEGER NOT NULL DEFAULT 0,
  hits               INTEGER NOT NULL DEFAULT 0,
  events             INTEGER NOT NULL DEFAULT 0,
  outlinks           INTEGER NOT NULL DEFAULT 0,
  downloads          INTEGER NOT NULL DEFAULT 0,
  views              INTEGER NOT NULL DEFAULT 0,
  submissions        INTEGER NOT NULL DEFAULT 0,
  other_steps        INTEGER NOT NULL DEFAULT 0,
  ratings            INTEGER NOT NULL DEFAULT 0,
  rating_sum         INTEGER NOT NULL DEFAULT 0,
  ratings_good       INTEGER NOT NULL DEFAULT 0,
  dossier_events     INTEGER NOT NULL DEFAULT 0,
  received           INTEGER NOT NULL DEFAULT 0,
  received_online    INTEGER NOT NULL DEFAULT 0,
  received_in_person INTEGER NOT NULL DEFAULT 0,
  full_online        INTEGER NOT NULL DEFAULT 0,
  paid_online        INTEGER NOT NULL DEFAULT 0,
  paid_in_person     INTEGER NOT NULL DEFAULT 0,
  results            INTEGER NOT NULL DEFAULT 0
);

-- Dossier counters per site, month and service code (procedure share over long ranges).
CREATE TABLE rollup_dossiers_month (
  site_id            INTEGER NOT NULL,
  month              TEXT NOT NULL,
  service            TEXT NOT NULL,
  events             INTEGER NOT NULL DEFAULT 0,
  received           INTEGER NOT NULL DEFAULT 0,
  received_online    INTEGER NOT NULL DEFAULT 0,
  received_in_person INTEGER NOT NULL DEFAULT 0,
  full_online        INTEGER NOT NULL DEFAULT 0,
  paid_online        INTEGER NOT NULL DEFAULT 0,
  paid_in_person     INTEGER NOT NULL DEFAULT 0,
  results            INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (site_id, month, service)
);
CREATE INDEX rollup_dossiers_month_by_month ON rollup_dossiers_month
  (month, service, site_id, events, received, received_online, received_in_person,
   full_online, paid_online, paid_in_person, results);

-- Refused-hit counters of every site over a date range (the overview's totals).
CREATE INDEX dropped_by_day ON dropped (day, site_id, n);

-- The rollup watermarks the monthly tables were last refreshed at. Readers use the
-- monthly tables only while these equal rollup_watermarks (else the daily tables): a
-- rollup run without a refresh is slower to read, never wrong. No row yet: the first
-- refresh recomputes every month.
CREATE TABLE rollup_month_state (
  name    TEXT PRIMARY KEY,
  last_id INTEGER NOT NULL
);

-- Session revocation: a session cookie carries the epoch it was issued at; logging out,
-- a password change or disabling the account bumps it, so older cookies stop working.
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
