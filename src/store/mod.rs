//! The SQLite store: the source of truth for every memory.
//!
//! Every content, path, title and metadata column is sealed with the row's place as associated
//! data, and so are exact sizes and picture dimensions; clear columns hold only times, sizes
//! rounded up to a [`bucket`], counts, kinds, ids and keyed hashes (a file's size and modified
//! time are known again only through a keyed hash, see [`Store::unchanged`]). WAL mode for
//! crash safety, `secure_delete` so freed pages are zeroed, temp tables kept in memory.
//!
//! Each write batch bumps the store *generation* and stamps the contents it touched, so the
//! keyword index (which records the generation it has caught up to) can tell what it missed
//! after a crash. Not for: tokenising, ranking, or deciding what to index.

mod captions;
mod frames;
mod migrate;
mod skipped;
mod vectors;

pub use frames::{Frame, FrameWords};
pub use skipped::{Remembered, SkipRecord};

pub use vectors::StoredVector;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
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
    #[error("could not save the vector index: {0}")]
    SavedVectors(std::io::Error),
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
    /// Who wrote a document, where it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Where its pages, sheets or slides begin in its text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<crate::extract::Section>,
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
    /// A file's path exactly as the operating system gives it (any bytes, not only UTF-8), an
    /// app's name for a screen memory, a document's id.
    pub source: OsString,
    pub title: Option<String>,
    pub meta: ItemMeta,
    pub time: i64,
    /// The source's modified time and exact size: sealed, and kept as a keyed hash to tell
    /// an unchanged file (see [`Store::unchanged`]).
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
    /// The source for display: a path that is not UTF-8 shows U+FFFD for its odd bytes.
    pub source: String,
    /// A file memory's exact path, as the operating system gave it.
    #[serde(skip)]
    pub path: Option<PathBuf>,
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
    /// Keyed hash of the source's size and modified time when last stored (see [`change_key`]).
    change_key: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Added,
    Updated,
    Unchanged,
}

/// What [`Writer::put_item`] did.
#[derive(Debug, Clone, Copy)]
pub struct Put {
    /// The item's id.
    pub id: i64,
    pub outcome: PutOutcome,
    /// The content holding the item's text ...
    pub content: i64,
    /// ... made by this put, with its chunks at [`chunk_id`]`(content, seq)`.
    pub created: bool,
    /// The store generation of the write.
    pub generation: i64,
}

/// A content's chunk ids follow its own: the index can name chunks it was handed.
pub fn chunk_id(content_id: i64, seq: usize) -> i64 {
    content_id + 1 + seq as i64
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
    /// Bytes of distinct text, each text counted rounded up to its [`bucket`].
    pub text_bytes: i64,
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
    pub generation: i64,
}

pub struct Store {
    conn: Connection,
    sealer: Arc<Sealer>,
}

const ITEM_COLUMNS: &str = "id, kind, content_id, source, title, meta, time, sealed_size, added_at";

/// A database column kept in the clear, and why.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClearColumn {
    pub table: &'static str,
    pub column: &'static str,
    pub why: &'static str,
}

const fn clear(table: &'static str, column: &'static str, why: &'static str) -> ClearColumn {
    ClearColumn { table, column, why }
}

