//! Backup, restore and verification of a sealed store.
//!
//! A backup is a folder shaped like a data directory: `key.json`, `engram.db`, `index/` and a
//! clear `backup.json` listing the files and their sizes. Nothing is opened or re-sealed on the
//! way: the database rows, the index files and the key file are the same sealed bytes, so the
//! backup is exactly as private as the store and the same passphrase (or recovery code) opens it.
//!
//! Why it is consistent while the daemon writes: the index is copied first, under tantivy's
//! meta lock (which its garbage collector needs before deleting a file), as the files one
//! `meta.json` names; the database is copied after it with `VACUUM INTO`, one read transaction.
//! The copied index is therefore never ahead of the copied store, and the index records the
//! store generation it reflects, so the first open replays whatever the store got meanwhile.
//! `VACUUM INTO` also leaves out freed pages, so nothing forgotten comes along.
//!
//! Verification opens every sealed value of every row and every sealed index file, and asks
//! SQLite for its own `integrity_check`; it reports damage by table, column and row id, or by
//! index file name, never by content. Restore copies a backup beside the store, verifies and
//! opens the copy, and only then puts it in place, setting any existing store aside.
//!
//! Not for: deciding what is sealed (the store and index do) or key handling (the vault does).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tantivy::directory::{Directory, META_LOCK};
use zeroize::Zeroizing;

use crate::config::{self, Config};
use crate::crypto::vault::{self, KEY_FILE};
use crate::crypto::{Place, Sealer};
use crate::index::{verify_file, SealedDirectory};
use crate::{Engram, Error, Result, DB_FILE, INDEX_DIR};

/// The clear list of a backup's files and sizes.
pub const MANIFEST: &str = "backup.json";
const META_FILE: &str = "meta.json.sealed";
const SEALED_SUFFIX: &str = ".sealed";

/// Every sealed database column: the table, the column whose value is the row of the seal's
/// place, and the sealed columns. A unit test checks that every BLOB column of the schema is
/// here or in [`CLEAR_BLOBS`], so a new sealed column cannot be left out of `verify`.
pub const SEALED_COLUMNS: &[(&str, &str, &[&str])] = &[
    ("items", "id", &["source", "title", "meta", "sealed_size"]),
    ("chunks", "id", &["body"]),
    ("embeddings", "chunk_id", &["vector"]),
    ("frames", "item_id", &["image", "thumb", "words", "dims"]),
    ("captions", "content_id", &["text"]),
    ("skipped", "id", &["path", "reason"]),
];

/// BLOB columns that hold keyed hashes, not sealed values.
pub const CLEAR_BLOBS: &[(&str, &str)] =
    &[("items", "source_key"), ("items", "change_key"), ("contents", "hash"), ("skipped", "source_key"), ("skipped", "change_key")];

/// One thing that failed its check. Names places and files, never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Damage {
    /// A sealed value that does not open with the key (modified, damaged or moved).
    Row { table: String, column: String, row: i64 },
    /// A sealed index file that does not open, or cannot be read.
    IndexFile { file: String, problem: String },
    /// SQLite's own check, or reading a table, found the database file damaged.
    Database { detail: String },
    /// The index's files open one by one but do not make an index together (one is missing).
    Index { detail: String },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Row { table, column, row } => write!(f, "{table}.{column} row {row}"),
            Damage::IndexFile { file, problem } => write!(f, "index file {file} ({problem})"),
            Damage::Database { detail } => write!(f, "database: {detail}"),
            Damage::Index { detail } => write!(f, "index: {detail}"),
        }
    }
}

/// Rows and sealed values checked in one table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TableCheck {
    pub table: String,
    pub rows: u64,
    /// Sealed values opened (NULL values are not counted).
    pub sealed_values: u64,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyReport {
    /// "ok", or how many problems SQLite's integrity_check listed (each is in `damaged`).
    pub integrity_check: String,
    pub tables: Vec<TableCheck>,
    pub database_bytes: u64,
    /// Whether there is a keyword index at all (a missing one is rebuilt on open, not damage).
    pub index_present: bool,
    pub index_files: u64,
    pub index_bytes: u64,
    /// Documents (chunks) in the index, when it opened.
    pub indexed_chunks: Option<u64>,
    pub index_generation: Option<i64>,
    pub store_generation: Option<i64>,
    pub damaged: Vec<Damage>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.damaged.is_empty()
    }

    /// Rows checked in `table` (0 when the table does not exist).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables.iter().find(|t| t.table == table).map(|t| t.rows).unwrap_or(0)
    }

    /// A one-line count of what was checked.
    pub fn counts(&self) -> String {
        format!(
            "{} memories, {} chunks, {} vectors, {} pictures, {} captions",
            self.rows("items"),
            self.rows("chunks"),
            self.rows("embeddings"),
            self.rows("frames"),
            self.rows("captions")
        )
    }

    /// The damage as one line, for an error message: the first few places, and how many more.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 5;
        let mut s: Vec<String> = self.damaged.iter().take(SHOWN).map(|d| d.to_string()).collect();
        if self.damaged.len() > SHOWN {
            s.push(format!("and {} more", self.damaged.len() - SHOWN));
        }
        s.join(", ")
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: u64 = self.tables.iter().map(|t| t.sealed_values).sum();
        writeln!(f, "database: {} bytes, SQLite integrity check {}", self.database_bytes, self.integrity_check)?;
        writeln!(f, "          {}; {values} sealed values opened", self.counts())?;
        if self.index_present {
            let gen = match (self.index_generation, self.store_generation) {
                (Some(i), Some(s)) if i < s => format!(", generation {i} of {s} (catches up when next opened)"),
                (Some(i), _) => format!(", generation {i}"),
                _ => String::new(),
            };
            let docs = self.indexed_chunks.map(|n| format!(", {n} chunks")).unwrap_or_default();
            writeln!(f, "index:    {} sealed files, {} bytes opened{docs}{gen}", self.index_files, self.index_bytes)?;
        } else {
            writeln!(f, "index:    none (it is rebuilt from the store when next opened)")?;
        }
        if self.ok() {
            write!(f, "every sealed value and index file is intact")
        } else {
            for d in &self.damaged {
                writeln!(f, "DAMAGED   {d}")?;
            }
            write!(f, "{} damaged", self.damaged.len())
        }
    }
}

