-- The work tables of 0002 (rollup_pending, rollup_visit_delta, rollup_dim_delta) have not
-- been used since the rollup moved its work into TEMP tables of its own connection
-- (collector/rollup_sql.py): always empty, they only cost space in the schema.
DROP TABLE IF EXISTS rollup_pending;
DROP TABLE IF EXISTS rollup_visit_delta;
DROP TABLE IF EXISTS rollup_dim_delta;
