-- engram store, version 5: exact sizes, modified times and picture dimensions leave the clear.
-- A file's size and modified time become a keyed hash, to tell an unchanged file; its exact
-- size is kept sealed, for display. Sizes that stay clear are rounded up to a bucket (see
-- store::bucket): contents.bytes for status, frames.bytes for retention by size.
-- Rows already stored are converted by store::migrate (the sealing needs the key), and
-- 0006 then drops the clear columns.

-- HMAC-SHA256 of (row id, size, modified time) under a key derived from the data key.
ALTER TABLE items ADD COLUMN change_key BLOB;
-- Sealed: the source's exact size in bytes (8 bytes little-endian).
ALTER TABLE items ADD COLUMN sealed_size BLOB;
-- Sealed: the picture's width and height in pixels (two 4-byte little-endian numbers).
ALTER TABLE frames ADD COLUMN dims BLOB;