/// Unlocks the store in `dir` and checks everything sealed in it. Damage is in the report, not
/// an error; a wrong passphrase is (exit 3), and changes nothing.
pub fn verify(dir: &Path, passphrase: &[u8]) -> Result<VerifyReport> {
    if !vault::exists(dir) {
        return Err(Error::Usage(format!("no engram store in {}: run `engram init` first (or pass --data-dir)", dir.display())));
    }
    let key = vault::unlock(dir, passphrase)?;
    Ok(verify_dir(dir, Arc::new(Sealer::new(&key))))
}

/// Checks the store and index in `dir` with `sealer`: SQLite's integrity check, every sealed
/// value of every row, every sealed index file, and that the index files make an index.
/// Reads only (the database is opened read-only).
pub fn verify_dir(dir: &Path, sealer: Arc<Sealer>) -> VerifyReport {
    let mut report = VerifyReport::default();
    verify_database(&dir.join(DB_FILE), &sealer, &mut report);
    verify_index(&dir.join(INDEX_DIR), sealer, &mut report);
    report
}

fn verify_database(path: &Path, sealer: &Sealer, report: &mut VerifyReport) {
    report.database_bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if !path.exists() {
        report.integrity_check = "not run".into();
        report.damaged.push(Damage::Database { detail: format!("{DB_FILE} is missing") });
        return;
    }
    let conn = match open_read_only(path) {
        Ok(c) => c,
        Err(e) => {
            report.integrity_check = "not run".into();
            report.damaged.push(Damage::Database { detail: format!("{DB_FILE} does not open: {e}") });
            return;
        }
    };
    match integrity_check(&conn) {
        Ok(problems) if problems.is_empty() => report.integrity_check = "ok".into(),
        Ok(problems) => {
            report.integrity_check = format!("found {} problems", problems.len());
            report.damaged.extend(problems.into_iter().map(|detail| Damage::Database { detail }));
        }
        Err(e) => {
            report.integrity_check = "could not run".into();
            report.damaged.push(Damage::Database { detail: format!("integrity check: {e}") });
        }
    }
    report.store_generation = conn.query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| r.get(0)).ok();
    for (table, row_column, columns) in SEALED_COLUMNS {
        if !table_exists(&conn, table) {
            continue;
        }
        let mut check = TableCheck { table: table.to_string(), ..Default::default() };
        if let Err(e) = check_table(&conn, sealer, table, row_column, columns, &mut check, &mut report.damaged) {
            report.damaged.push(Damage::Database { detail: format!("table {table} could not be read to the end: {e}") });
        }
        report.tables.push(check);
    }
}

fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// SQLite's `integrity_check`: the problems it lists (empty when it says "ok"), at most 100.
fn integrity_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(100)")?;
    let lines: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(if lines.len() == 1 && lines[0] == "ok" { Vec::new() } else { lines })
}

fn table_exists(conn: &Connection, table: &str) -> bool {
    conn.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |_| Ok(()))
        .is_ok()
}

/// Opens every sealed value of `table`, row by row, noting each that fails.
fn check_table(
    conn: &Connection,
    sealer: &Sealer,
    table: &'static str,
    row_column: &str,
    columns: &[&'static str],
    check: &mut TableCheck,
    damaged: &mut Vec<Damage>,
) -> rusqlite::Result<()> {
    // A store from before a sealed column was added (a backup about to be restored and
    // migrated) lacks it; its other columns are checked.
    let present: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({table})"))?
        .query_map([], |r| r.get(1))?
        .collect::<rusqlite::Result<_>>()?;
    let columns: Vec<&'static str> = columns.iter().copied().filter(|c| present.iter().any(|p| p == c)).collect();
    if columns.is_empty() || !present.iter().any(|p| p == row_column) {
        return Ok(());
    }
    let sql = format!("SELECT {row_column}, {} FROM {table} ORDER BY {row_column}", columns.join(", "));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let row: i64 = r.get(0)?;
        check.rows += 1;
        for (i, column) in columns.iter().enumerate() {
            let opened = match r.get_ref(i + 1)? {
                ValueRef::Null => continue,
                ValueRef::Blob(sealed) => sealer.open(Place { table, column, row }, sealed).map(Zeroizing::new).is_ok(),
                // A sealed column holds nothing but sealed blobs.
                _ => false,
            };
            if opened {
                check.sealed_values += 1;
            } else {
                damaged.push(Damage::Row { table: table.to_string(), column: column.to_string(), row });
            }
        }
    }
    Ok(())
}

