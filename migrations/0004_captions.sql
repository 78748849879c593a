-- One-line captions the language model chose for a content (see src/answer/caption.rs).
-- Clear columns: ids and a model name only.
CREATE TABLE captions (
    content_id INTEGER PRIMARY KEY REFERENCES contents (id) ON DELETE CASCADE,
    model      TEXT    NOT NULL,   -- the generator that chose it; another model captions again
    text       BLOB                -- sealed caption; NULL when no line of the content could serve
);
CREATE INDEX captions_model ON captions (model);
