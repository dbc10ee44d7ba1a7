-- Each user's last day of activity, and for each day how many users were last active on it.
-- Active users over the last N days are then a sum over at most N rows, however many users
-- there are: `COUNT(DISTINCT user_id)` over `activity` grew with the data (200 ms for 30 days
-- with 100,000 users, measured with bench/).
CREATE TABLE last_active
(
  user_id text NOT NULL PRIMARY KEY,
  day     text NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE last_active_days
(
  day   text    NOT NULL PRIMARY KEY,
  users integer NOT NULL
) STRICT, WITHOUT ROWID;

-- A day reaching 0 users loses its row in the same transaction.

-- A database from before this migration: derive both from `activity`.
INSERT INTO last_active (user_id, day)
SELECT user_id, MAX(day) FROM activity GROUP BY user_id;

INSERT INTO last_active_days (day, users)
SELECT day, COUNT(*) FROM last_active GROUP BY day;
