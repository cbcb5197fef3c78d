-- Per-site summaries of closed months, so that compliance over a long period (a year) reads
-- 12 rows per site instead of every day with hits (collector/compliance.py: month_facts).
-- Written by the compliance computation itself, recomputed when older than a day.
CREATE TABLE compliance_site_months (
  month     TEXT NOT NULL,              -- 'YYYY-MM'
  site_id   INTEGER NOT NULL,
  days      INTEGER NOT NULL,           -- days with hits
  first_day TEXT NOT NULL,
  last_day  TEXT NOT NULL,
  pageviews INTEGER NOT NULL,
  hits      INTEGER NOT NULL,
  gap       INTEGER NOT NULL,           -- longest run without hits between first and last day
  gap_from  TEXT NOT NULL DEFAULT '',
  gap_to    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (month, site_id)
);

CREATE TABLE compliance_summary_months (
  month       TEXT PRIMARY KEY,
  computed_ts INTEGER NOT NULL
);
