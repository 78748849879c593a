-- engram store, version 6: the clear exact sizes, modified times and picture dimensions,
-- copied sealed or hashed by version 5, are dropped. SQLite rewrites the rows; with
-- secure_delete on, the space they held is zeroed, and the store checkpoints its WAL after.
ALTER TABLE items DROP COLUMN mtime;
ALTER TABLE items DROP COLUMN size;
ALTER TABLE frames DROP COLUMN width;
ALTER TABLE frames DROP COLUMN height;