fn verify_index(root: &Path, sealer: Arc<Sealer>, report: &mut VerifyReport) {
    report.index_present = root.join(META_FILE).exists();
    if !report.index_present {
        return;
    }
    let before = report.damaged.len();
    for name in sealed_files(root).unwrap_or_default() {
        let logical = name.trim_end_matches(SEALED_SUFFIX);
        match verify_file(&root.join(&name), logical, &sealer) {
            Ok(bytes) => {
                report.index_files += 1;
                report.index_bytes += bytes;
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                report.damaged.push(Damage::IndexFile { file: logical.to_string(), problem: "does not open".into() })
            }
            // Removed by a merge in another process since the folder was listed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => report.damaged.push(Damage::IndexFile { file: logical.to_string(), problem: format!("unreadable: {}", e.kind()) }),
        }
    }
    if report.damaged.len() > before {
        return;
    }
    // Every file opens: do they make an index? Opening a reader opens every file of every
    // segment that meta.json names, so a missing one shows here.
    let opened = SealedDirectory::open(root, sealer).map_err(|e| e.to_string()).and_then(|dir| {
        let index = tantivy::Index::open(dir).map_err(|e| e.to_string())?;
        let generation = index.load_metas().map_err(|e| e.to_string())?.payload.and_then(|p| {
            serde_json::from_str::<serde_json::Value>(&p).ok().and_then(|v| v.get("generation").and_then(|g| g.as_i64()))
        });
        let reader = match index.reader_builder().reload_policy(tantivy::ReloadPolicy::Manual).try_into() {
            Ok(r) => r,
            // Opening a reader takes tantivy's lock file, which a backup on read-only media
            // cannot have: the files each opened, which is what can be checked there.
            Err(tantivy::TantivyError::LockFailure(..)) => return Ok((generation, None)),
            Err(e) => return Err(e.to_string()),
        };
        Ok((generation, Some(reader.searcher().num_docs())))
    });
    match opened {
        Ok((generation, docs)) => {
            report.index_generation = generation;
            report.indexed_chunks = docs;
        }
        Err(detail) => report.damaged.push(Damage::Index { detail }),
    }
}

/// Names of the sealed files in an index folder, sorted (lock and temporary files left out).
fn sealed_files(root: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(SEALED_SUFFIX))
        .collect();
    names.sort();
    Ok(names)
}

/// One file written to a backup or restored from one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopiedFile {
    pub name: String,
    pub bytes: u64,
}

/// What `backup` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub dest: String,
    pub database_bytes: u64,
    pub index_files: u64,
    pub index_bytes: u64,
    pub key_file_bytes: u64,
    pub files: Vec<CopiedFile>,
    /// The backup as `verify` found it.
    pub check: VerifyReport,
}

/// The clear manifest of a backup.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    engram_backup: u32,
    engram_version: String,
    created: String,
    /// Each file's path in the backup and its size in bytes.
    files: BTreeMap<String, u64>,
}

