-- Secondary indexes of the big read-model tables that a rebuild dropped while it replays the
-- log (projections/src/deferred_indexes.rs). Each row is made again from its `sql` at the end
-- of the rebuild, before an erasure is applied (erasure looks rows up through them), or at the
-- next start if the rebuild was interrupted; the row goes in the transaction that makes it.
CREATE TABLE deferred_indexes
(
  name text NOT NULL PRIMARY KEY,
  sql  text NOT NULL
) STRICT;
