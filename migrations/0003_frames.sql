-- Screenshots of screen memories. One row per `screen` item; deleting the item deletes it.
-- Clear columns: sizes only.
CREATE TABLE frames (
    item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    width   INTEGER NOT NULL,
    height  INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,   -- image + thumbnail + words, sealed, for retention by size
    image   BLOB    NOT NULL,   -- sealed WebP of the whole screen, sensitive words blacked out
    thumb   BLOB    NOT NULL,   -- sealed WebP, 320 pixels wide
    words   BLOB    NOT NULL    -- sealed JSON: OCR words with boxes and confidences
);