/// Copies the store in `dir` to the new folder `dest`, online: the daemon may keep writing.
/// `dest` must not exist or be an empty folder; it is written whole or not at all (through a
/// temporary folder beside it and a rename), 0700 with 0600 files, and checked before it is
/// put in place. Damage found in the copy (which was then in the store too) is in the report's
/// `check`; the backup is kept, as everything else in it is sound.
pub fn backup(dir: &Path, passphrase: &[u8], dest: &Path) -> Result<BackupReport> {
    if !vault::exists(dir) {
        return Err(Error::Usage(format!("no engram store in {}: run `engram init` first (or pass --data-dir)", dir.display())));
    }
    let key = vault::unlock(dir, passphrase)?;
    let sealer = Arc::new(Sealer::new(&key));
    let dest = std::path::absolute(dest).map_err(|e| Error::Usage(format!("cannot use {}: {e}", dest.display())))?;
    check_dest(dir, &dest)?;
    let parent = dest.parent().ok_or_else(|| Error::Usage(format!("cannot back up to {}", dest.display())))?;
    fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".engram-backup-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(|e| io_error("create a folder in", parent, e))?;
    // Made 0700, and its files 0600, as they are created: no chmod afterwards, which a USB
    // stick's FAT file system would refuse.
    let stage = staging.path();

    // The index first, so the copied store is never behind it (see the module notes).
    let index_dest = stage.join(INDEX_DIR);
    new_private_dir(&index_dest).map_err(|e| io_error("create", &index_dest, e))?;
    let mut files = copy_index(&dir.join(INDEX_DIR), &index_dest, &sealer)?;
    let db_dest = stage.join(DB_FILE);
    copy_database(&dir.join(DB_FILE), &db_dest)?;
    files.push(CopiedFile { name: DB_FILE.into(), bytes: file_len(&db_dest) });
    let key_bytes = fs::read(dir.join(KEY_FILE)).map_err(|e| io_error("read", &dir.join(KEY_FILE), e))?;
    write_private(&stage.join(KEY_FILE), &key_bytes)?;
    files.push(CopiedFile { name: KEY_FILE.into(), bytes: key_bytes.len() as u64 });

    let check = verify_dir(stage, sealer);
    // Opening the copy's index to check it made tantivy's empty lock file; it is not a backup's.
    let _ = fs::remove_file(index_dest.join(META_LOCK.filepath.as_path()));
    let manifest = Manifest {
        engram_backup: 1,
        engram_version: env!("CARGO_PKG_VERSION").into(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files: files.iter().map(|f| (f.name.clone(), f.bytes)).collect(),
    };
    write_private(&stage.join(MANIFEST), serde_json::to_string_pretty(&manifest).expect("manifest serialises").as_bytes())?;
    sync_dir(&index_dest);
    sync_dir(stage);
    if dest.exists() {
        // An empty folder (check_dest made sure), replaced by the finished backup.
        fs::remove_dir(&dest).map_err(|e| io_error("replace the empty folder", &dest, e))?;
    }
    fs::rename(stage, &dest).map_err(|e| io_error("move the finished backup to", &dest, e))?;
    let _ = staging.keep();
    sync_dir(parent);
    let index: Vec<&CopiedFile> = files.iter().filter(|f| f.name.starts_with(INDEX_DIR)).collect();
    Ok(BackupReport {
        dest: dest.display().to_string(),
        database_bytes: file_len(&dest.join(DB_FILE)),
        index_files: index.len() as u64,
        index_bytes: index.iter().map(|f| f.bytes).sum(),
        key_file_bytes: key_bytes.len() as u64,
        files,
        check,
    })
}

/// Refuses a destination that holds a store or anything else, or that lies inside the data
/// directory.
fn check_dest(dir: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        if !dest.is_dir() {
            return Err(Error::Usage(format!("{} exists and is not a folder; choose a new folder for the backup", dest.display())));
        }
        if [KEY_FILE, DB_FILE, MANIFEST].iter().any(|f| dest.join(f).exists()) {
            return Err(Error::Usage(format!(
                "{} already holds an engram store or backup; a backup never overwrites one: choose a new folder",
                dest.display()
            )));
        }
        let empty = fs::read_dir(dest).map_err(|e| io_error("read", dest, e))?.next().is_none();
        if !empty {
            return Err(Error::Usage(format!("{} is not empty; choose a new or empty folder for the backup", dest.display())));
        }
    }
    if let (Ok(data), Some(dest)) = (dir.canonicalize(), canonical_prefix(dest)) {
        if dest.starts_with(&data) {
            return Err(Error::Usage(format!(
                "{} is inside the data directory {}; put the backup elsewhere (another disk, ideally)",
                dest.display(),
                data.display()
            )));
        }
    }
    Ok(())
}

/// `path` with its longest existing ancestor resolved (symlinks followed) and the rest kept.
fn canonical_prefix(path: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut p = path;
    loop {
        if let Ok(c) = p.canonicalize() {
            return Some(rest.iter().rev().fold(c, |acc: PathBuf, part| acc.join(part)));
        }
        rest.push(p.file_name()?.to_os_string());
        p = p.parent()?;
    }
}

/// Copies the sealed files of the index's current commit (its `meta.json` and the segment files
/// it names) and tantivy's list of managed files, holding the meta lock so no file named is
/// garbage-collected meanwhile. Returns what was copied; no index copies nothing (the store
/// rebuilds it when opened).
fn copy_index(src: &Path, dst: &Path, sealer: &Arc<Sealer>) -> Result<Vec<CopiedFile>> {
    if !src.join(META_FILE).exists() {
        return Ok(Vec::new());
    }
    let dir = SealedDirectory::open(src, sealer.clone()).map_err(|e| io_error("open", src, e))?;
    let tamper = |dir: &SealedDirectory, e: tantivy::TantivyError| match dir.tampered() {
        Some(name) => Error::Tamper(format!(
            "the keyword index file {name} failed its integrity check, so the index was not backed up; run `engram verify`, then `engram reindex`"
        )),
        None => Error::Other(format!("could not read the keyword index: {e}")),
    };
    let index = tantivy::Index::open(dir.clone()).map_err(|e| tamper(&dir, e))?;
    let _lock = dir
        .acquire_lock(&META_LOCK)
        .map_err(|e| Error::Other(format!("could not lock the keyword index for the copy: {e}")))?;
    for _attempt in 0..10 {
        // The meta named by `before` is the one listed, unless a commit landed in between.
        let before = fs::read(src.join(META_FILE)).map_err(|e| io_error("read", &src.join(META_FILE), e))?;
        let metas = index.load_metas().map_err(|e| tamper(&dir, e))?;
        let after = fs::read(src.join(META_FILE)).map_err(|e| io_error("read", &src.join(META_FILE), e))?;
        if before != after {
            continue;
        }
        let mut names: Vec<String> = metas
            .list_segment_files()
            .iter()
            .map(|p| format!("{}{SEALED_SUFFIX}", p.to_string_lossy()))
            .collect();
        names.sort();
        names.push(".managed.json.sealed".into());
        let mut copied = Vec::new();
        for name in names {
            // Some listed candidates do not exist (a segment without deletes has no .del file).
            match copy_private(&src.join(&name), &dst.join(&name)) {
                Ok(bytes) => copied.push(CopiedFile { name: format!("{INDEX_DIR}/{name}"), bytes }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("copy", &src.join(&name), e)),
            }
        }
        write_private(&dst.join(META_FILE), &before)?;
        copied.push(CopiedFile { name: format!("{INDEX_DIR}/{META_FILE}"), bytes: before.len() as u64 });
        return Ok(copied);
    }
    Err(Error::Other("the keyword index kept changing while it was copied; try the backup again".into()))
}

