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
