//! Sealed embeddings, one per chunk and model. Vectors are content (they can be inverted into
//! approximate text), so they are sealed like text, bound to their chunk's row.

use rusqlite::{params, OptionalExtension};

use super::{RawChunk, Result, Store, StoredChunk};
use crate::crypto::{CryptoError, Place};

/// A chunk's vector with the ids needed to rank it.
#[derive(Debug, Clone)]
pub struct StoredVector {
    pub chunk_id: i64,
    pub content_id: i64,
    pub vector: Vec<f32>,
    /// Share of the chunk's letters the model reads (1.0 for a multilingual model).
    pub coverage: f32,
}

fn place(chunk_id: i64) -> Place<'static> {
    Place { table: "embeddings", column: "vector", row: chunk_id }
}

impl Store {
    /// Chunks that have no vector from `model` yet, oldest first.
    pub fn chunks_without_vector(&self, model: &str, limit: usize) -> Result<Vec<StoredChunk>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, c.content_id, c.seq, c.start, c.len, c.body FROM chunks c
             LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model = ?1
             WHERE e.chunk_id IS NULL ORDER BY c.id LIMIT ?2",
        )?;
        let raws = stmt.query_map(params![model, limit as i64], RawChunk::from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(|r| r.open(&self.sealer)).collect()
    }

    pub fn count_without_vector(&self, model: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model = ?1
             WHERE e.chunk_id IS NULL",
            [model],
            |r| r.get(0),
        )?)
    }

    /// Stores vectors (with their coverage) in one transaction. Vectors of other models are
    /// dropped: one embedder is in use at a time.
    pub fn put_vectors(&mut self, model: &str, vectors: &[(i64, Vec<f32>, f32)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM embeddings WHERE model != ?1", [model])?;
        // Vectors land after their chunks, in a write of their own: readers that stay open
        // watch this counter beside the generation (see `vector_writes`).
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('vector_writes', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
            [],
        )?;
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR REPLACE INTO embeddings (chunk_id, model, vector) VALUES (?1, ?2, ?3)")?;
            for (chunk_id, v, coverage) in vectors {
                let mut bytes = Vec::with_capacity((v.len() + 1) * 4);
                for x in v.iter().chain(std::iter::once(coverage)) {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
                let sealed = self.sealer.seal(place(*chunk_id), &bytes)?;
                // A chunk deleted meanwhile has no row to hang a vector on; skip it.
                if let Err(e) = stmt.execute(params![chunk_id, model, sealed]) {
                    if !matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation)) {
                        return Err(e.into());
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every vector of `model`, opened.
    pub fn vectors(&self, model: &str) -> Result<Vec<StoredVector>> {
        let mut out = Vec::new();
        self.each_vector(model, &mut |v| out.push(v))?;
        Ok(out)
    }

    /// Hands every vector of `model` to `f` as it is opened, in chunk order, so a caller that
    /// keeps them smaller (as bytes) never holds them all as floats.
    pub fn each_vector(&self, model: &str, f: &mut dyn FnMut(StoredVector)) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT e.chunk_id, c.content_id, e.vector FROM embeddings e JOIN chunks c ON c.id = e.chunk_id
             WHERE e.model = ?1 ORDER BY e.chunk_id",
        )?;
        let mut rows = stmt.query([model])?;
        while let Some(r) = rows.next()? {
            let sealed = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            f(self.open_vector(r.get(0)?, r.get(1)?, sealed)?);
        }
        Ok(())
    }

    /// The vectors of `model` for these chunks (those that have one), opened.
    pub fn vectors_of(&self, model: &str, chunk_ids: &[i64]) -> Result<Vec<StoredVector>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.content_id, e.vector FROM embeddings e JOIN chunks c ON c.id = e.chunk_id
             WHERE e.chunk_id = ?1 AND e.model = ?2",
        )?;
        let mut out = Vec::with_capacity(chunk_ids.len());
        for &chunk in chunk_ids {
            let row = stmt.query_row(params![chunk, model], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))).optional()?;
            if let Some((content, sealed)) = row {
                out.push(self.open_vector(chunk, content, &sealed)?);
            }
        }
        Ok(out)
    }

    /// How many times vectors were stored: moves whenever new vectors land.
    pub fn vector_writes(&self) -> Result<i64> {
        let n = self.conn.query_row("SELECT value FROM meta WHERE key = 'vector_writes'", [], |r| r.get(0)).optional()?;
        Ok(n.unwrap_or(0))
    }

    /// Which chunks have a vector from `model`, without opening any (the model index covers
    /// this). Chunk ids come from a counter and are never reused, and a chunk gets one vector
    /// per model, so an id names one vector for good.
    pub fn vector_ids(&self, model: &str) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached("SELECT chunk_id FROM embeddings WHERE model = ?1")?;
        let rows = stmt.query_map([model], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn open_vector(&self, chunk_id: i64, content_id: i64, sealed: &[u8]) -> Result<StoredVector> {
        let bytes = self.sealer.open(place(chunk_id), sealed)?;
        if bytes.len() < 8 || bytes.len() % 4 != 0 {
            return Err(CryptoError::Tamper(format!("embeddings.vector row {chunk_id}")).into());
        }
        let mut floats: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let coverage = floats.pop().unwrap_or(1.0);
        Ok(StoredVector { chunk_id, content_id, vector: floats, coverage })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{ItemMeta, Kind, NewItem, Span};
    use super::*;
    use crate::crypto::{DataKey, Sealer};

    #[test]
    fn vectors_round_trip_and_follow_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db"), Arc::new(Sealer::new(&DataKey::generate().unwrap()))).unwrap();
        let item = NewItem {
            kind: Kind::File,
            source: "/a".into(),
            title: None,
            meta: ItemMeta::default(),
            time: 0,
            mtime: 0,
            size: 5,
            text: "hello".into(),
            chunks: vec![Span { start: 0, end: 5 }],
        };
        let (id, _) = s.write(|w| w.put(&item)).unwrap();
        let missing = s.chunks_without_vector("m", 10).unwrap();
        assert_eq!(missing.len(), 1);
        s.put_vectors("m", &[(missing[0].id, vec![0.6, 0.8], 0.9)]).unwrap();
        assert_eq!(s.count_without_vector("m").unwrap(), 0);
        let v = s.vectors("m").unwrap();
        assert_eq!((v[0].vector.clone(), v[0].coverage), (vec![0.6, 0.8], 0.9));
        // Another model's vectors are not this one's.
        assert_eq!(s.count_without_vector("other").unwrap(), 1);
        s.write(|w| w.remove(id)).unwrap();
        assert!(s.vectors("m").unwrap().is_empty());
    }
}
