-- Uniqueness across aggregates (usernames, emails). A value is claimed before the command that
-- needs it runs and released if that command fails; the primary key makes the race between two
-- registrations with one email end with exactly one winner. Never decided by a read-model lookup.
CREATE TABLE claims
(
  kind       text NOT NULL,          -- 'username' (lower-cased) or 'email'
  value      text NOT NULL,
  owner_id   text NOT NULL,          -- the aggregate id that holds the claim
  claimed_at text NOT NULL,
  PRIMARY KEY (kind, value)
) STRICT;

CREATE INDEX claims_by_owner ON claims (owner_id);
