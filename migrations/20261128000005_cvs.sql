-- CV read models (issue: CVs). Both are built by the projector from Cv events.

-- One row per CV, for lists and counts.
CREATE TABLE cvs
(
  id             text    NOT NULL PRIMARY KEY,
  owner_id       text    NOT NULL,
  title          text    NOT NULL,
  status         text    NOT NULL CHECK (status IN ('active', 'archived')),
  created_at     text    NOT NULL,
  updated_at     text    NOT NULL,
  version        integer NOT NULL,
  entry_count    integer NOT NULL DEFAULT 0,
  section_counts text    NOT NULL DEFAULT '{}'   -- JSON: {"work": 2, "skills": 5, ...}
) STRICT;

CREATE INDEX cvs_by_owner ON cvs (owner_id, status, updated_at);
CREATE INDEX cvs_by_updated ON cvs (updated_at);

-- The current state of each CV (the Cv aggregate's state as JSON), for rendering pages.
CREATE TABLE cv_documents
(
  cv_id   text    NOT NULL PRIMARY KEY,
  version integer NOT NULL,
  state   text    NOT NULL
) STRICT;
