-- Crypto-shredding (projections/src/event_log): every person's personal data in the event log is
-- encrypted with their own data key, stored here wrapped by the master key (which is never in
-- the database). Erasing a person destroys their key: the row keeps a tombstone, so that nothing
-- about them can be written again, and the log's copies of their data become unreadable.
CREATE TABLE data_keys
(
  subject_id    text NOT NULL PRIMARY KEY,   -- the user id the key belongs to
  wrapped_key   blob,                        -- nonce ‖ XChaCha20-Poly1305(master key, data key)
  master_key_id text,                        -- which master key wrapped it
  created_at    text NOT NULL,
  erased_at     text,                        -- set when the key was destroyed
  CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL)),
  CHECK ((wrapped_key IS NULL) = (master_key_id IS NULL))
) STRICT;

CREATE INDEX data_keys_by_master_key ON data_keys (master_key_id);

-- Recording an erasure destroys the erased user's data key in the same transaction, whoever
-- records it (server or CLI), so a crash can never leave an erased person readable.
CREATE TRIGGER erasure_destroys_the_data_key AFTER INSERT ON events
WHEN NEW.event_type = 'UserErased'
BEGIN
  INSERT OR IGNORE INTO data_keys (subject_id, wrapped_key, master_key_id, created_at, erased_at)
  VALUES (NEW.aggregate_id, NULL, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
          strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
  UPDATE data_keys
     SET wrapped_key = NULL, master_key_id = NULL,
         erased_at = COALESCE(erased_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
   WHERE subject_id = NEW.aggregate_id;
END;

-- Nothing more may be recorded about an erased person (a command racing the erasure fails).
CREATE TRIGGER events_about_erased_people_are_refused BEFORE INSERT ON events
WHEN json_extract(NEW.metadata, '$.subject') IS NOT NULL
 AND NOT EXISTS (SELECT 1 FROM data_keys
                  WHERE subject_id = json_extract(NEW.metadata, '$.subject')
                    AND wrapped_key IS NOT NULL)
BEGIN
  SELECT RAISE(ABORT, 'the person this event is about was erased');
END;

-- Events written before this migration hold personal data in plain text. The application seals
-- them at its next start (EventLog::seal_plaintext_events), in batches, moving `sealed_through`
-- up to `plaintext_through`; then this row is all that is left of the upgrade.
CREATE TABLE plaintext_events
(
  plaintext_through integer NOT NULL,
  sealed_through    integer NOT NULL
) STRICT;

INSERT INTO plaintext_events (plaintext_through, sealed_through)
SELECT COALESCE(MAX(rowid), 0), 0 FROM events;
