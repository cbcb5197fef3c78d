-- giamsat core schema (PostgreSQL), the peer of sqlite/0001_init.sql: same tables, same
-- column names, equivalent types (INTEGER -> bigint, REAL -> double precision, TEXT).
-- Times are integer milliseconds since the epoch (UTC); `day` is the local date
-- (Asia/Ho_Chi_Minh, UTC+7) as YYYY-MM-DD, computed at ingest.

CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE agencies (
  code           text PRIMARY KEY,
  kind           text NOT NULL,
  name           text NOT NULL,
  merged_from    text NOT NULL DEFAULT '',
  effective_from text NOT NULL,
  effective_to   text
);

CREATE TABLE sites (
  id            bigint PRIMARY KEY,
  agency_code   text NOT NULL REFERENCES agencies(code),
  kind          text NOT NULL CHECK (kind IN ('portal', 'dvc', 'onestop', 'other')),
  name          text NOT NULL,
  registered_on text NOT NULL,
  required      bigint NOT NULL DEFAULT 1
);

CREATE TABLE site_hosts (
  site_id bigint NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  host    text NOT NULL,
  PRIMARY KEY (site_id, host)
);
CREATE INDEX site_hosts_host ON site_hosts (host);

-- Raw events, partitioned by local month on `ts` (ms). Partitions are named hits_YYYYMM
-- and created ahead by the store (on migrate and by a background job); the DEFAULT
-- partition takes anything outside them so no hit is ever refused. Retention drops
-- whole partitions. `id` comes from one sequence shared by all partitions (identity
-- columns on partitioned tables need PostgreSQL 17); the primary key must include the
-- partition key, hence (id, ts).
CREATE SEQUENCE hits_id_seq AS bigint;
CREATE TABLE hits (
  id           bigint NOT NULL DEFAULT nextval('hits_id_seq'),
  site_id      bigint NOT NULL,
  ts           bigint NOT NULL,
  day          text NOT NULL,
  kind         text NOT NULL,
  visitor      bigint NOT NULL,
  pv_id        text NOT NULL DEFAULT '',
  host         text NOT NULL,
  path         text NOT NULL,
  url          text NOT NULL,
  title        text NOT NULL DEFAULT '',
  referrer     text NOT NULL DEFAULT '',
  ref_host     text NOT NULL DEFAULT '',
  utm_source   text NOT NULL DEFAULT '',
  utm_medium   text NOT NULL DEFAULT '',
  utm_campaign text NOT NULL DEFAULT '',
  browser      text NOT NULL DEFAULT '',
  os           text NOT NULL DEFAULT '',
  device       text NOT NULL DEFAULT '',
  country      text NOT NULL DEFAULT '',
  province     text NOT NULL DEFAULT '',
  screen       text NOT NULL DEFAULT '',
  lang         text NOT NULL DEFAULT '',
  e_c          text NOT NULL DEFAULT '',
  e_a          text NOT NULL DEFAULT '',
  e_n          text NOT NULL DEFAULT '',
  e_v          double precision,
  target       text NOT NULL DEFAULT '',
  dvc_service  text NOT NULL DEFAULT '',
  dvc_state    bigint,
  dvc_ref      text NOT NULL DEFAULT '',
  PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
ALTER SEQUENCE hits_id_seq OWNED BY hits.id;
CREATE TABLE hits_default PARTITION OF hits DEFAULT;

-- Insert barrier for incremental rollups. Concurrent collectors commit ids out of order,
-- so "every id <= max(id) is committed" does not hold. Every INSERT/COPY into a table
-- with this trigger first takes a shared transaction advisory lock named after the
-- table; the store's horizon(table) takes it exclusively for one statement and reads
-- the id sequence: at that instant no insert is in flight, so no id at or below the
-- sequence's value can still appear.
CREATE FUNCTION giamsat_insert_barrier() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(26473, hashtext(TG_TABLE_NAME));
  RETURN NULL;
END
$$;
CREATE TRIGGER hits_insert_barrier BEFORE INSERT ON hits
  FOR EACH STATEMENT EXECUTE FUNCTION giamsat_insert_barrier();

CREATE TABLE dropped (
  site_id bigint NOT NULL,
  day     text NOT NULL,
  reason  text NOT NULL,
  host    text NOT NULL DEFAULT '',
  n       bigint NOT NULL,
  PRIMARY KEY (site_id, day, reason, host)
);

CREATE TABLE salts (
  day  text PRIMARY KEY,
  salt text NOT NULL
);

-- Group-commit batches already in the database (PostgreSQL only): a batch written from
-- the local spool after an outage is skipped if its id is here, so a replay never
-- duplicates. `at` (ms) lets old ids be pruned.
CREATE TABLE spool_batches (
  batch_id text PRIMARY KEY,
  at       bigint NOT NULL
);
CREATE INDEX spool_batches_at ON spool_batches (at);

-- Portability shim so the plain SQL written for SQLite runs here too: SQLite's
-- round(real, n) (PostgreSQL only has round(numeric, int)).
CREATE FUNCTION round(double precision, integer) RETURNS double precision
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS 'SELECT round($1::numeric, $2)::double precision';
