-- engram store, version 7: files the extraction worker could not read (it crashed, ran out of
-- time or memory) and damaged documents, remembered so they are not read again until they
-- change. One row per path.

CREATE TABLE skipped (
    id         INTEGER PRIMARY KEY,
    source_key BLOB NOT NULL UNIQUE,  -- keyed hash of the path's exact bytes, to find the row again
    change_key BLOB NOT NULL,         -- keyed hash of the path, size and modified time it failed at, and engram's version
    path       BLOB NOT NULL,         -- sealed: the path's exact bytes
    reason     BLOB NOT NULL          -- sealed JSON: why it was skipped (extract::Skip)
);