/// Copies the database as one consistent snapshot, without its free pages, into a single file
/// (rollback journal mode, so the backup is one file that opens on read-only media).
fn copy_database(src: &Path, dst: &Path) -> Result<()> {
    let sqlite = |what: &str, e: rusqlite::Error| Error::Other(format!("could not {what} the database: {e}"));
    // VACUUM INTO fills an empty file, which is made 0600 first.
    write_private(dst, &[])?;
    let conn = open_read_only(src).map_err(|e| sqlite("open", e))?;
    conn.execute("VACUUM INTO ?1", [dst.to_string_lossy()]).map_err(|e| sqlite("copy", e))?;
    drop(conn);
    let copy = Connection::open(dst).map_err(|e| sqlite("open the copy of", e))?;
    let _: String = copy.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).map_err(|e| sqlite("set up the copy of", e))?;
    drop(copy);
    fs::File::open(dst).and_then(|f| f.sync_all()).map_err(|e| io_error("write", dst, e))
}

/// What `restore` did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub restored_from: String,
    pub data_dir: String,
    /// Where the store that was there before now is, if there was one (`--force`).
    pub set_aside: Option<String>,
    pub files: Vec<CopiedFile>,
    /// The backup as `verify` found it before anything was replaced.
    pub check: VerifyReport,
}

/// Restores the backup in `src` into the data directory `dir`. Refused while the daemon runs,
/// and, unless `force`, when `dir` holds a store; with `force` that store is moved, whole and
/// still sealed, into `dir/replaced-TIME/`, never deleted. The backup is unlocked with
/// `passphrase` (a wrong one changes nothing), copied beside the store, verified and opened
/// (migrated, its index caught up) there, and only then moved into place.
pub fn restore(dir: &Path, src: &Path, passphrase: &[u8], config: Config, force: bool) -> Result<RestoreReport> {
    if let Some(state) = crate::daemon::running(dir) {
        return Err(Error::Usage(format!(
            "the engram daemon (pid {}) is running on {}; stop it first, and close engram serve and engram mcp",
            state.pid,
            dir.display()
        )));
    }
    if !src.join(KEY_FILE).is_file() || !src.join(DB_FILE).is_file() {
        return Err(Error::Usage(format!("{} is not an engram backup: it has no {KEY_FILE} and {DB_FILE}", src.display())));
    }
    if let (Ok(a), Ok(b)) = (src.canonicalize(), dir.canonicalize()) {
        if a == b {
            return Err(Error::Usage(format!("{} is the data directory itself, not a backup of it", src.display())));
        }
    }
    check_manifest(src)?;
    let src = &std::path::absolute(src).unwrap_or_else(|_| src.to_path_buf());
    let existing = vault::exists(dir) || dir.join(DB_FILE).exists() || dir.join(INDEX_DIR).exists();
    if existing && !force {
        return Err(Error::Usage(format!(
            "{} already holds an engram store; pass --force to move it aside (into a replaced-… folder there) and restore",
            dir.display()
        )));
    }
    let key = vault::unlock(src, passphrase)?;
    let sealer = Arc::new(Sealer::new(&key));
    config::create_private_dir(dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".engram-restore-")
        .tempdir_in(dir)
        .map_err(|e| io_error("create a folder in", dir, e))?;
    let stage = staging.path();
    private_dir(stage)?;
    let mut files = Vec::new();
    for name in [DB_FILE, "engram.db-wal", KEY_FILE] {
        match copy_private(&src.join(name), &stage.join(name)) {
            Ok(bytes) => files.push(CopiedFile { name: name.into(), bytes }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && name == "engram.db-wal" => {}
            Err(e) => return Err(io_error("copy", &src.join(name), e)),
        }
    }
    let (src_index, stage_index) = (src.join(INDEX_DIR), stage.join(INDEX_DIR));
    if src_index.is_dir() {
        private_dir(&stage_index)?;
        for name in sealed_files(&src_index).map_err(|e| io_error("read", &src_index, e))? {
            let bytes = copy_private(&src_index.join(&name), &stage_index.join(&name)).map_err(|e| io_error("copy", &src_index.join(&name), e))?;
            files.push(CopiedFile { name: format!("{INDEX_DIR}/{name}"), bytes });
        }
    }

    let check = verify_dir(stage, sealer);
    if !check.ok() {
        return Err(Error::Tamper(format!(
            "the backup in {} is damaged ({}); run `engram verify --data-dir {}` for the full list. Nothing was changed",
            src.display(),
            check.summary(),
            src.display()
        )));
    }
    // Open the copy as a store: migrations run and the index catches up here, so a backup this
    // engram cannot open (a newer schema) changes nothing either.
    drop(Engram::open_with_key(stage, &key, config)?);

    let set_aside = if existing { Some(set_aside(dir)?) } else { None };
    for name in [INDEX_DIR, "engram.db-wal", "engram.db-shm", DB_FILE, KEY_FILE] {
        // The key file last: until it is in place the folder is not taken for a store.
        let from = stage.join(name);
        if from.exists() {
            fs::rename(&from, dir.join(name)).map_err(|e| io_error("move into place", &dir.join(name), e))?;
        }
    }
    sync_dir(dir);
    drop(staging);
    Ok(RestoreReport {
        restored_from: src.display().to_string(),
        data_dir: dir.display().to_string(),
        set_aside: set_aside.map(|p| p.display().to_string()),
        files,
        check,
    })
}

/// When the backup has a manifest, every file it lists must be there, whole.
fn check_manifest(src: &Path) -> Result<()> {
    let Ok(text) = fs::read_to_string(src.join(MANIFEST)) else { return Ok(()) };
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::Tamper(format!("the backup's {MANIFEST} is damaged ({e}); nothing was changed")))?;
    for (name, bytes) in &manifest.files {
        let found = fs::metadata(src.join(name)).map(|m| m.len()).ok();
        if found != Some(*bytes) {
            let what = found.map(|n| format!("has {n} bytes, not {bytes}")).unwrap_or_else(|| "is missing".into());
            return Err(Error::Tamper(format!("the backup in {} is incomplete: {name} {what}; nothing was changed", src.display())));
        }
    }
    Ok(())
}

