-- Reports: accounts, API tokens. Sessions live in a signed cookie (no table).
CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  username    TEXT NOT NULL UNIQUE,
  pw_hash     TEXT NOT NULL,                 -- argon2id
  role        TEXT NOT NULL CHECK (role IN ('admin', 'agency')),
  agency_code TEXT NOT NULL DEFAULT '',      -- for role 'agency'
  created_ms  INTEGER NOT NULL,
  disabled    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
  token_hash  TEXT PRIMARY KEY,              -- sha256 hex of the token; the token is shown once
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  label       TEXT NOT NULL DEFAULT '',
  created_ms  INTEGER NOT NULL,
  last_used_ms INTEGER
);

-- Per-user report settings (the settings form).
CREATE TABLE user_settings (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (user_id, key)
);

-- National reports read every site over a date range: covering indexes by day, so a
-- 30-day overview touches 30 days of rows instead of the whole year.
CREATE INDEX report_site_day_by_day ON rollup_site_day
  (day, site_id, visits, visitors, pageviews, bounces, duration_ms, hits, events, outlinks,
   downloads);
CREATE INDEX report_dvc_by_day ON rollup_dvc
  (day, site_id, service, views, submissions, other_steps, ratings, rating_sum, ratings_good);
CREATE INDEX report_dossiers_by_day ON rollup_dossiers
  (day, site_id, service, events, received, received_online, received_in_person, full_online,
   paid_online, paid_in_person, results);
