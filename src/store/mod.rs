//! The SQLite store: the source of truth for every memory.
//!
//! Every content, path, title and metadata column is sealed with the row's place as associated
//! data; clear columns hold only times, sizes, kinds, ids and keyed hashes. WAL mode for crash
//! safety, `secure_delete` so freed pages are zeroed, temp tables kept in memory.
//!
//! Each write batch bumps the store *generation* and stamps the contents it touched, so the
//! keyword index (which records the generation it has caught up to) can tell what it missed
//! after a crash. Not for: tokenising, ranking, or deciding what to index.

mod captions;
mod frames;
mod migrate;
mod vectors;

pub use frames::{Frame, FrameWords};

pub use vectors::StoredVector;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, Place, Sealer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the database {path} could not be opened: {why}")]
    Open { path: String, why: String },
    #[error("the database schema is version {found}, newer than this engram understands ({known}); upgrade engram")]
    TooNew { found: i64, known: i64 },
    #[error("no memory with id {0}")]
    NoSuchItem(i64),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Screen,
    Doc,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Screen => "screen",
            Kind::Doc => "doc",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "file" => Some(Kind::File),
            "screen" => Some(Kind::Screen),
            "doc" => Some(Kind::Doc),
            _ => None,
        }
    }
}

/// A byte range of a content's text that forms one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Sealed metadata kept with an item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ItemMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The process that owned the captured window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl ItemMeta {
    /// Whether the app's name holds `part`, in any case (the `--app` filter).
    pub fn app_has(&self, part: &str) -> bool {
        self.app.as_deref().is_some_and(|a| a.to_lowercase().contains(&part.to_lowercase()))
    }
}

/// A memory ready to be written.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub kind: Kind,
    pub source: String,
    pub title: Option<String>,
    pub meta: ItemMeta,
    pub time: i64,
    pub mtime: i64,
    pub size: i64,
    pub text: String,
    pub chunks: Vec<Span>,
}

/// A stored memory with its sealed fields opened.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: i64,
    pub kind: Kind,
    pub content_id: i64,
    pub source: String,
    pub title: Option<String>,
    pub meta: ItemMeta,
    pub time: i64,
    pub size: i64,
    pub added_at: i64,
}

/// What the store knows about a source without opening anything sealed.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    pub id: i64,
    pub mtime: i64,
    pub size: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Added,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub id: i64,
    pub content_id: i64,
    pub seq: i64,
    pub start: usize,
    pub len: usize,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub items: i64,
    pub files: i64,
    pub screens: i64,
    pub docs: i64,
    pub contents: i64,
    pub chunks: i64,
    pub text_bytes: i64,
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
    pub generation: i64,
}

pub struct Store {
    conn: Connection,
    sealer: Arc<Sealer>,
}

const ITEM_COLUMNS: &str = "id, kind, content_id, source, title, meta, time, size, added_at";