/// Moves the store files of `dir` (key file, database and its journal, index) into a new
/// `replaced-TIME` folder there. Returns that folder.
fn set_aside(dir: &Path) -> Result<PathBuf> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let mut aside = dir.join(format!("replaced-{stamp}"));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = dir.join(format!("replaced-{stamp}-{n}"));
    }
    fs::create_dir(&aside).map_err(|e| io_error("create", &aside, e))?;
    private_dir(&aside)?;
    for name in [KEY_FILE, DB_FILE, "engram.db-wal", "engram.db-shm", INDEX_DIR] {
        let from = dir.join(name);
        if from.exists() {
            fs::rename(&from, aside.join(name)).map_err(|e| io_error("move aside", &from, e))?;
        }
    }
    Ok(aside)
}

fn io_error(what: &str, path: &Path, e: io::Error) -> Error {
    Error::Other(format!("could not {what} {}: {e}", path.display()))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn private_dir(path: &Path) -> Result<()> {
    config::create_private_dir(path)?;
    Ok(())
}

/// Creates a new folder, 0700 from the start.
fn new_private_dir(path: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// Writes a new file, 0600 from the start, and syncs it.
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    write_new(path, data).map_err(|e| io_error("write", path, e))
}

fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Copies a file's bytes as they are into a new 0600 file; returns its size.
fn copy_private(from: &Path, to: &Path) -> io::Result<u64> {
    let mut src = fs::File::open(from)?;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut dst = opts.open(to)?;
    let n = io::copy(&mut src, &mut dst)?;
    dst.sync_all()?;
    Ok(n)
}

fn sync_dir(path: &Path) {
    if let Ok(d) = fs::File::open(path) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;
    use crate::store::{Frame, ItemMeta, Kind, NewItem, Span, Store};

    fn sealer() -> Arc<Sealer> {
        Arc::new(Sealer::new(&DataKey::generate().unwrap()))
    }

    fn note(source: &str, text: &str) -> NewItem {
        NewItem {
            kind: Kind::File,
            source: source.into(),
            title: Some("标题 title".into()),
            meta: ItemMeta::default(),
            time: 100,
            mtime: 100,
            size: text.len() as i64,
            text: text.into(),
            chunks: vec![Span { start: 0, end: text.len() }],
        }
    }

    /// A store in `dir` with two notes, one with a picture, and its index caught up.
    fn store_in(dir: &Path, sealer: &Arc<Sealer>) -> Store {
        let mut store = Store::open(&dir.join(DB_FILE), sealer.clone()).unwrap();
        store
            .write(|w| {
                let (id, _) = w.put(&note("/notes/a.md", "租约到期 the lease ends in August"))?;
                w.put(&note("/notes/b.md", "brakes cost 312.40 GBP"))?;
                w.put_frame(id, &Frame { width: 2, height: 1, image: vec![1, 2, 3], thumb: vec![4], words: b"[]".to_vec() })
            })
            .unwrap();
        let index = crate::index::KeywordIndex::open(&dir.join(INDEX_DIR), sealer.clone()).unwrap();
        index.sync(&store).unwrap();
        store
    }

    #[test]
    fn every_blob_column_of_the_schema_is_verified_or_known_to_be_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join(DB_FILE), sealer()).unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut blobs = Vec::new();
        for t in &tables {
            let mut stmt = conn.prepare(&format!("PRAGMA table_info({t})")).unwrap();
            let cols: Vec<(String, String)> =
                stmt.query_map([], |r| Ok((r.get(1)?, r.get(2)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap();
            blobs.extend(cols.into_iter().filter(|(_, ty)| ty.eq_ignore_ascii_case("BLOB")).map(|(c, _)| (t.clone(), c)));
        }
        assert!(!blobs.is_empty());
        for (t, c) in blobs {
            let sealed = SEALED_COLUMNS.iter().any(|(st, _, cols)| *st == t && cols.contains(&c.as_str()));
            let clear = CLEAR_BLOBS.iter().any(|(ct, cc)| *ct == t && *cc == c);
            assert!(sealed || clear, "{t}.{c} is a BLOB column that backup::SEALED_COLUMNS does not verify");
        }
    }

    #[test]
    fn a_sound_store_verifies_and_counts_what_it_opened() {
        let dir = tempfile::tempdir().unwrap();
        let s = sealer();
        drop(store_in(dir.path(), &s));
        let r = verify_dir(dir.path(), s);
        assert!(r.ok(), "{r}");
        assert_eq!(r.integrity_check, "ok");
        assert_eq!((r.rows("items"), r.rows("chunks"), r.rows("frames")), (2, 2, 1));
        // 2 × (source, title, meta, sealed_size) + 2 bodies + image, thumb, words, dims.
        assert_eq!(r.tables.iter().map(|t| t.sealed_values).sum::<u64>(), 14);
        assert!(r.index_present && r.index_files > 0);
        assert_eq!(r.indexed_chunks, Some(2));
        assert_eq!(r.index_generation, r.store_generation);
    }

    #[test]
    fn a_store_from_an_older_schema_verifies_with_the_columns_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let s = sealer();
        drop(store_in(dir.path(), &s));
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch("ALTER TABLE frames DROP COLUMN words; DROP TABLE captions;").unwrap();
        drop(conn);
        let r = verify_dir(dir.path(), s);
        assert!(r.ok(), "{r}");
        assert_eq!(r.rows("frames"), 1);
        assert!(r.tables.iter().all(|t| t.table != "captions"));
    }

    #[test]
    fn a_flipped_byte_in_a_row_or_an_index_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = sealer();
        drop(store_in(dir.path(), &s));
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let (id, mut body): (i64, Vec<u8>) =
            conn.query_row("SELECT id, body FROM chunks ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        body[20] ^= 1;
        conn.execute("UPDATE chunks SET body = ?1 WHERE id = ?2", rusqlite::params![body, id]).unwrap();
        // A sealed value moved to another column does not open there either.
        let frame_id: i64 = conn.query_row("SELECT item_id FROM frames", [], |r| r.get(0)).unwrap();
        conn.execute("UPDATE frames SET thumb = image", []).unwrap();
        drop(conn);
        let seg = sealed_files(&dir.path().join(INDEX_DIR)).unwrap().into_iter().find(|n| n.ends_with(".idx.sealed")).unwrap();
        let p = dir.path().join(INDEX_DIR).join(&seg);
        let mut bytes = fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        fs::write(&p, bytes).unwrap();

        let r = verify_dir(dir.path(), s);
        assert_eq!(
            r.damaged,
            vec![
                Damage::Row { table: "chunks".into(), column: "body".into(), row: id },
                Damage::Row { table: "frames".into(), column: "thumb".into(), row: frame_id },
                Damage::IndexFile { file: seg.trim_end_matches(SEALED_SUFFIX).into(), problem: "does not open".into() },
            ],
            "{r}"
        );
        let text = r.to_string();
        assert!(!text.contains("lease") && !text.contains("租约"), "{text}");
    }

    #[test]
    fn a_missing_segment_file_is_damage_and_another_key_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = sealer();
        drop(store_in(dir.path(), &s));
        let r = verify_dir(dir.path(), sealer());
        assert_eq!(r.damaged.iter().filter(|d| matches!(d, Damage::Row { .. })).count(), 14, "{r}");
        let seg = sealed_files(&dir.path().join(INDEX_DIR)).unwrap().into_iter().find(|n| n.ends_with(".term.sealed")).unwrap();
        fs::remove_file(dir.path().join(INDEX_DIR).join(seg)).unwrap();
        let r = verify_dir(dir.path(), s);
        assert!(matches!(r.damaged.as_slice(), [Damage::Index { .. }]), "{r}");
    }

    const PASS: &[u8] = b"pass";

    /// A vault with cheap key derivation and a store in `dir`.
    fn vault_in(dir: &Path) -> Arc<Sealer> {
        let fast = vault::KdfParams { m_cost: 1024, t_cost: 1, p_cost: 1 };
        let key = vault::create(dir, PASS, fast).unwrap();
        let s = Arc::new(Sealer::new(&key));
        drop(store_in(dir, &s));
        s
    }

    /// Opens a copy as a store, lets its index catch up as the first open does, and says
    /// whether the index holds exactly the store's chunks.
    fn index_matches_store(dir: &Path, sealer: &Arc<Sealer>) -> (i64, u64) {
        let store = Store::open(&dir.join(DB_FILE), sealer.clone()).unwrap();
        let index = crate::index::KeywordIndex::open(&dir.join(INDEX_DIR), sealer.clone()).unwrap();
        index.sync(&store).unwrap();
        (store.stats().unwrap().chunks, index.num_chunks())
    }

    #[test]
    fn a_backup_taken_while_another_process_writes_is_whole_and_consistent() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        fs::create_dir_all(&data).unwrap();
        let s = vault_in(&data);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (data, s, stop) = (data.clone(), s.clone(), stop.clone());
            std::thread::spawn(move || {
                // As the daemon does: write, index, now and then forget and compact (merges and
                // garbage collection delete index files under the backup's feet).
                let mut store = Store::open(&data.join(DB_FILE), s.clone()).unwrap();
                let index = crate::index::KeywordIndex::open(&data.join(INDEX_DIR), s).unwrap();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 20 {
                    n += 1;
                    let (id, _) = store.write(|w| w.put(&note(&format!("/notes/{n}.md"), &format!("note {n} 笔记 {n}")))).unwrap();
                    index.sync(&store).unwrap();
                    if n % 5 == 0 {
                        store.write(|w| w.remove(id)).unwrap();
                        index.sync(&store).unwrap();
                        index.compact().unwrap();
                    }
                }
                n
            })
        };
        let mut dests = Vec::new();
        for i in 0..4 {
            let dest = t.path().join(format!("backup-{i}"));
            let r = backup(&data, PASS, &dest).unwrap();
            assert!(r.check.ok(), "{}", r.check);
            assert!(r.index_files > 0);
            dests.push(dest);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(writer.join().unwrap() >= 20);
        for dest in &dests {
            let (chunks, indexed) = index_matches_store(dest, &s);
            assert_eq!(chunks as u64, indexed, "{}", dest.display());
        }
    }

    #[test]
    fn restore_checks_the_backup_before_it_replaces_anything() {
        let t = tempfile::tempdir().unwrap();
        let (data, dest, other) = (t.path().join("data"), t.path().join("bak"), t.path().join("other"));
        fs::create_dir_all(&data).unwrap();
        let s = vault_in(&data);
        let r = backup(&data, PASS, &dest).unwrap();
        assert_eq!((r.check.rows("items"), r.check.rows("frames")), (2, 1));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dest), 0o700);
            assert_eq!(mode(&dest.join(INDEX_DIR)), 0o700);
            for f in [KEY_FILE, DB_FILE, MANIFEST] {
                assert_eq!(mode(&dest.join(f)), 0o600, "{f}");
            }
            for f in sealed_files(&dest.join(INDEX_DIR)).unwrap() {
                assert_eq!(mode(&dest.join(INDEX_DIR).join(&f)), 0o600, "{f}");
            }
            assert_eq!(fs::read_dir(dest.join(INDEX_DIR)).unwrap().count(), sealed_files(&dest.join(INDEX_DIR)).unwrap().len());
        }
        // Into a store that exists: refused without --force, and with the wrong passphrase.
        assert!(matches!(restore(&data, &dest, PASS, Config::default(), false), Err(Error::Usage(_))));
        let before = fs::read(data.join(KEY_FILE)).unwrap();
        assert!(matches!(restore(&data, &dest, b"wrong", Config::default(), true), Err(Error::Vault(vault::VaultError::WrongPassphrase(_)))));
        assert_eq!(fs::read(data.join(KEY_FILE)).unwrap(), before);
        // A damaged backup is refused, and nothing changes.
        let damaged = t.path().join("damaged");
        fs::create_dir_all(&damaged).unwrap();
        for f in [KEY_FILE, DB_FILE] {
            fs::copy(dest.join(f), damaged.join(f)).unwrap();
        }
        let conn = Connection::open(damaged.join(DB_FILE)).unwrap();
        conn.execute("UPDATE items SET title = source", []).unwrap();
        drop(conn);
        let err = restore(&other, &damaged, PASS, Config::default(), false).unwrap_err();
        assert!(matches!(err, Error::Tamper(ref m) if m.contains("items.title row")), "{err}");
        assert!(!vault::exists(&other));
        // With --force, the old store is set aside whole, and the backup opens in its place.
        let r = restore(&data, &dest, PASS, Config::default(), true).unwrap();
        let aside = PathBuf::from(r.set_aside.unwrap());
        assert_eq!(fs::read(aside.join(KEY_FILE)).unwrap(), before);
        assert!(aside.join(DB_FILE).exists() && aside.join(INDEX_DIR).join(META_FILE).exists());
        assert!(verify_dir(&data, s.clone()).ok());
        assert_eq!(index_matches_store(&data, &s), (2, 2));
        let leftovers: Vec<_> = fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with(".engram")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn an_incomplete_backup_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let (data, dest) = (t.path().join("data"), t.path().join("bak"));
        fs::create_dir_all(&data).unwrap();
        vault_in(&data);
        backup(&data, PASS, &dest).unwrap();
        let seg = sealed_files(&dest.join(INDEX_DIR)).unwrap().into_iter().find(|n| n.ends_with(".store.sealed")).unwrap();
        fs::remove_file(dest.join(INDEX_DIR).join(&seg)).unwrap();
        let err = restore(&t.path().join("new"), &dest, PASS, Config::default(), false).unwrap_err();
        assert!(matches!(err, Error::Tamper(ref m) if m.contains(&seg) && m.contains("is missing")), "{err}");
    }

    #[test]
    fn a_backup_destination_must_be_new_or_empty_and_outside_the_data_dir() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        fs::create_dir_all(&data).unwrap();
        assert!(check_dest(&data, &t.path().join("new/deeper")).is_ok());
        fs::create_dir_all(t.path().join("empty")).unwrap();
        assert!(check_dest(&data, &t.path().join("empty")).is_ok());
        let holds = t.path().join("holds");
        fs::create_dir_all(&holds).unwrap();
        fs::write(holds.join(KEY_FILE), "{}").unwrap();
        assert!(matches!(check_dest(&data, &holds), Err(Error::Usage(m)) if m.contains("already holds")));
        fs::write(t.path().join("empty/x"), "").unwrap();
        assert!(matches!(check_dest(&data, &t.path().join("empty")), Err(Error::Usage(_))));
        assert!(matches!(check_dest(&data, &data.join("bak")), Err(Error::Usage(m)) if m.contains("inside the data directory")));
    }
}