/// Every column the store keeps in the clear; every other column is sealed. Unit tests check
/// this list against the schema and against the README's privacy model, which says what each
/// one tells someone holding a copy of the data directory.
pub const CLEAR_COLUMNS: &[ClearColumn] = &[
    clear("meta", "key", "names of the store's counters"),
    clear("meta", "value", "counters: write batches, next row id, vector writes, texts removed"),
    clear("contents", "id", "row id"),
    clear("contents", "hash", "keyed hash of the text, to store equal texts once"),
    clear("contents", "bytes", "the text's length rounded up to a bucket, for status"),
    clear("contents", "generation", "the write batch that last changed it, for the index to catch up"),
    clear("chunks", "id", "row id"),
    clear("chunks", "content_id", "the text it is part of"),
    clear("chunks", "seq", "its place in the text"),
    clear("chunks", "start", "byte offset in the text, to put the text back together"),
    clear("chunks", "len", "byte length, to put the text back together"),
    clear("items", "id", "row id"),
    clear("items", "kind", "file, screen or doc, for filters"),
    clear("items", "source_key", "keyed hash of the path or frame, to find it again"),
    clear("items", "content_id", "the text it holds"),
    clear("items", "time", "when it was written or seen, for the timeline and time filters"),
    clear("items", "added_at", "when it was stored"),
    clear("items", "change_key", "keyed hash of the row, size and modified time, to skip an unchanged file"),
    clear("embeddings", "chunk_id", "the chunk it belongs to"),
    clear("embeddings", "model", "the embedder's name"),
    clear("frames", "item_id", "the memory it belongs to"),
    clear("frames", "bytes", "the sealed picture's size rounded up to a bucket, for retention by size"),
    clear("captions", "content_id", "the text it belongs to"),
    clear("captions", "model", "the language model's name"),
    clear("skipped", "id", "row id"),
    clear("skipped", "source_key", "keyed hash of a skipped file's path, to find it again"),
    clear("skipped", "change_key", "keyed hash of its path, size, modified time and engram version, to read it again once one changes"),
];

/// Rounds a byte count up to a coarse bucket, for sizes that must stay clear (retention by
/// size, totals in `status`): at least 4 KiB, then eight steps per doubling, so a bucket is at
/// most 12.5% above the true size and an exact size no longer singles out a known file.
pub fn bucket(bytes: i64) -> i64 {
    const MIN: i64 = 4096;
    if bytes <= 0 {
        return 0;
    }
    if bytes <= MIN {
        return MIN;
    }
    // `bytes` lies in (2^(k-1), 2^k]; steps of 2^(k-4) put eight between the two.
    let k = 64 - (bytes - 1).leading_zeros();
    let step = 1i64 << (k - 4);
    ((bytes - 1) / step + 1).saturating_mul(step)
}

/// The keyed hash that tells whether a source changed: its size and modified time, bound to
/// its row so two rows with equal sizes and times do not show as equal.
pub(crate) fn change_key(sealer: &Sealer, id: i64, size: i64, mtime: i64) -> [u8; 32] {
    let mut input = [0u8; 24];
    input[..8].copy_from_slice(&id.to_le_bytes());
    input[8..16].copy_from_slice(&size.to_le_bytes());
    input[16..].copy_from_slice(&mtime.to_le_bytes());
    sealer.keyed_hash("file-stat", &input)
}

/// An item's exact size, sealed in its row.
pub(crate) fn seal_size(sealer: &Sealer, id: i64, size: i64) -> Result<Vec<u8>> {
    Ok(sealer.seal(Place { table: "items", column: "sealed_size", row: id }, &size.to_le_bytes())?)
}

fn open_size(sealer: &Sealer, id: i64, sealed: &[u8]) -> Result<i64> {
    let tamper = || CryptoError::Tamper(format!("items.sealed_size row {id}"));
    let plain = sealer.open(Place { table: "items", column: "sealed_size", row: id }, sealed)?;
    let bytes: [u8; 8] = plain.as_slice().try_into().map_err(|_| tamper())?;
    Ok(i64::from_le_bytes(bytes))
}

