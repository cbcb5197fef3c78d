-- Per-site summaries of closed months, so that compliance over a long period (a year) reads
-- 12 rows per site instead of every day with hits (collector/compliance.py: month_facts).
-- Written by the compliance computation itself, recomputed when older than a day.
CREATE TABLE compliance_site_months (
  month     text NOT NULL,              -- 'YYYY-MM'
  site_id   bigint NOT NULL,
  days      integer NOT NULL,           -- days with hits
  first_day text NOT NULL,
  last_day  text NOT NULL,
  pageviews bigint NOT NULL,
  hits      bigint NOT NULL,
  gap       integer NOT NULL,           -- longest run without hits between first and last day
  gap_from  text NOT NULL DEFAULT '',
  gap_to    text NOT NULL DEFAULT '',
  PRIMARY KEY (month, site_id)
);

CREATE TABLE compliance_summary_months (
  month       text PRIMARY KEY,
  computed_ts bigint NOT NULL
);
