-- engram store, version 1.
-- Sealed columns (BLOB, AES-256-GCM, place-bound): items.source, items.title, items.meta, chunks.body.
-- Clear columns hold only times, sizes, counts, kinds, ids and keyed hashes.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('generation', 0), ('next_id', 1);

-- One row per distinct text: equal content is stored once, found by a keyed hash.
CREATE TABLE contents (
    id         INTEGER PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,  -- HMAC-SHA256 of the text under a key derived from the data key
    bytes      INTEGER NOT NULL,         -- length of the text in bytes
    generation INTEGER NOT NULL          -- store generation that last changed what the index holds for it
);
CREATE INDEX contents_generation ON contents (generation);

-- The pieces of a content that are indexed and shown. Chunks may overlap; `start` and `len` are
-- byte offsets into the content's text, so the whole text can be put back together.
CREATE TABLE chunks (
    id         INTEGER PRIMARY KEY,
    content_id INTEGER NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    len        INTEGER NOT NULL,
    body       BLOB    NOT NULL          -- sealed chunk text
);
CREATE INDEX chunks_content ON chunks (content_id, seq);

-- A memory: a file, a screen frame, or an evaluation document.
CREATE TABLE items (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('file', 'screen', 'doc')),
    source_key BLOB    NOT NULL UNIQUE,  -- HMAC of kind and source, to find a path again without storing it
    content_id INTEGER NOT NULL REFERENCES contents (id),
    source     BLOB    NOT NULL,         -- sealed: file path, or app for screen captures
    title      BLOB,                     -- sealed: document or window title
    meta       BLOB,                     -- sealed JSON: file type, app, url, ...
    time       INTEGER NOT NULL,         -- unix seconds: when it was written or seen (e-mail Date, mtime, capture)
    mtime      INTEGER NOT NULL,         -- unix seconds: the source file's modified time, to skip unchanged files
    size       INTEGER NOT NULL,         -- source size in bytes
    added_at   INTEGER NOT NULL          -- unix seconds
);
CREATE INDEX items_time ON items (time);
CREATE INDEX items_content ON items (content_id);
