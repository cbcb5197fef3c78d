-- Dossier events partitioned by local (UTC+7) month on `ts`, like hits (0001), so that
-- retention drops whole months of them instead of deleting rows. Twin of
-- sqlite/0007_dossiers_partitioned.sql (nothing to do there: SQLite has no partitions).
--
-- A table rebuild: the same columns, types and defaults as 0002's `dossiers`, rows copied
-- with their ids, the old table dropped, the new one renamed.
--
-- Ids. Identity columns on partitioned tables need PostgreSQL 17, so `id` comes from a
-- sequence owned by the column (as hits_id_seq), which `horizon('dossiers')` reads through
-- pg_get_serial_sequence. It starts above the largest id ever handed out: max(id), the old
-- identity sequence's last value and the rollup watermark (ids are never reused, 0005).
--
-- Idempotency. 0002's UNIQUE (site_id, dossier, status) cannot stay: a unique index on a
-- partitioned table must contain the partition key, and (site_id, dossier, status, ts)
-- would take the same event posted again a minute later, or in the next month, as new.
-- Instead a row trigger (giamsat_dossier_once) refuses a second copy of an event key:
-- it takes a transaction advisory lock on the key (concurrent posts of one event from two
-- collectors wait for each other), then looks the key up in every partition through the
-- index dossiers_event; a copy found → the row is skipped (INSERT … 0 rows, which
-- /TrackingMCDT answers as a duplicate). The look-up after the lock sees the other
-- transaction's row once it committed because each statement of the trigger takes a new
-- snapshot at READ COMMITTED (the default; the trigger refuses other levels, whose
-- snapshot would predate the wait). As before, an event's key goes with its row: once
-- retention dropped its month, the same event posted again counts again.
--
-- Partitions: dossiers_YYYYMM for every month that holds rows now (the store creates the
-- current month and two ahead on every start and hourly) and dossiers_default for the
-- rest; rows that land in DEFAULT move into their month when it is created.

CREATE SEQUENCE dossiers_new_id_seq AS bigint;
CREATE TABLE dossiers_new (
  id           bigint NOT NULL DEFAULT nextval('dossiers_new_id_seq'),
  site_id      bigint NOT NULL,
  ts           bigint NOT NULL,           -- when the collector received the event
  day          text NOT NULL,
  dossier      text NOT NULL,              -- keyed hash of MaHoSo
  profile      text NOT NULL,              -- keyed hash of CodeProfile
  service      text NOT NULL,              -- CodeTTHC (procedure code, public)
  service_name text NOT NULL DEFAULT '',   -- NameTTHC, personal data redacted
  status       bigint NOT NULL,           -- 0 other 1 received 2 processing 3 returned 4 assigned
  reception    bigint NOT NULL,           -- FormsReception 1 online 2 in person
  payment      bigint NOT NULL,           -- FormsPayments 0 none 1 online 2 in person
  level        bigint NOT NULL,           -- 0 1 (2 legacy) 3 4
  from_dvcqg   bigint NOT NULL,
  dvcbc        bigint NOT NULL,
  user_type    text NOT NULL DEFAULT '',
  user_location text NOT NULL DEFAULT '',  -- province code, kept
  user_ref     text NOT NULL DEFAULT '',   -- keyed hash of ID_QG (or ID_local)
  PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
ALTER SEQUENCE dossiers_new_id_seq OWNED BY dossiers_new.id;
CREATE TABLE dossiers_default PARTITION OF dossiers_new DEFAULT;

-- one partition per local month that holds events (bounds in ms, like month_start())
DO $$
DECLARE
  m timestamp;
BEGIN
  FOR m IN
    SELECT DISTINCT date_trunc('month', to_timestamp((ts + 25200000) / 1000.0) AT TIME ZONE 'UTC')
    FROM dossiers
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF dossiers_new FOR VALUES FROM (%s) TO (%s)',
                   'dossiers_' || to_char(m, 'YYYYMM'),
                   (extract(epoch FROM m) * 1000)::bigint - 25200000,
                   (extract(epoch FROM m + interval '1 month') * 1000)::bigint - 25200000);
  END LOOP;
END
$$;

INSERT INTO dossiers_new (id, site_id, ts, day, dossier, profile, service, service_name,
                          status, reception, payment, level, from_dvcqg, dvcbc, user_type,
                          user_location, user_ref)
  SELECT id, site_id, ts, day, dossier, profile, service, service_name,
         status, reception, payment, level, from_dvcqg, dvcbc, user_type,
         user_location, user_ref
  FROM dossiers ORDER BY id;

-- the largest id ever handed out, as far as the database knows it
SELECT setval('dossiers_new_id_seq', top)
FROM (SELECT greatest(
        (SELECT max(id) FROM dossiers),
        pg_sequence_last_value(pg_get_serial_sequence('dossiers', 'id')::regclass),
        (SELECT last_id FROM rollup_watermarks WHERE name = 'dossiers')) AS top) s
WHERE top > 0;

DROP TABLE dossiers;  -- its identity sequence and insert-barrier trigger go with it
ALTER TABLE dossiers_new RENAME TO dossiers;
ALTER SEQUENCE dossiers_new_id_seq RENAME TO dossiers_id_seq;
ALTER TABLE dossiers RENAME CONSTRAINT dossiers_new_pkey TO dossiers_pkey;

-- the event key, looked up by the trigger below (one index per partition)
CREATE INDEX dossiers_event ON dossiers (site_id, dossier, status);

CREATE FUNCTION giamsat_dossier_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'dossier events must be inserted at READ COMMITTED (not %)',
      current_setting('transaction_isolation');
  END IF;
  PERFORM pg_advisory_xact_lock(26474, hashtext(NEW.site_id || ':' || NEW.status || ':'
                                                || NEW.dossier));
  IF EXISTS (SELECT 1 FROM dossiers WHERE site_id = NEW.site_id AND dossier = NEW.dossier
             AND status = NEW.status) THEN
    RETURN NULL;  -- the event is stored already: skip this copy
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER dossiers_once BEFORE INSERT ON dossiers
  FOR EACH ROW EXECUTE FUNCTION giamsat_dossier_once();
-- the rollup horizon's insert barrier (0002), now on the partitioned table
CREATE TRIGGER dossiers_insert_barrier BEFORE INSERT ON dossiers
  FOR EACH STATEMENT EXECUTE FUNCTION giamsat_insert_barrier();