const CHUNKS_OF: &str = "SELECT id, content_id, seq, start, len, body FROM chunks WHERE content_id = ?1 ORDER BY seq";

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
        // Stable query plans: otherwise SQLite compiles a cached `WHERE a = ?1 ORDER BY b`
        // again for every value bound (engram keeps no statistics a new plan could use).
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // Room for every statement a write and a search keep compiled (the default is 16).
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA secure_delete = ON;
             PRAGMA temp_store = MEMORY;",
        )?;
        let store = Store { conn, sealer };
        if migrate::run(&store.conn, &store.sealer)? {
            // A migration may have replaced clear values (exact sizes): no old page image stays
            // in the WAL. (Freed pages were zeroed by `secure_delete`.)
            store.checkpoint()?;
        }
        Ok(store)
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

    fn source_key(&self, kind: Kind, source: &[u8]) -> [u8; 32] {
        self.sealer.keyed_hash(&format!("source/{}", kind.as_str()), source)
    }

    /// Looks a source (a path's exact bytes, for a file) up by its keyed hash; opens nothing
    /// sealed.
    pub fn known(&self, kind: Kind, source: impl AsRef<[u8]>) -> Result<Option<Known>> {
        let key = self.source_key(kind, source.as_ref());
        Ok(self
            .conn
            .query_row("SELECT id, change_key FROM items WHERE source_key = ?1", [&key[..]], |r| {
                let change_key: Option<Vec<u8>> = r.get(1)?;
                Ok(Known { id: r.get(0)?, change_key: change_key.and_then(|k| k.try_into().ok()) })
            })
            .optional()?)
    }

    /// Whether the store holds `source` with this size and modified time: a file that need not
    /// be read again. Compares keyed hashes; opens nothing sealed.
    pub fn unchanged(&self, kind: Kind, source: impl AsRef<[u8]>, size: i64, mtime: i64) -> Result<bool> {
        Ok(self
            .known(kind, source)?
            .is_some_and(|k| k.change_key == Some(change_key(&self.sealer, k.id, size, mtime))))
    }

    /// Runs `f` in one transaction and one generation: all of it lands or none does.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let generation: i64 =
            tx.query_row("UPDATE meta SET value = value + 1 WHERE key = 'generation' RETURNING value", [], |r| {
                r.get(0)
            })?;
        let mut w = Writer { tx, sealer: &self.sealer, generation, next_id: None };
        let out = f(&mut w)?;
        if let Some(id) = w.next_id {
            w.exec("UPDATE meta SET value = ?1 WHERE key = 'next_id'", [id])?;
        }
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
        let mut stmt = self.conn.prepare_cached(CHUNKS_OF)?;
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

    /// How many contents were ever removed: moves whenever one is.
    pub fn content_removals(&self) -> Result<i64> {
        let n = self.conn.query_row("SELECT value FROM meta WHERE key = 'content_removals'", [], |r| r.get(0)).optional()?;
        Ok(n.unwrap_or(0))
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
    /// The next free id, once this write has taken one.
    next_id: Option<i64>,
}

