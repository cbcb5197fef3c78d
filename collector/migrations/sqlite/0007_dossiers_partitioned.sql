-- Twin of postgres/0007_dossiers_partitioned.sql, which rebuilds PostgreSQL's `dossiers` as
-- a table partitioned by month (like hits) so that retention drops whole months, and
-- moves the event key's uniqueness from a UNIQUE constraint (a unique index on a
-- partitioned table must contain the partition key) into a trigger. Nothing to do here:
-- SQLite has no partitions, retention deletes old rows in short id-bounded batches, and
-- UNIQUE (site_id, dossier, status) keeps dossier events idempotent. No schema changes, so
-- the numbering of both backends stays the same.
SELECT 1;
