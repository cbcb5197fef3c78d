-- Hit watermarks per part. On SQLite a big backlog is rolled up as two streams by site
-- (collector/rollup.py, "Two parts"): part 0 holds the sites whose id modulo 16 is below
-- 8, part 1 the rest, each stream with its own batches and transactions. Every hit of a
-- part's sites with id <= last_id is counted. rollup_watermarks 'hits' stays the smaller
-- of the two (every hit up to it is counted: what retention, reports and the monthly
-- refresh read). generation grows with every transaction that changes a part's rollup rows,
-- so a stream whose reads no longer match it computes again instead of applying them.
-- PostgreSQL never streams: its batches move both parts with 'hits'.
CREATE TABLE rollup_parts (
  part       integer PRIMARY KEY,
  last_id    bigint NOT NULL,
  generation bigint NOT NULL
);
INSERT INTO rollup_parts (part, last_id, generation)
  SELECT 0, last_id, 0 FROM rollup_watermarks WHERE name = 'hits';
INSERT INTO rollup_parts (part, last_id, generation)
  SELECT 1, last_id, 0 FROM rollup_watermarks WHERE name = 'hits';
