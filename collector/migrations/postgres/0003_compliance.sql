-- giamsat compliance schema (PostgreSQL): install scans and their pages, scan URL overrides,
-- totals agencies report themselves for reconciliation (đối soát).
-- Owned by collector/scan.py, collector/reconcile.py, collector/compliance.py.
-- Times are integer ms since the epoch (UTC); periods are months 'YYYY-MM'.

-- Where the scanner looks for a site when not at https://<first registered host>/
-- (a staging address, a portal behind a path, local fixture servers in tests).
CREATE TABLE scan_targets (
  site_id  INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
  base_url TEXT NOT NULL
);

-- One row per site per scan: what the home page and the sampled pages showed.
-- snippet / site_id_state / tracker: the home page's finding (see collector/scan_html.py);
-- findings: JSON list of finding codes over all pages (collector/scan.py).
CREATE TABLE scans (
  site_id        INTEGER NOT NULL,
  ts             BIGINT NOT NULL,
  base_url       TEXT NOT NULL,
  duration_ms    BIGINT NOT NULL,
  home_status    TEXT NOT NULL,        -- ok timeout dns_error tls_error connection_refused …
  https_enforced INTEGER,              -- 1 http:// redirects to https (or is refused), 0 not, NULL unknown
  snippet        TEXT NOT NULL,        -- present | commented | absent | unknown (home unreachable)
  site_id_found  TEXT NOT NULL DEFAULT '',
  site_id_state  TEXT NOT NULL DEFAULT '',  -- right | wrong | empty | missing | ''
  tracker_url    TEXT NOT NULL DEFAULT '',
  tracker_https  INTEGER,
  tracker_ours   INTEGER,
  loader         INTEGER NOT NULL DEFAULT 0,
  badge          INTEGER NOT NULL DEFAULT 0,
  pages          INTEGER NOT NULL DEFAULT 0,   -- pages fetched (home included)
  pages_ok       INTEGER NOT NULL DEFAULT 0,   -- HTML pages read
  pages_snippet  INTEGER NOT NULL DEFAULT 0,   -- of those, with an active snippet
  findings       TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (site_id, ts)
);
CREATE INDEX scans_ts ON scans (ts);

CREATE TABLE scan_pages (
  site_id       INTEGER NOT NULL,
  ts            BIGINT NOT NULL,
  n             INTEGER NOT NULL,      -- 0 = home page, then sampled pages in order
  url           TEXT NOT NULL,
  final_url     TEXT NOT NULL DEFAULT '',
  status        TEXT NOT NULL,
  http_status   INTEGER,
  elapsed_ms    INTEGER NOT NULL DEFAULT 0,
  snippet       TEXT NOT NULL DEFAULT 'unknown',
  site_id_found TEXT NOT NULL DEFAULT '',
  site_id_state TEXT NOT NULL DEFAULT '',
  tracker_url   TEXT NOT NULL DEFAULT '',
  tracker_https INTEGER,
  tracker_ours  INTEGER,
  loader        INTEGER NOT NULL DEFAULT 0,
  badge         INTEGER NOT NULL DEFAULT 0,
  error         TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (site_id, ts, n)
);

-- Totals an agency reports itself (CSV upload or API): online dossiers received per site,
-- procedure (service code) and month. Re-uploading a row replaces its count.
CREATE TABLE reported_totals (
  site_id     INTEGER NOT NULL,
  service     TEXT NOT NULL,
  period      TEXT NOT NULL,           -- 'YYYY-MM'
  count       INTEGER NOT NULL,
  source      TEXT NOT NULL DEFAULT '',  -- 'csv:<file name>' | 'api'
  uploaded_ts BIGINT NOT NULL,
  PRIMARY KEY (site_id, service, period)
);


-- Month-by-month counts of required sites per state (the history on /compliance), kept so
-- the history does not recompute twelve months on every view; a closed month is recomputed
-- when its row is older than a day (late rollups, scans and reported totals still count).
CREATE TABLE compliance_months (
  month          TEXT PRIMARY KEY,         -- 'YYYY-MM'
  computed_ts    BIGINT  NOT NULL,
  not_connected  INTEGER NOT NULL,
  incomplete     INTEGER NOT NULL,
  interrupted    INTEGER NOT NULL,
  not_reconciled INTEGER NOT NULL,
  compliant      INTEGER NOT NULL
);
