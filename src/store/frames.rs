//! Screenshots of screen memories: sealed WebP image and thumbnail, and the OCR word boxes
//! used to highlight matches. A frame lives and dies with its item (ON DELETE CASCADE).
//! The picture's dimensions are sealed too (a window's size can tell which window it was); its
//! stored size is clear only rounded up to a [`bucket`], for retention by size.

use rusqlite::{params, OptionalExtension};

use super::{bucket, Result, Store, Writer};
use crate::crypto::{CryptoError, Place, Sealer};

/// A screenshot as stored: picture, thumbnail and OCR words.
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub image: Vec<u8>,
    pub thumb: Vec<u8>,
    /// JSON of the OCR words.
    pub words: Vec<u8>,
}

/// A frame's size and OCR words, without its pictures.
#[derive(Debug, Clone)]
pub struct FrameWords {
    pub width: u32,
    pub height: u32,
    /// JSON of the OCR words.
    pub words: Vec<u8>,
}

fn place(column: &'static str, item_id: i64) -> Place<'static> {
    Place { table: "frames", column, row: item_id }
}

/// A picture's width and height, sealed in its row.
pub(super) fn seal_dims(sealer: &Sealer, item_id: i64, width: u32, height: u32) -> Result<Vec<u8>> {
    let mut plain = [0u8; 8];
    plain[..4].copy_from_slice(&width.to_le_bytes());
    plain[4..].copy_from_slice(&height.to_le_bytes());
    Ok(sealer.seal(place("dims", item_id), &plain)?)
}

fn open_dims(sealer: &Sealer, item_id: i64, sealed: Option<&[u8]>) -> Result<(u32, u32)> {
    let tamper = || CryptoError::Tamper(format!("frames.dims row {item_id}"));
    let plain = sealer.open(place("dims", item_id), sealed.ok_or_else(tamper)?)?;
    let plain: [u8; 8] = plain.as_slice().try_into().map_err(|_| tamper())?;
    let half = |i: usize| u32::from_le_bytes([plain[i], plain[i + 1], plain[i + 2], plain[i + 3]]);
    Ok((half(0), half(4)))
}

impl Writer<'_> {
    pub fn put_frame(&mut self, item_id: i64, f: &Frame) -> Result<()> {
        let image = self.sealer.seal(place("image", item_id), &f.image)?;
        let thumb = self.sealer.seal(place("thumb", item_id), &f.thumb)?;
        let words = self.sealer.seal(place("words", item_id), &f.words)?;
        let dims = seal_dims(self.sealer, item_id, f.width, f.height)?;
        let bytes = bucket((image.len() + thumb.len() + words.len()) as i64);
        self.exec(
            "INSERT OR REPLACE INTO frames (item_id, dims, bytes, image, thumb, words) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![item_id, dims, bytes, image, thumb, words],
        )?;
        Ok(())
    }
}

impl Store {
    /// A screen memory's frame size and words, opened; `None` when the item has none.
    pub fn frame_words(&self, item_id: i64) -> Result<Option<FrameWords>> {
        let raw: Option<(Option<Vec<u8>>, Vec<u8>)> = self
            .conn
            .query_row("SELECT dims, words FROM frames WHERE item_id = ?1", [item_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((dims, words)) = raw else { return Ok(None) };
        let (width, height) = open_dims(&self.sealer, item_id, dims.as_deref())?;
        Ok(Some(FrameWords { width, height, words: self.sealer.open(place("words", item_id), &words)? }))
    }

    /// A screen memory's picture (WebP), or its thumbnail, opened; only that blob is read.
    pub fn frame_picture(&self, item_id: i64, thumb: bool) -> Result<Option<Vec<u8>>> {
        let column = if thumb { "thumb" } else { "image" };
        let sql = format!("SELECT {column} FROM frames WHERE item_id = ?1");
        let raw: Option<Vec<u8>> = self.conn.query_row(&sql, [item_id], |r| r.get(0)).optional()?;
        Ok(raw.map(|b| self.sealer.open(place(column, item_id), &b)).transpose()?)
    }

    /// Total bytes of stored frames (each rounded up to its bucket) and how many there are.
    pub fn frame_usage(&self) -> Result<(i64, i64)> {
        Ok(self.conn.query_row("SELECT coalesce(sum(bytes), 0), count(*) FROM frames", [], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// Screen memories older than `before`, and then the oldest ones beyond `max_bytes` of
    /// frames: what retention deletes.
    pub fn expired_screens(&self, before: i64, max_bytes: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT i.id, i.time, coalesce(f.bytes, 0) FROM items i LEFT JOIN frames f ON f.item_id = i.id
             WHERE i.kind = 'screen' ORDER BY i.time DESC, i.id DESC",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
        let mut kept_bytes = 0i64;
        let mut out = Vec::new();
        for row in rows {
            let (id, time, bytes) = row?;
            kept_bytes += bytes;
            if time < before || kept_bytes > max_bytes {
                out.push(id);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::{DataKey, Sealer};
    use crate::store::{ItemMeta, Kind, NewItem, Span};

    fn screen(time: i64, text: &str) -> NewItem {
        NewItem {
            kind: Kind::Screen,
            source: "XTerm".into(),
            title: Some("notes".into()),
            meta: ItemMeta::default(),
            time,
            mtime: time,
            size: 0,
            text: text.into(),
            chunks: vec![Span { start: 0, end: text.len() }],
        }
    }

    fn frame(bytes: usize) -> Frame {
        Frame { width: 4, height: 4, image: vec![7; bytes], thumb: vec![1; 8], words: b"[]".to_vec() }
    }

    #[test]
    fn frames_are_sealed_each_frame_is_its_own_memory_and_retention_picks_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Arc::new(Sealer::new(&DataKey::generate().unwrap()));
        let mut store = Store::open(&dir.path().join("engram.db"), sealer).unwrap();
        let ids: Vec<i64> = [(100, "first"), (200, "second"), (300, "third")]
            .iter()
            .map(|(t, text)| {
                store
                    .write(|w| {
                        let (id, _) = w.put(&screen(*t, text))?;
                        w.put_frame(id, &frame(1000))?;
                        Ok(id)
                    })
                    .unwrap()
            })
            .collect();
        assert_eq!(ids.len(), 3, "same app and title, different times: three memories");
        assert_eq!(store.frame_picture(ids[1], false).unwrap().unwrap(), vec![7; 1000]);
        assert_eq!(store.frame_picture(ids[1], true).unwrap().unwrap(), vec![1; 8]);
        let words = store.frame_words(ids[1]).unwrap().unwrap();
        assert_eq!((words.width, words.height, words.words), (4, 4, b"[]".to_vec()));
        let (bytes, n) = store.frame_usage().unwrap();
        assert_eq!(n, 3);
        // Age: everything before 150. Size: only what fits in two frames' bytes, newest first.
        assert_eq!(store.expired_screens(150, i64::MAX).unwrap(), vec![ids[0]]);
        assert_eq!(store.expired_screens(0, bytes * 2 / 3).unwrap(), vec![ids[0]]);
        assert_eq!(store.expired_screens(0, bytes / 3).unwrap(), vec![ids[1], ids[0]]);
        // Deleting the memory deletes its picture.
        store.write(|w| w.remove(ids[2])).unwrap();
        assert!(store.frame_words(ids[2]).unwrap().is_none());
        assert!(store.frame_picture(ids[2], false).unwrap().is_none());
        assert_eq!(store.frame_usage().unwrap().1, 2);
    }
}
