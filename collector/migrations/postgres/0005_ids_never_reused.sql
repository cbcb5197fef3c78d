-- Twin of sqlite/0005_ids_never_reused.sql, which rebuilds SQLite's `hits` and `dossiers`
-- with `INTEGER PRIMARY KEY AUTOINCREMENT` so that a raw-event id is never handed out
-- twice (rollup watermarks are ids; SQLite's plain rowid takes max(id) + 1 after
-- retention deleted the newest rows). Nothing to do here: `hits.id` comes from the
-- sequence hits_id_seq and `dossiers.id` is an identity column, and PostgreSQL sequences
-- never go back, whatever rows are deleted (ids may be skipped, never reused). No schema
-- changes, so the numbering of both backends stays the same.
SELECT 1;
