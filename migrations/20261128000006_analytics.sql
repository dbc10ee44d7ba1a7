-- Analytics read models behind the admin dashboard (projections/src/analytics.rs). The projector
-- keeps them up to date event by event, so the dashboard reads a few dozen small rows whatever
-- the size of the log: no dashboard query scans `events` or all of `users`.
--
-- No row is inserted here: a rebuild empties these tables and replays the log, and `--verify`
-- compares them with a freshly migrated database, so every row must come from an event.

-- Counters per UTC day ('YYYY-MM-DD'), for the 7- and 30-day figures and the charts.
CREATE TABLE daily_stats
(
  day           text    NOT NULL PRIMARY KEY,
  signups       integer NOT NULL DEFAULT 0,
  logins        integer NOT NULL DEFAULT 0,
  failed_logins integer NOT NULL DEFAULT 0,
  cvs_created   integer NOT NULL DEFAULT 0,
  cv_edits      integer NOT NULL DEFAULT 0
) STRICT;

-- The same counters per UTC hour ('YYYY-MM-DDTHH'), for the "last 24 hours" figures.
CREATE TABLE hourly_stats
(
  hour          text    NOT NULL PRIMARY KEY,
  signups       integer NOT NULL DEFAULT 0,
  logins        integer NOT NULL DEFAULT 0,
  failed_logins integer NOT NULL DEFAULT 0,
  cvs_created   integer NOT NULL DEFAULT 0,
  cv_edits      integer NOT NULL DEFAULT 0
) STRICT;

-- Who was active on which day: one row per user and day, whatever they did how often. Active
-- users over a period are `COUNT(DISTINCT user_id)` over a range of the by-day index.
CREATE TABLE activity
(
  user_id text NOT NULL,
  day     text NOT NULL,
  PRIMARY KEY (user_id, day)
) STRICT, WITHOUT ROWID;

CREATE INDEX activity_by_day ON activity (day, user_id);

-- Running totals (users, active_users, deactivated_users, superusers, cvs, archived_cvs),
-- moved by each event's transition rather than counted, so reading them costs one row each.
CREATE TABLE totals
(
  name  text    NOT NULL PRIMARY KEY,
  value integer NOT NULL DEFAULT 0
) STRICT;

-- The dashboard's "latest logins" is `ORDER BY last_login DESC LIMIT 10` on the users read
-- model; this index makes it a short index walk instead of a sort of every account.
CREATE INDEX users_by_last_login ON users (last_login);
