-- Profiles, session epochs and password-reset links (issue: profiles and account security).

-- Bumped whenever every session of the user must end (password changed or reset, account
-- deactivated, superuser demoted). A session remembers the epoch it was created in.
ALTER TABLE users ADD COLUMN session_epoch integer NOT NULL DEFAULT 0;

CREATE TABLE profiles
(
  user_id       text    NOT NULL PRIMARY KEY,
  full_name     text    NOT NULL DEFAULT '',
  headline      text    NOT NULL DEFAULT '',
  phone         text    NOT NULL DEFAULT '',
  location      text    NOT NULL DEFAULT '',
  website       text    NOT NULL DEFAULT '',
  bio           text    NOT NULL DEFAULT '',
  avatar_hash   text,
  avatar_width  integer,
  avatar_height integer,
  updated_at    text
) STRICT;

CREATE INDEX profiles_by_full_name ON profiles (full_name COLLATE NOCASE);

-- Reset links by the SHA-256 of their token (the token itself is never stored).
CREATE TABLE password_resets
(
  token_hash text    NOT NULL PRIMARY KEY,
  user_id    text    NOT NULL,
  expires_at text    NOT NULL,
  used       integer NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
) STRICT;

CREATE INDEX password_resets_by_user ON password_resets (user_id);
