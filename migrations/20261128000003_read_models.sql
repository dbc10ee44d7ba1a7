-- Read models, built only by the projector from the event log. Each projector stores how far it
-- has read (`events.rowid`) in the same transaction as the rows it wrote. Uniqueness is the claims
-- table's job, so read-model indexes are not UNIQUE: a projection must never get stuck on a row.
CREATE TABLE projection_checkpoints
(
  name     text    NOT NULL PRIMARY KEY,
  position integer NOT NULL CHECK (position >= 0)
) STRICT;

INSERT INTO projection_checkpoints (name, position) VALUES ('read_models', 0);

CREATE TABLE users
(
  id                 text    NOT NULL PRIMARY KEY,
  username           text    NOT NULL,
  username_canonical text    NOT NULL,
  email              text    NOT NULL,
  role               text    NOT NULL CHECK (role IN ('user', 'superuser')),
  active             integer NOT NULL CHECK (active IN (0, 1)),
  date_joined        text    NOT NULL,
  last_login         text
) STRICT;

CREATE INDEX users_by_email ON users (email);
CREATE INDEX users_by_username ON users (username_canonical);
CREATE INDEX users_by_date_joined ON users (date_joined);
