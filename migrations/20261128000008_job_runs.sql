-- The last run of each scheduled job, for the admin dashboard. Not a projection of the event
-- log: the jobs write it themselves.
CREATE TABLE job_runs
(
  name        text    NOT NULL PRIMARY KEY,
  last_run_at text    NOT NULL,
  ok          integer NOT NULL CHECK (ok IN (0, 1)),
  detail      text    NOT NULL
) STRICT;
