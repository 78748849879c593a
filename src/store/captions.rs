//! Sealed one-line captions, one per content and model (see `answer::caption`).

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{Result, Store};
use crate::crypto::Place;

fn place(content_id: i64) -> Place<'static> {
    Place { table: "captions", column: "text", row: content_id }
}

impl Store {
    /// Contents with no caption from `model` yet, newest first (what the user saw last is
    /// what they look for first).
    pub fn contents_without_caption(&self, model: &str, limit: usize) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id FROM contents c LEFT JOIN captions k ON k.content_id = c.id AND k.model = ?1
             WHERE k.content_id IS NULL ORDER BY c.id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![model, limit as i64], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count_without_caption(&self, model: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM contents c LEFT JOIN captions k ON k.content_id = c.id AND k.model = ?1
             WHERE k.content_id IS NULL",
            [model],
            |r| r.get(0),
        )?)
    }

    /// Stores a content's caption (`None`: nothing in it could serve, so it is not tried
    /// again). A content deleted meanwhile is skipped.
    pub fn put_caption(&mut self, content_id: i64, model: &str, caption: Option<&str>) -> Result<()> {
        let sealed = caption.map(|c| self.sealer.seal(place(content_id), c.as_bytes())).transpose()?;
        let put = self.conn.execute(
            "INSERT OR REPLACE INTO captions (content_id, model, text) VALUES (?1, ?2, ?3)",
            params![content_id, model, sealed],
        );
        // As for vectors: a content deleted meanwhile has no row to hang a caption on.
        match put {
            Err(e) if !matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The captions these contents have (from any model), opened.
    pub fn captions_of(&self, content_ids: &[i64]) -> Result<HashMap<i64, String>> {
        let mut stmt = self.conn.prepare_cached("SELECT text FROM captions WHERE content_id = ?1 AND text IS NOT NULL")?;
        let mut out = HashMap::new();
        for &id in content_ids {
            if out.contains_key(&id) {
                continue;
            }
            if let Some(sealed) = stmt.query_row([id], |r| r.get::<_, Vec<u8>>(0)).optional()? {
                out.insert(id, self.sealer.open_str(place(id), &sealed)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{item, store};

    #[test]
    fn a_caption_is_sealed_kept_per_content_and_goes_with_it() {
        let (_d, mut s) = store();
        let (a, _) = s.write(|w| w.put(&item("/a.txt", "The boiler is serviced on Thursday."))).unwrap();
        let (b, _) = s.write(|w| w.put(&item("/b.txt", "Nothing much."))).unwrap();
        let (ca, cb) = (s.item(a).unwrap().content_id, s.item(b).unwrap().content_id);
        assert_eq!(s.contents_without_caption("m", 10).unwrap(), [cb, ca]);
        s.put_caption(ca, "m", Some("The boiler is serviced on Thursday")).unwrap();
        s.put_caption(cb, "m", None).unwrap();
        assert_eq!(s.count_without_caption("m").unwrap(), 0);
        // Another model captions again.
        assert_eq!(s.count_without_caption("other").unwrap(), 2);
        let shown = s.captions_of(&[ca, cb]).unwrap();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[&ca], "The boiler is serviced on Thursday");
        let raw: Vec<u8> = s.conn.query_row("SELECT text FROM captions WHERE content_id = ?1", [ca], |r| r.get(0)).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"boiler"));
        s.write(|w| w.remove(a)).unwrap();
        assert!(s.captions_of(&[ca]).unwrap().is_empty());
        // A content gone before its caption is stored is skipped.
        s.put_caption(ca, "m", Some("late")).unwrap();
        assert!(s.captions_of(&[ca]).unwrap().is_empty());
    }
}
