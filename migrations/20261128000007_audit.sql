-- The audit trail (issue: admin). One row per event of the log, written by the projector, so the
-- trail can be listed, filtered and paged without parsing event JSON. Payload and metadata stay in
-- the log itself; the detail page reads them from there by position.
CREATE TABLE audit_log
(
  position       integer NOT NULL PRIMARY KEY,  -- events.rowid: commit order, the keyset cursor
  at             text    NOT NULL,              -- metadata time, fixed-width UTC; '' if unknown
  actor_id       text,                          -- the logged-in user; NULL for anonymous / CLI
  aggregate_type text    NOT NULL,              -- 'User', 'Cv'
  aggregate_id   text    NOT NULL,
  event_type     text    NOT NULL,
  summary        text    NOT NULL,              -- the event in words (never a secret)
  ip             text,
  user_agent     text,
  request_id     text
) STRICT;

-- Each filter is an equality plus "position < cursor ORDER BY position DESC", so an index on
-- (filter column, position) makes every filtered page a short index range scan, never a sort.
-- (position is the rowid, so SQLite would append it anyway; naming it documents the intent.)
CREATE INDEX audit_log_by_actor ON audit_log (actor_id, position);
CREATE INDEX audit_log_by_aggregate ON audit_log (aggregate_id, position);
CREATE INDEX audit_log_by_event_type ON audit_log (event_type, position);
-- Date ranges: used when the range is narrow (see projections/src/audit.rs).
CREATE INDEX audit_log_by_at ON audit_log (at);

-- The event types seen so far, for the filter's select: a handful of rows, instead of a DISTINCT
-- over a million.
CREATE TABLE audit_event_types
(
  event_type text NOT NULL PRIMARY KEY
) STRICT, WITHOUT ROWID;