impl Writer<'_> {
    /// Runs a statement, compiled once per connection: a bulk add runs each thousands of times.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    fn row<T>(&self, sql: &str, params: impl rusqlite::Params, f: impl FnOnce(&rusqlite::Row) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(params, f)
    }

    /// Takes `n` consecutive ids; the counter is written back once, at commit.
    fn next_ids(&mut self, n: i64) -> Result<i64> {
        let first = match self.next_id {
            Some(id) => id,
            None => self.row("SELECT value FROM meta WHERE key = 'next_id'", [], |r| r.get(0))?,
        };
        self.next_id = Some(first + n);
        Ok(first)
    }

    /// Stores an item, reusing an equal content, replacing the item's old content if it changed.
    pub fn put(&mut self, item: &NewItem) -> Result<(i64, PutOutcome)> {
        self.put_item(item).map(|p| (p.id, p.outcome))
    }

    /// [`Writer::put`], also telling which content holds the text and whether it is new.
    pub fn put_item(&mut self, item: &NewItem) -> Result<Put> {
        let (id, outcome, content, created) = self.put_parts(item)?;
        Ok(Put { id, outcome, content, created, generation: self.generation })
    }

    fn put_parts(&mut self, item: &NewItem) -> Result<(i64, PutOutcome, i64, bool)> {
        let source_key = self.sealer.keyed_hash(&format!("source/{}", item.kind.as_str()), &item_key(item));
        let (content_id, created) = self.content_for(item)?;
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
                let change = change_key(self.sealer, id, item.size, item.mtime);
                let size = seal_size(self.sealer, id, item.size)?;
                self.exec(
                    "INSERT INTO items (id, kind, source_key, content_id, source, title, meta, time, change_key, sealed_size, added_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![id, item.kind.as_str(), &source_key[..], content_id, source, title, meta, item.time, &change[..], size, now],
                )?;
                self.touch_content(content_id)?;
                Ok((id, PutOutcome::Added, content_id, created))
            }
            Some((id, old_content, old_title)) => {
                let old_title = old_title
                    .map(|t| self.sealer.open_str(Place { table: "items", column: "title", row: id }, &t))
                    .transpose()?;
                let (source, title, meta) = self.seal_item_fields(id, item)?;
                let change = change_key(self.sealer, id, item.size, item.mtime);
                let size = seal_size(self.sealer, id, item.size)?;
                self.exec(
                    "UPDATE items SET content_id = ?2, source = ?3, title = ?4, meta = ?5, time = ?6, change_key = ?7, sealed_size = ?8 WHERE id = ?1",
                    params![id, content_id, source, title, meta, item.time, &change[..], size],
                )?;
                if old_content != content_id {
                    self.touch_content(content_id)?;
                    self.drop_if_orphan(old_content)?;
                    Ok((id, PutOutcome::Updated, content_id, created))
                } else {
                    if old_title != item.title {
                        self.touch_content(content_id)?;
                    }
                    Ok((id, PutOutcome::Unchanged, content_id, created))
                }
            }
        }
    }

    /// Deletes an item, and its content when no other item holds it. Returns false if absent.
    pub fn remove(&mut self, id: i64) -> Result<bool> {
        let content: Option<i64> =
            self.row("SELECT content_id FROM items WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        let Some(content) = content else { return Ok(false) };
        self.exec("DELETE FROM items WHERE id = ?1", [id])?;
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

    /// The content holding the item's text, and whether this call created it.
    fn content_for(&mut self, item: &NewItem) -> Result<(i64, bool)> {
        let hash = self.sealer.keyed_hash("content", item.text.as_bytes());
        let found: Option<i64> =
            self.row("SELECT id FROM contents WHERE hash = ?1", [&hash[..]], |r| r.get(0)).optional()?;
        if let Some(id) = found {
            return Ok((id, false));
        }
        let id = self.next_ids(1 + item.chunks.len() as i64)?;
        self.exec(
            "INSERT INTO contents (id, hash, bytes, generation) VALUES (?1, ?2, ?3, ?4)",
            params![id, &hash[..], bucket(item.text.len() as i64), self.generation],
        )?;
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO chunks (id, content_id, seq, start, len, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for (seq, span) in item.chunks.iter().enumerate() {
            let chunk_id = chunk_id(id, seq);
            let text = &item.text[span.start..span.end];
            let body = self.sealer.seal(Place { table: "chunks", column: "body", row: chunk_id }, text.as_bytes())?;
            stmt.execute(params![chunk_id, id, seq as i64, span.start as i64, (span.end - span.start) as i64, body])?;
        }
        Ok((id, true))
    }

    fn touch_content(&self, content_id: i64) -> Result<()> {
        self.exec("UPDATE contents SET generation = ?2 WHERE id = ?1", params![content_id, self.generation])?;
        Ok(())
    }

    fn drop_if_orphan(&self, content_id: i64) -> Result<bool> {
        let users: i64 = self.row("SELECT count(*) FROM items WHERE content_id = ?1", [content_id], |r| r.get(0))?;
        if users == 0 {
            self.exec("DELETE FROM contents WHERE id = ?1", [content_id])?;
            // Readers of the store (the keyword index) look for removed contents only when
            // this counter moved.
            self.exec(
                "INSERT INTO meta (key, value) VALUES ('content_removals', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
                [],
            )?;
        }
        Ok(users == 0)
    }
}

/// What makes an item one memory: a file is its path's exact bytes; a screen memory is one
/// frame, so its app alone is not enough.
fn item_key(item: &NewItem) -> Cow<'_, [u8]> {
    match item.kind {
        Kind::Screen => {
            let mut key = item.source.as_bytes().to_vec();
            key.push(0);
            key.extend_from_slice(item.time.to_string().as_bytes());
            key.push(0);
            key.extend_from_slice(item.title.as_deref().unwrap_or("").as_bytes());
            key.into()
        }
        _ => item.source.as_bytes().into(),
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
    size: Option<Vec<u8>>,
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
        let source = OsString::from_vec(sealer.open(place("source"), &self.source)?);
        let title = self.title.map(|t| sealer.open_str(place("title"), &t)).transpose()?;
        let meta = match self.meta {
            Some(m) => {
                let json = sealer.open(place("meta"), &m)?;
                serde_json::from_slice(&json).map_err(|_| CryptoError::Tamper(format!("items.meta row {}", self.id)))?
            }
            None => ItemMeta::default(),
        };
        let kind = Kind::parse(&self.kind).ok_or_else(|| CryptoError::Tamper(format!("items.kind row {}", self.id)))?;
        let size = match &self.size {
            Some(s) => open_size(sealer, self.id, s)?,
            None => return Err(CryptoError::Tamper(format!("items.sealed_size row {}", self.id)).into()),
        };
        Ok(Item {
            id: self.id,
            kind,
            content_id: self.content_id,
            source: source.to_string_lossy().into_owned(),
            path: (kind == Kind::File).then(|| PathBuf::from(source)),
            title,
            meta,
            time: self.time,
            size,
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
    use std::ffi::OsStr;
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
    fn a_cached_query_is_not_compiled_again_for_each_value() {
        // SQLite 3.54 compiles `WHERE a = ?1 ORDER BY b` again whenever ?1 changes, unless the
        // connection asks for stable query plans: it was a fifth of the ingest time.
        let (_dir, mut store) = store();
        store.write(|w| w.put(&item("a", "one two")).map(|_| ())).unwrap();
        store.write(|w| w.put(&item("b", "three four")).map(|_| ())).unwrap();
        for content in store.content_ids().unwrap() {
            store.chunks_of(content).unwrap();
        }
        let stmt = store.conn.prepare_cached(CHUNKS_OF).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
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
    fn an_unchanged_file_is_known_by_a_keyed_hash_of_its_size_and_time() {
        let (_d, mut s) = store();
        let mut it = item("/a.txt", "one");
        (it.size, it.mtime) = (1234, 1_700_000_000);
        s.write(|w| w.put(&it)).unwrap();
        assert!(s.unchanged(Kind::File, "/a.txt", 1234, 1_700_000_000).unwrap());
        assert!(!s.unchanged(Kind::File, "/a.txt", 1235, 1_700_000_000).unwrap());
        assert!(!s.unchanged(Kind::File, "/a.txt", 1234, 1_700_000_001).unwrap());
        assert!(!s.unchanged(Kind::File, "/b.txt", 1234, 1_700_000_000).unwrap());
        // The exact size is shown, from its sealed copy.
        let id = s.known(Kind::File, "/a.txt").unwrap().unwrap().id;
        assert_eq!(s.item(id).unwrap().size, 1234);
        // Equal sizes and times in two rows do not hash alike.
        let mut other = item("/b.txt", "two");
        (other.size, other.mtime) = (1234, 1_700_000_000);
        s.write(|w| w.put(&other)).unwrap();
        let keys: Vec<Vec<u8>> =
            s.conn.prepare("SELECT change_key FROM items").unwrap().query_map([], |r| r.get(0)).unwrap().map(|k| k.unwrap()).collect();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
    }

    #[test]
    fn a_path_that_is_not_utf8_is_kept_exactly() {
        use std::os::unix::ffi::OsStrExt;
        let (_d, mut s) = store();
        let latin1 = OsStr::from_bytes(b"/notes/caf\xe9.txt");
        let other = OsStr::from_bytes(b"/notes/caf\xe8.txt");
        let mut a = item("", "first text");
        a.source = latin1.to_owned();
        let mut b = item("", "second text");
        b.source = other.to_owned();
        let (ia, out_a) = s.write(|w| w.put(&a)).unwrap();
        let (ib, out_b) = s.write(|w| w.put(&b)).unwrap();
        assert_eq!((out_a, out_b), (PutOutcome::Added, PutOutcome::Added), "two names, two memories");
        assert_ne!(ia, ib);
        let it = s.item(ia).unwrap();
        assert_eq!(it.path.as_deref(), Some(Path::new(latin1)));
        assert_eq!(it.source, "/notes/caf\u{fffd}.txt");
        assert!(s.unchanged(Kind::File, latin1.as_bytes(), a.size, a.mtime).unwrap());
    }

    #[test]
    fn sizes_left_clear_are_rounded_up_to_a_bucket() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 4096);
        assert_eq!(bucket(4096), 4096);
        assert_eq!(bucket(4097), 4608);
        assert_eq!(bucket(8192), 8192);
        assert_eq!(bucket(1_000_000), 1_048_576);
        for n in [5000i64, 77_777, 123_456_789, 1 << 40] {
            let b = bucket(n);
            assert!(b >= n && b - n <= n / 8, "{n} -> {b}");
        }
        assert_eq!(bucket(i64::MAX), i64::MAX);
        // Many sizes share a bucket: the clear value does not single one out.
        assert_eq!(bucket(70_001), bucket(73_000));
    }

    /// Writes a version-4 store by hand (clear exact sizes, times and dimensions), as an older
    /// engram left it.
    fn version_4_store(path: &Path, sealer: &Sealer, size: i64, mtime: i64) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA secure_delete = ON;").unwrap();
        migrate::run_to(&conn, sealer, 4).unwrap();
        let seal = |table, column, row, plain: &[u8]| sealer.seal(Place { table, column, row }, plain).unwrap();
        let text = "an old memory of the heron";
        conn.execute(
            "INSERT INTO contents (id, hash, bytes, generation) VALUES (1, ?1, ?2, 1)",
            params![&sealer.keyed_hash("content", text.as_bytes())[..], size],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO chunks (id, content_id, seq, start, len, body) VALUES (2, 1, 0, 0, ?1, ?2)",
            params![text.len() as i64, seal("chunks", "body", 2, text.as_bytes())],
        )
        .unwrap();
        for (id, kind, source) in [(3i64, "file", "/old/heron.txt"), (4, "screen", "XTerm")] {
            conn.execute(
                "INSERT INTO items (id, kind, source_key, content_id, source, title, meta, time, mtime, size, added_at)
                 VALUES (?1, ?2, ?3, 1, ?4, NULL, NULL, 100, ?5, ?6, 100)",
                params![id, kind, &sealer.keyed_hash(&format!("source/{kind}"), source.as_bytes())[..], seal("items", "source", id, source.as_bytes()), mtime, size],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO frames (item_id, width, height, bytes, image, thumb, words) VALUES (4, 1366, 768, ?1, ?2, ?3, ?4)",
            params![size, seal("frames", "image", 4, b"webp"), seal("frames", "thumb", 4, b"thumb"), seal("frames", "words", 4, b"[]")],
        )
        .unwrap();
        conn.execute("UPDATE meta SET value = 5 WHERE key = 'next_id'", []).unwrap();
    }

    #[test]
    fn a_version_4_store_is_converted_and_keeps_no_exact_size_or_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engram.db");
        let sealer = Arc::new(Sealer::new(&DataKey::generate().unwrap()));
        // Six-byte values: SQLite stores them as these six bytes, big-endian.
        let (size, mtime) = (0x0000_5a17_e3c9_b4d2_i64, 0x0000_61c8_f00d_4e3b_i64);
        version_4_store(&path, &sealer, size, mtime);
        let on_disk = |v: i64| -> bool {
            let needle = &v.to_be_bytes()[2..];
            ["engram.db", "engram.db-wal"]
                .iter()
                .filter_map(|f| std::fs::read(dir.path().join(f)).ok())
                .any(|bytes| bytes.windows(6).any(|w| w == needle))
        };
        assert!(on_disk(size) && on_disk(mtime), "the old store holds them in the clear");

        let mut s = Store::open(&path, sealer.clone()).unwrap();
        // Still known as unchanged, and the exact size still shown.
        assert!(s.unchanged(Kind::File, "/old/heron.txt", size, mtime).unwrap());
        assert!(!s.unchanged(Kind::File, "/old/heron.txt", size, mtime + 1).unwrap());
        let old = s.item(3).unwrap();
        assert_eq!((old.size, old.source.as_str()), (size, "/old/heron.txt"));
        let words = s.frame_words(4).unwrap().unwrap();
        assert_eq!((words.width, words.height), (1366, 768));
        assert_eq!(s.frame_usage().unwrap().0, bucket(size));
        assert_eq!(s.stats().unwrap().text_bytes, bucket(size));
        let columns = |table: &str| -> Vec<String> {
            let stmt = s.conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
            stmt.column_names().map(|c| c.to_string()).collect()
        };
        assert!(!columns("items").iter().any(|c| c == "mtime" || c == "size"), "{:?}", columns("items"));
        assert!(!columns("frames").iter().any(|c| c == "width" || c == "height"), "{:?}", columns("frames"));
        // A changed file is written over as before.
        let mut again = item("/old/heron.txt", "a new memory of the heron");
        (again.size, again.mtime) = (10, 20);
        assert_eq!(s.write(|w| w.put(&again)).unwrap().1, PutOutcome::Updated);
        assert!(s.unchanged(Kind::File, "/old/heron.txt", 10, 20).unwrap());
        drop(s);

        // Nothing on disk holds the old exact values any more: not the database, not its WAL.
        assert!(!on_disk(size), "the exact size is still on disk");
        assert!(!on_disk(mtime), "the exact modified time is still on disk");
    }

    /// Every column of the schema, as (table, column, declared type).
    fn schema_columns(s: &Store) -> Vec<(String, String, String)> {
        let tables: Vec<String> = s
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut out = Vec::new();
        for t in tables {
            let mut stmt = s.conn.prepare(&format!("SELECT name, type FROM pragma_table_info('{t}')")).unwrap();
            let cols = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap();
            for c in cols {
                let (name, ty) = c.unwrap();
                out.push((t.clone(), name, ty));
            }
        }
        out
    }

    #[test]
    fn every_column_is_sealed_or_listed_as_clear() {
        let (_d, s) = store();
        let columns = schema_columns(&s);
        for (t, c, ty) in &columns {
            let listed = CLEAR_COLUMNS.iter().any(|k| k.table == t && k.column == c);
            // Sealed values are BLOBs; a clear column of another type must be listed.
            assert!(listed || ty == "BLOB", "{t}.{c} ({ty}) is clear and not in CLEAR_COLUMNS");
        }
        for k in CLEAR_COLUMNS {
            assert!(columns.iter().any(|(t, c, _)| t == k.table && c == k.column), "{}.{} is not in the schema", k.table, k.column);
        }
        // The BLOB columns left clear are exactly the keyed hashes; the other BLOBs are sealed.
        let clear_blobs: Vec<String> = columns
            .iter()
            .filter(|(t, c, ty)| ty == "BLOB" && CLEAR_COLUMNS.iter().any(|k| k.table == t && k.column == c))
            .map(|(t, c, _)| format!("{t}.{c}"))
            .collect();
        assert_eq!(clear_blobs, ["contents.hash", "items.source_key", "items.change_key", "skipped.source_key", "skipped.change_key"]);
    }

    #[test]
    fn the_readme_privacy_model_names_every_clear_column() {
        let readme = include_str!("../../README.md");
        let start = readme.find("## Privacy model").expect("README has a privacy model");
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
        for k in CLEAR_COLUMNS {
            let name = format!("`{}.{}`", k.table, k.column);
            assert!(section.contains(&name), "the README's privacy model does not say what {name} tells");
        }
        // Nor does it name a clear column the schema no longer has.
        for gone in ["`items.mtime`", "`items.size`", "`frames.width`", "`frames.height`"] {
            assert!(!section.contains(gone), "{gone} is named but no longer exists");
        }
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