impl Store {
    pub fn open(path: &Path, sealer: Arc<Sealer>) -> Result<Store> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Open { path: path.display().to_string(), why: e.to_string() })?;
        #[cfg(unix)]
        {
            // SQLite gives the -wal and -shm files the database file's mode.
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA secure_delete = ON;
             PRAGMA temp_store = MEMORY;",
        )?;
        migrate::run(&conn)?;
        Ok(Store { conn, sealer })
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// A second connection to the same database, for a thread of its own.
    pub fn reopen(&self) -> Result<Store> {
        let path = self.conn.path().filter(|p| !p.is_empty()).map(Path::new).ok_or_else(|| StoreError::Open {
            path: ":memory:".into(),
            why: "an in-memory store cannot be opened twice".into(),
        })?;
        Store::open(path, self.sealer.clone())
    }

    pub fn generation(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| r.get(0))?)
    }

    fn source_key(&self, kind: Kind, source: &str) -> [u8; 32] {
        self.sealer.keyed_hash(&format!("source/{}", kind.as_str()), source.as_bytes())
    }

    /// Looks a source up by its keyed hash; opens nothing sealed.
    pub fn known(&self, kind: Kind, source: &str) -> Result<Option<Known>> {
        let key = self.source_key(kind, source);
        Ok(self
            .conn
            .query_row("SELECT id, mtime, size FROM items WHERE source_key = ?1", [&key[..]], |r| {
                Ok(Known { id: r.get(0)?, mtime: r.get(1)?, size: r.get(2)? })
            })
            .optional()?)
    }

    /// Runs `f` in one transaction and one generation: all of it lands or none does.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let generation: i64 =
            tx.query_row("UPDATE meta SET value = value + 1 WHERE key = 'generation' RETURNING value", [], |r| {
                r.get(0)
            })?;
        let mut w = Writer { tx, sealer: &self.sealer, generation };
        let out = f(&mut w)?;
        w.tx.commit()?;
        Ok(out)
    }

    pub fn item(&self, id: i64) -> Result<Item> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1");
        let raw = self.conn.query_row(&sql, [id], RawItem::from_row).optional()?;
        raw.ok_or(StoreError::NoSuchItem(id))?.open(&self.sealer)
    }

    /// Every item, opened. Used where a sealed field must be matched (forget by path).
    pub fn all_items(&self) -> Result<Vec<Item>> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM items ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt.query_map([], RawItem::from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(|r| r.open(&self.sealer)).collect()
    }

    /// Items made in `[since, until)`, of `kind` (any when `None`), newest first, opened: the
    /// timeline.
    pub fn items_between(&self, kind: Option<Kind>, since: i64, until: i64, limit: usize) -> Result<Vec<Item>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE (?1 IS NULL OR kind = ?1) AND time >= ?2 AND time < ?3 ORDER BY time DESC, id DESC LIMIT ?4"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let raws = stmt
            .query_map(params![kind.map(Kind::as_str), since, until, limit.min(i64::MAX as usize) as i64], RawItem::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(|r| r.open(&self.sealer)).collect()
    }

    /// Ids of items, optionally older than `before` (unix seconds).
    pub fn item_ids_before(&self, before: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare("SELECT id FROM items WHERE time < ?1 ORDER BY id")?;
        let ids = stmt.query_map([before], |r| r.get(0))?.collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }

    /// Items holding any of the given contents: `(content_id, item id, kind, time)`, clear columns only.
    pub fn items_of_contents(&self, content_ids: &[i64]) -> Result<Vec<(i64, i64, Kind, i64)>> {
        let mut out = Vec::new();
        let mut stmt =
            self.conn.prepare_cached("SELECT content_id, id, kind, time FROM items WHERE content_id = ?1")?;
        for &cid in content_ids {
            let rows = stmt.query_map([cid], |r| {
                let kind: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, Kind::parse(&kind).unwrap_or(Kind::File), r.get(3)?))
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    pub fn chunk(&self, id: i64) -> Result<Option<StoredChunk>> {
        let raw = self
            .conn
            .prepare_cached("SELECT id, content_id, seq, start, len, body FROM chunks WHERE id = ?1")?
            .query_row([id], RawChunk::from_row)
            .optional()?;
        raw.map(|r| r.open(&self.sealer)).transpose()
    }

    pub fn chunks_of(&self, content_id: i64) -> Result<Vec<StoredChunk>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, content_id, seq, start, len, body FROM chunks WHERE content_id = ?1 ORDER BY seq")?;
        let raws = stmt.query_map([content_id], RawChunk::from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(|r| r.open(&self.sealer)).collect()
    }

    /// The titles of every item holding a content: indexed with its first chunk.
    pub fn titles_of(&self, content_id: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached("SELECT id, title FROM items WHERE content_id = ?1 ORDER BY id")?;
        let rows = stmt
            .query_map([content_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut titles = Vec::new();
        for (id, sealed) in rows {
            if let Some(sealed) = sealed {
                titles.push(self.sealer.open_str(Place { table: "items", column: "title", row: id }, &sealed)?);
            }
        }
        Ok(titles)
    }

    /// The whole text of a content, put back together from its chunks.
    pub fn text_of(&self, content_id: i64) -> Result<String> {
        let mut text = String::new();
        let mut end = 0usize;
        for c in self.chunks_of(content_id)? {
            let skip = end.saturating_sub(c.start);
            if skip < c.text.len() {
                // Chunk boundaries sit on char boundaries of the text, so `skip` does too.
                text.push_str(c.text.get(skip..).unwrap_or(&c.text));
            }
            end = end.max(c.start + c.len);
        }
        Ok(text)
    }

    /// Contents whose indexed form changed after `generation`.
    pub fn contents_changed_since(&self, generation: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare("SELECT id FROM contents WHERE generation > ?1 ORDER BY id")?;
        let ids = stmt.query_map([generation], |r| r.get(0))?.collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }

    pub fn content_ids(&self) -> Result<HashSet<i64>> {
        let mut stmt = self.conn.prepare("SELECT id FROM contents")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<HashSet<i64>>>()?;
        Ok(ids)
    }

    pub fn stats(&self) -> Result<Stats> {
        let c = &self.conn;
        let count = |sql: &str| -> Result<i64> { Ok(c.query_row(sql, [], |r| r.get(0))?) };
        Ok(Stats {
            items: count("SELECT count(*) FROM items")?,
            files: count("SELECT count(*) FROM items WHERE kind = 'file'")?,
            screens: count("SELECT count(*) FROM items WHERE kind = 'screen'")?,
            docs: count("SELECT count(*) FROM items WHERE kind = 'doc'")?,
            contents: count("SELECT count(*) FROM contents")?,
            chunks: count("SELECT count(*) FROM chunks")?,
            text_bytes: count("SELECT coalesce(sum(bytes), 0) FROM contents")?,
            oldest: c.query_row("SELECT min(time) FROM items", [], |r| r.get(0))?,
            newest: c.query_row("SELECT max(time) FROM items", [], |r| r.get(0))?,
            generation: self.generation()?,
        })
    }

    /// Moves everything in the WAL into the database and empties the WAL file, so no old page
    /// image survives there after a delete.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

type SealedFields = (Vec<u8>, Option<Vec<u8>>, Vec<u8>);

/// A write transaction; see [`Store::write`].
pub struct Writer<'a> {
    tx: Transaction<'a>,
    sealer: &'a Sealer,
    generation: i64,
}

impl Writer<'_> {
    fn next_ids(&self, n: i64) -> Result<i64> {
        let first: i64 = self.tx.query_row(
            "UPDATE meta SET value = value + ?1 WHERE key = 'next_id' RETURNING value - ?1",
            [n],
            |r| r.get(0),
        )?;
        Ok(first)
    }

    /// Stores an item, reusing an equal content, replacing the item's old content if it changed.
    pub fn put(&mut self, item: &NewItem) -> Result<(i64, PutOutcome)> {
        let source_key = self.sealer.keyed_hash(&format!("source/{}", item.kind.as_str()), item_key(item).as_bytes());
        let content_id = self.content_for(item)?;
        let existing: Option<(i64, i64, Option<Vec<u8>>)> = self
            .tx
            .query_row("SELECT id, content_id, title FROM items WHERE source_key = ?1", [&source_key[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let now = chrono::Utc::now().timestamp();
        match existing {
            None => {
                let id = self.next_ids(1)?;
                let (source, title, meta) = self.seal_item_fields(id, item)?;
                self.tx.execute(
                    "INSERT INTO items (id, kind, source_key, content_id, source, title, meta, time, mtime, size, added_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![id, item.kind.as_str(), &source_key[..], content_id, source, title, meta, item.time, item.mtime, item.size, now],
                )?;
                self.touch_content(content_id)?;
                Ok((id, PutOutcome::Added))
            }
            Some((id, old_content, old_title)) => {
                let old_title = old_title
                    .map(|t| self.sealer.open_str(Place { table: "items", column: "title", row: id }, &t))
                    .transpose()?;
                let (source, title, meta) = self.seal_item_fields(id, item)?;
                self.tx.execute(
                    "UPDATE items SET content_id = ?2, source = ?3, title = ?4, meta = ?5, time = ?6, mtime = ?7, size = ?8 WHERE id = ?1",
                    params![id, content_id, source, title, meta, item.time, item.mtime, item.size],
                )?;
                if old_content != content_id {
                    self.touch_content(content_id)?;
                    self.drop_if_orphan(old_content)?;
                    Ok((id, PutOutcome::Updated))
                } else {
                    if old_title != item.title {
                        self.touch_content(content_id)?;
                    }
                    Ok((id, PutOutcome::Unchanged))
                }
            }
        }
    }

    /// Deletes an item, and its content when no other item holds it. Returns false if absent.
    pub fn remove(&mut self, id: i64) -> Result<bool> {
        let content: Option<i64> =
            self.tx.query_row("SELECT content_id FROM items WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        let Some(content) = content else { return Ok(false) };
        self.tx.execute("DELETE FROM items WHERE id = ?1", [id])?;
        if !self.drop_if_orphan(content)? {
            // Its index entry carries the remaining items' titles only.
            self.touch_content(content)?;
        }
        Ok(true)
    }

    /// Sealed (source, title, meta) of an item row.
    fn seal_item_fields(&self, id: i64, item: &NewItem) -> Result<SealedFields> {
        let place = |column| Place { table: "items", column, row: id };
        let source = self.sealer.seal(place("source"), item.source.as_bytes())?;
        let title = item.title.as_ref().map(|t| self.sealer.seal(place("title"), t.as_bytes())).transpose()?;
        let meta_json = serde_json::to_vec(&item.meta).expect("meta serialises");
        let meta = self.sealer.seal(place("meta"), &meta_json)?;
        Ok((source, title, meta))
    }

    fn content_for(&mut self, item: &NewItem) -> Result<i64> {
        let hash = self.sealer.keyed_hash("content", item.text.as_bytes());
        let found: Option<i64> =
            self.tx.query_row("SELECT id FROM contents WHERE hash = ?1", [&hash[..]], |r| r.get(0)).optional()?;
        if let Some(id) = found {
            return Ok(id);
        }
        let id = self.next_ids(1 + item.chunks.len() as i64)?;
        self.tx.execute(
            "INSERT INTO contents (id, hash, bytes, generation) VALUES (?1, ?2, ?3, ?4)",
            params![id, &hash[..], item.text.len() as i64, self.generation],
        )?;
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO chunks (id, content_id, seq, start, len, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for (seq, span) in item.chunks.iter().enumerate() {
            let chunk_id = id + 1 + seq as i64;
            let text = &item.text[span.start..span.end];
            let body = self.sealer.seal(Place { table: "chunks", column: "body", row: chunk_id }, text.as_bytes())?;
            stmt.execute(params![chunk_id, id, seq as i64, span.start as i64, (span.end - span.start) as i64, body])?;
        }
        Ok(id)
    }

    fn touch_content(&self, content_id: i64) -> Result<()> {
        self.tx.execute("UPDATE contents SET generation = ?2 WHERE id = ?1", params![content_id, self.generation])?;
        Ok(())
    }

    fn drop_if_orphan(&self, content_id: i64) -> Result<bool> {
        let users: i64 = self.tx.query_row("SELECT count(*) FROM items WHERE content_id = ?1", [content_id], |r| r.get(0))?;
        if users == 0 {
            self.tx.execute("DELETE FROM contents WHERE id = ?1", [content_id])?;
        }
        Ok(users == 0)
    }
}

/// What makes an item one memory: a file is its path; a screen memory is one frame, so its app
/// alone is not enough.
fn item_key(item: &NewItem) -> std::borrow::Cow<'_, str> {
    match item.kind {
        Kind::Screen => format!("{}\0{}\0{}", item.source, item.time, item.title.as_deref().unwrap_or("")).into(),
        _ => item.source.as_str().into(),
    }
}

struct RawItem {
    id: i64,
    kind: String,
    content_id: i64,
    source: Vec<u8>,
    title: Option<Vec<u8>>,
    meta: Option<Vec<u8>>,
    time: i64,
    size: i64,
    added_at: i64,
}

impl RawItem {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<RawItem> {
        Ok(RawItem {
            id: r.get(0)?,
            kind: r.get(1)?,
            content_id: r.get(2)?,
            source: r.get(3)?,
            title: r.get(4)?,
            meta: r.get(5)?,
            time: r.get(6)?,
            size: r.get(7)?,
            added_at: r.get(8)?,
        })
    }

    fn open(self, sealer: &Sealer) -> Result<Item> {
        let place = |column| Place { table: "items", column, row: self.id };
        let source = sealer.open_str(place("source"), &self.source)?;
        let title = self.title.map(|t| sealer.open_str(place("title"), &t)).transpose()?;
        let meta = match self.meta {
            Some(m) => {
                let json = sealer.open(place("meta"), &m)?;
                serde_json::from_slice(&json).map_err(|_| CryptoError::Tamper(format!("items.meta row {}", self.id)))?
            }
            None => ItemMeta::default(),
        };
        let kind = Kind::parse(&self.kind).ok_or_else(|| CryptoError::Tamper(format!("items.kind row {}", self.id)))?;
        Ok(Item {
            id: self.id,
            kind,
            content_id: self.content_id,
            source,
            title,
            meta,
            time: self.time,
            size: self.size,
            added_at: self.added_at,
        })
    }
}

pub(crate) struct RawChunk {
    id: i64,
    content_id: i64,
    seq: i64,
    start: i64,
    len: i64,
    body: Vec<u8>,
}

impl RawChunk {
    pub(crate) fn from_row(r: &rusqlite::Row) -> rusqlite::Result<RawChunk> {
        Ok(RawChunk {
            id: r.get(0)?,
            content_id: r.get(1)?,
            seq: r.get(2)?,
            start: r.get(3)?,
            len: r.get(4)?,
            body: r.get(5)?,
        })
    }

    pub(crate) fn open(self, sealer: &Sealer) -> Result<StoredChunk> {
        let text = sealer.open_str(Place { table: "chunks", column: "body", row: self.id }, &self.body)?;
        Ok(StoredChunk {
            id: self.id,
            content_id: self.content_id,
            seq: self.seq,
            start: self.start.max(0) as usize,
            len: self.len.max(0) as usize,
            text,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::DataKey;

    pub(crate) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Arc::new(Sealer::new(&DataKey::generate().unwrap()));
        let store = Store::open(&dir.path().join("engram.db"), sealer).unwrap();
        (dir, store)
    }

    pub(crate) fn item(source: &str, text: &str) -> NewItem {
        let mid = text.len() / 2;
        let mid = (mid..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap();
        NewItem {
            kind: Kind::File,
            source: source.into(),
            title: Some(format!("title of {source}")),
            meta: ItemMeta::default(),
            time: 100,
            mtime: 100,
            size: text.len() as i64,
            text: text.into(),
            chunks: vec![Span { start: 0, end: text.len() }, Span { start: mid, end: text.len() }],
        }
    }

    #[test]
    fn put_and_read_back() {
        let (_d, mut s) = store();
        let (id, out) = s.write(|w| w.put(&item("/a.txt", "hello 世界"))).unwrap();
        assert_eq!(out, PutOutcome::Added);
        let it = s.item(id).unwrap();
        assert_eq!(it.source, "/a.txt");
        assert_eq!(it.title.as_deref(), Some("title of /a.txt"));
        assert_eq!(s.chunks_of(it.content_id).unwrap().len(), 2);
    }

    #[test]
    fn text_is_put_back_together_without_the_overlap() {
        let (_d, mut s) = store();
        let (id, _) = s.write(|w| w.put(&item("/a.txt", "hello 世界 again"))).unwrap();
        let cid = s.item(id).unwrap().content_id;
        assert_eq!(s.text_of(cid).unwrap(), "hello 世界 again");
    }

    #[test]
    fn equal_content_is_stored_once() {
        let (_d, mut s) = store();
        s.write(|w| w.put(&item("/a.txt", "same words"))).unwrap();
        s.write(|w| w.put(&item("/b.txt", "same words"))).unwrap();
        let st = s.stats().unwrap();
        assert_eq!((st.items, st.contents, st.chunks), (2, 1, 2));
    }

    #[test]
    fn changed_content_replaces_old_chunks() {
        let (_d, mut s) = store();
        s.write(|w| w.put(&item("/a.txt", "first version"))).unwrap();
        let (_, out) = s.write(|w| w.put(&item("/a.txt", "second version"))).unwrap();
        assert_eq!(out, PutOutcome::Updated);
        let st = s.stats().unwrap();
        assert_eq!((st.items, st.contents, st.chunks), (1, 1, 2));
    }

    #[test]
    fn same_content_again_is_unchanged() {
        let (_d, mut s) = store();
        s.write(|w| w.put(&item("/a.txt", "words"))).unwrap();
        let (_, out) = s.write(|w| w.put(&item("/a.txt", "words"))).unwrap();
        assert_eq!(out, PutOutcome::Unchanged);
    }

    #[test]
    fn remove_drops_orphan_content_only() {
        let (_d, mut s) = store();
        let (a, _) = s.write(|w| w.put(&item("/a.txt", "shared"))).unwrap();
        let (b, _) = s.write(|w| w.put(&item("/b.txt", "shared"))).unwrap();
        s.write(|w| w.remove(a)).unwrap();
        assert_eq!(s.stats().unwrap().contents, 1);
        s.write(|w| w.remove(b)).unwrap();
        let st = s.stats().unwrap();
        assert_eq!((st.items, st.contents, st.chunks), (0, 0, 0));
    }

    #[test]
    fn generation_marks_changed_contents() {
        let (_d, mut s) = store();
        s.write(|w| w.put(&item("/a.txt", "one"))).unwrap();
        let g = s.generation().unwrap();
        s.write(|w| w.put(&item("/b.txt", "two"))).unwrap();
        assert_eq!(s.contents_changed_since(g).unwrap().len(), 1);
        assert_eq!(s.contents_changed_since(0).unwrap().len(), 2);
    }

    #[test]
    fn known_finds_by_keyed_hash() {
        let (_d, mut s) = store();
        s.write(|w| w.put(&item("/a.txt", "one"))).unwrap();
        assert!(s.known(Kind::File, "/a.txt").unwrap().is_some());
        assert!(s.known(Kind::File, "/b.txt").unwrap().is_none());
        assert!(s.known(Kind::Screen, "/a.txt").unwrap().is_none());
    }

    #[test]
    fn failed_batch_writes_nothing() {
        let (_d, mut s) = store();
        let r: Result<()> = s.write(|w| {
            w.put(&item("/a.txt", "one"))?;
            Err(StoreError::NoSuchItem(0))
        });
        assert!(r.is_err());
        assert_eq!(s.stats().unwrap().items, 0);
    }
}
