-- Sentence embeddings of chunks, for semantic search.
-- `model` names the embedder that made the vector (a model name, not content).
CREATE TABLE embeddings (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    model    TEXT    NOT NULL,
    vector   BLOB    NOT NULL   -- sealed: little-endian f32 components, then one f32, the share of the
                                -- chunk's letters in scripts the model reads (see embed::coverage)
);
CREATE INDEX embeddings_model ON embeddings (model);
