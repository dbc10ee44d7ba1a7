-- The startup sweep of orphaned claims (`claims::release_orphans`) looks only at claims taken
-- since the previous sweep's cutoff, found through this index; it looked at every claim and
-- took 1.2 s of startup with 100,000 users (measured with bench/).
CREATE INDEX claims_by_claimed_at ON claims (claimed_at);

-- The cutoff of the last sweep: every claim taken before it has been judged.
CREATE TABLE claim_sweeps
(
  id           integer NOT NULL PRIMARY KEY CHECK (id = 1),
  swept_before text    NOT NULL
) STRICT;

-- Erased people, found without reading every data key.
CREATE INDEX data_keys_erased ON data_keys (subject_id) WHERE erased_at IS NOT NULL;
