//! The service: an unlocked engram (store, index, models) and what every front end asks of it,
//! adding, searching, asking, showing, forgetting, in one place.


use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::capture::files::{self, Found};
use crate::config::Config;
use crate::crypto::vault::{self, KdfParams, VaultError};
use crate::crypto::{DataKey, Sealer};
use crate::answer::{Answer, Source, Terms};
use crate::embed::{EmbedError, Embedder};
use crate::llm::{Generator, LlmError};
use crate::extract::Skip;
use crate::index::vector::VectorIndex;
use crate::index::{IndexBatch, IndexError, KeywordIndex};
use crate::query::{self, Matches, Mode, SearchRequest};
use crate::store::{Item, ItemMeta, Kind, NewItem, PutOutcome, Store, StoreError};


pub mod contract;
pub mod worker;

use crate::{answer, capture, config, daemon, embed, extract, store, Error, Result, DB_FILE, INDEX_DIR, VECTOR_DIR};


/// An unlocked engram: the store and its index.
pub struct Engram {
    dir: PathBuf,
    config: Config,
    store: Store,
    /// Shared with the handles [`Engram::reader`] makes (tantivy's reader serves many threads).
    index: Arc<KeywordIndex>,
    /// Loaded when first needed; the error says which file is missing and how to fetch it.
    embedder: OnceCell<std::result::Result<Rc<Embedder>, String>>,
    /// Opened from the store when a semantic query first needs it, and caught up whenever
    /// the store has moved since (a write here or by another process); one copy for this
    /// handle and every reader it made.
    vectors: Arc<Mutex<Option<LoadedVectors>>>,
    /// The embedder's tokenizer, which sizes chunks; `None` when the model is not fetched.
    token_counter: OnceCell<Option<embed::TokenCounter>>,
    /// The language model, loaded when a question first needs it.
    generator: OnceCell<std::result::Result<RefCell<Generator>, String>>,
    /// The store generation the keyword index reader was last brought up to.
    seen: std::cell::Cell<i64>,
    /// Reads documents in a sandboxed child process, started when a file first needs it.
    worker: RefCell<extract::worker::Worker>,
    /// Vectors of the chunks embedded lately, reused for the same text.
    recent: embed::Recent,
}

/// The vector index with the model it holds and the store's (generation, vector writes) it
/// reflects: items are deleted by writes, vectors added by writes of their own.
struct LoadedVectors {
    model: String,
    stamp: (i64, i64),
    index: Arc<VectorIndex>,
}

/// What a reader handle is made of, made on the thread that owns the store and moved to the
/// reader's own ([`Engram::reader`]).
pub struct ReaderParts {
    dir: PathBuf,
    config: Config,
    store: Store,
    index: Arc<KeywordIndex>,
    vectors: Arc<Mutex<Option<LoadedVectors>>>,
}

/// Gives contents without a caption from the configured model one, newest first, until none
/// is left, `limit` are done, or `stop` says so; `progress` hears (done, of how many). The
/// language model is loaded only if there is work, and freed on return. Returns how many were
/// captioned (a content with no line that can serve counts too: it is not tried again).
pub fn caption_contents(
    store: &mut Store,
    models: &config::ModelsConfig,
    limit: usize,
    stop: &dyn Fn() -> bool,
    on_convert: &dyn Fn(&Path),
    progress: &mut dyn FnMut(usize, usize),
) -> Result<usize> {
    let total = (store.count_without_caption(&models.generator)? as usize).min(limit);
    let mut generator = None;
    let mut done = 0;
    while done < total && !stop() {
        let Some(content_id) = store.contents_without_caption(&models.generator, 1)?.pop() else { break };
        let title = store.titles_of(content_id)?.join(" · ");
        let text = store.text_of(content_id)?;
        let generator = match &mut generator {
            Some(g) => g,
            None => generator.insert(Generator::load(&models.generator_path(), on_convert)?),
        };
        let line = answer::caption::caption(generator, &title, &text)?;
        store.put_caption(content_id, &models.generator, line.as_deref())?;
        done += 1;
        progress(done, total);
    }
    Ok(done)
}

/// A question for [`Engram::ask`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskRequest {
    pub question: String,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub kind: Option<Kind>,
    pub app: Option<String>,
    /// Passages retrieved for the answer.
    pub passages: usize,
    /// Longest answer, in tokens.
    pub max_tokens: usize,
    pub style: answer::Style,
    /// Do not read a stretch of time the question names ("yesterday", "last week") as a
    /// filter. Without `since` or `until`, one is read unless this is set.
    #[serde(default)]
    pub any_time: bool,
}

impl AskRequest {
    pub fn new(question: impl Into<String>, config: &config::AskConfig) -> AskRequest {
        AskRequest {
            question: question.into(),
            since: None,
            until: None,
            kind: None,
            app: None,
            passages: config.passages,
            max_tokens: config.max_tokens,
            style: config.style,
            any_time: false,
        }
    }
}

/// What `add` did.
#[derive(Debug, Default, Serialize)]
pub struct AddReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Files once indexed under an added folder that are gone from it (or now excluded).
    pub removed: usize,
    pub excluded: usize,
    pub chunks: usize,
    /// Chunks given a sentence embedding.
    pub embedded: usize,
    /// Why semantic search could not be prepared, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_off: Option<String>,
    pub skipped: BTreeMap<&'static str, usize>,
    pub skipped_files: Vec<SkippedFile>,
    /// Files the extraction worker failed on in this run (it crashed, ran out of time or of
    /// memory), by reason; each is remembered and not read again until it changes.
    pub worker_failures: BTreeMap<&'static str, usize>,
    /// Skipped files not read again: they failed before and have not changed since.
    pub skipped_as_before: usize,
}

#[derive(Debug, Serialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: &'static str,
    pub detail: String,
    /// Remembered (a worker failure or a damaged document): not read again until it changes.
    pub remembered: bool,
    /// It was not read this time: it failed before and has not changed since.
    pub as_before: bool,
}

/// A file remembered as skipped, for `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RememberedSkip {
    pub path: String,
    pub reason: String,
    pub detail: String,
}

/// Progress of a long `add`, for a progress bar.
pub enum AddEvent<'a> {
    Found(usize),
    File(&'a Path),
    /// Chunks embedded so far, of how many.
    Embedding(usize, usize),
}

/// What `forget` removes.
#[derive(Debug, Clone)]
pub enum Forget {
    Id(i64),
    /// A file or everything under a folder.
    Path(PathBuf),
    Before(i64),
    /// Every screen memory of an app.
    App(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    pub data_dir: String,
    #[serde(flatten)]
    pub store: store::Stats,
    pub indexed_chunks: u64,
    pub index_generation: i64,
    pub database_bytes: u64,
    pub index_bytes: u64,
    /// Sealed screenshots: bytes and how many.
    pub frame_bytes: i64,
    pub frames: i64,
    /// Chunks still waiting for a sentence embedding.
    pub chunks_without_vector: i64,
    /// Distinct texts the language model has not captioned yet.
    #[serde(default)]
    pub texts_without_caption: i64,
    /// Files remembered as skipped (the extraction worker failed on them, or they are damaged),
    /// not read again until they change.
    #[serde(default)]
    pub skipped_files: Vec<RememberedSkip>,
    pub embedder: String,
    /// How the embedder's dense layers multiply here: "AMX bf16 tiles" or "f32".
    #[serde(default)]
    pub embedder_arithmetic: String,
    /// The running daemon's own account of itself, with what it keeps only in memory; set when
    /// the daemon answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<daemon::State>,
    /// Until when screen capture is paused (Unix seconds; 0 until `engram resume`).
    #[serde(default)]
    pub paused_until: Option<i64>,
}

/// How many files to write in one store transaction.
const WRITE_BATCH: usize = 32;
/// How many files between index commits during a long add ...
const INDEX_EVERY: usize = 2000;
/// ... or once it has held the index's writer this long (others wait for it).
const INDEX_HOLD: std::time::Duration = std::time::Duration::from_secs(2);

/// The embedder loading on a thread of its own, for a command without a daemon that will
/// need it: it loads while the vault unlocks (Argon2id keeps one core busy for about 0.2 s)
/// instead of after. The model is public, so loading it before the passphrase is checked
/// reveals nothing.
pub struct Preload(std::thread::JoinHandle<std::result::Result<Embedder, EmbedError>>);

impl Preload {
    pub fn start(config: &Config) -> Preload {
        let (dir, multilingual) = (config.models.embedder_dir(), config.models.embedder_multilingual);
        Preload(std::thread::spawn(move || Embedder::load(&dir, multilingual)))
    }
}

impl Engram {
    /// Creates a new vault and store in `dir`.
    pub fn init(dir: &Path, passphrase: &[u8], config: Config) -> Result<Engram> {
        config::create_private_dir(dir)?;
        let key = vault::create(dir, passphrase, KdfParams::default())?;
        Self::open_with_key(dir, &key, config)
    }

    /// Unlocks the vault in `dir`. A wrong passphrase changes nothing on disk.
    pub fn open(dir: &Path, passphrase: &[u8], config: Config) -> Result<Engram> {
        if !vault::exists(dir) {
            return Err(VaultError::NotInitialised(dir.display().to_string()).into());
        }
        let key = vault::unlock(dir, passphrase)?;
        Self::open_with_key(dir, &key, config)
    }

    /// Opens (creating if needed) a store sealed with `key`; for vaults and throwaway stores.
    pub fn open_with_key(dir: &Path, key: &DataKey, config: Config) -> Result<Engram> {
        config::create_private_dir(dir)?;
        let sealer = Arc::new(Sealer::new(key));
        let store = Store::open(&dir.join(DB_FILE), sealer.clone())?;
        let index = Arc::new(KeywordIndex::open(&dir.join(INDEX_DIR), sealer)?);
        let engram = Engram::from_parts(ReaderParts { dir: dir.to_path_buf(), config, store, index, vectors: Arc::default() });
        // Heal an index left behind by a crash; a busy writer elsewhere will do it instead.
        match engram.index.sync(&engram.store) {
            Ok(_) | Err(IndexError::Busy) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(engram)
    }

    /// Creates a new vault and store in `dir`, with a recovery code (returned to be shown once)
    /// that can replace a forgotten passphrase.
    pub fn init_with_recovery(dir: &Path, passphrase: &[u8], config: Config) -> Result<(Engram, vault::RecoveryCode)> {
        config::create_private_dir(dir)?;
        let (key, code) = vault::create_with_recovery(dir, passphrase, KdfParams::default())?;
        Ok((Self::open_with_key(dir, &key, config)?, code))
    }

    /// Sets a new passphrase with the recovery code instead of the old passphrase;
    /// `new_passphrase` is asked for only once the code has opened the key. A wrong code
    /// changes nothing.
    pub fn recover_passphrase(
        dir: &Path,
        recovery_code: &str,
        new_passphrase: impl FnOnce() -> Result<zeroize::Zeroizing<String>>,
    ) -> Result<()> {
        let key = vault::unlock_with_recovery(dir, recovery_code)?;
        let new = new_passphrase()?;
        vault::rewrap(dir, &key, new.as_bytes())?;
        Ok(())
    }

    /// Replaces the recovery code (or adds one to a store made without); returns the new one to
    /// be shown once. The old code stops working.
    pub fn new_recovery_code(dir: &Path, passphrase: &[u8]) -> Result<vault::RecoveryCode> {
        let key = vault::unlock(dir, passphrase)?;
        Ok(vault::new_recovery_code(dir, &key)?)
    }

    /// Changes the passphrase: the data key is rewrapped, nothing is re-encrypted.
    pub fn change_passphrase(dir: &Path, old: &[u8], new: &[u8]) -> Result<()> {
        let key = vault::unlock(dir, old)?;
        vault::rewrap(dir, &key, new)?;
        Ok(())
    }

    fn from_parts(p: ReaderParts) -> Engram {
        Engram {
            dir: p.dir,
            store: p.store,
            index: p.index,
            embedder: OnceCell::new(),
            token_counter: OnceCell::new(),
            generator: OnceCell::new(),
            vectors: p.vectors,
            seen: std::cell::Cell::new(-1),
            worker: RefCell::new(extract::worker::Worker::new(extract::worker::Limits::from_config(&p.config))),
            recent: embed::Recent::default(),
            config: p.config,
        }
    }

    /// The parts of another handle on this open store, for a thread of its own to serve reads
    /// ([`Engram::reader`]): its own SQLite connection; the keyword index's reader and the
    /// vectors shared, and the key not derived again.
    pub fn reader_parts(&self) -> Result<ReaderParts> {
        Ok(ReaderParts {
            dir: self.dir.clone(),
            config: self.config.clone(),
            store: self.store.reopen()?,
            index: self.index.clone(),
            vectors: self.vectors.clone(),
        })
    }

    /// A handle made of [`Engram::reader_parts`], on the thread that will use it (it loads its
    /// own models, when a request first needs them).
    pub fn reader(parts: ReaderParts) -> Engram {
        Engram::from_parts(parts)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn keyword_index(&self) -> &KeywordIndex {
        &self.index
    }

    /// Indexes files and folders. Unchanged files are not read again.
    pub fn add_paths(&mut self, paths: &[PathBuf], progress: &mut dyn FnMut(AddEvent)) -> Result<AddReport> {
        let found = files::walk(paths, &self.config.files).map_err(|e| Error::Usage(e.to_string()))?;
        let mut report = AddReport::default();
        let file_count = found.iter().filter(|f| matches!(f, Found::File(_))).count();
        progress(AddEvent::Found(file_count));
        let mut batch: Vec<NewItem> = Vec::new();
        let mut indexing: Option<IndexBatch> = None;
        let mut since_sync = 0;
        for f in found {
            match f {
                Found::Excluded(_) => report.excluded += 1,
                Found::Skipped(path, why) => report.skip(&path, why, false),
                Found::File(path) => {
                    progress(AddEvent::File(&path));
                    match self.prepare_file(&path)? {
                        Prepared::Item(item) => batch.push(*item),
                        Prepared::Unchanged => report.unchanged += 1,
                        Prepared::Skipped { skip, as_before } => report.skip(&path, skip, as_before),
                    }
                    since_sync += 1;
                }
            }
            if batch.len() >= WRITE_BATCH {
                self.write_batch(&mut batch, &mut indexing, &mut report)?;
            }
            // The index's writer is not kept from the daemon for long.
            if since_sync >= INDEX_EVERY || indexing.as_ref().is_some_and(|b| b.age() >= INDEX_HOLD) {
                self.write_batch(&mut batch, &mut indexing, &mut report)?;
                if let Some(b) = indexing.take() {
                    b.commit(&self.store)?;
                }
                since_sync = 0;
            }
        }
        self.write_batch(&mut batch, &mut indexing, &mut report)?;
        match indexing {
            Some(b) => b.commit(&self.store)?,
            None => self.index.sync(&self.store)?,
        };
        let folders: Vec<PathBuf> = paths.iter().filter(|p| p.is_dir()).cloned().collect();
        report.removed = self.drop_vanished(&folders)?;
        match self.embed_pending(progress) {
            Ok(n) => report.embedded = n,
            Err(Error::Embed(e)) => report.semantic_off = Some(e.to_string()),
            Err(e) => return Err(e),
        }
        Ok(report)
    }

    /// The embedder, loaded on first use.
    pub fn embedder(&self) -> std::result::Result<Rc<Embedder>, EmbedError> {
        let loaded = self.embedder.get_or_init(|| {
            let m = &self.config.models;
            Embedder::load(&m.embedder_dir(), m.embedder_multilingual).map(Rc::new).map_err(|e| e.to_string())
        });
        match loaded {
            Ok(e) => Ok(e.clone()),
            // Load once; later calls report the same failure.
            Err(msg) => Err(EmbedError::Unavailable(msg.clone())),
        }
    }

    /// Takes the embedder `preload` loaded (when given), as [`Engram::embedder`] would have.
    pub fn with_embedder(self, preload: Option<Preload>) -> Engram {
        if let Some(Preload(thread)) = preload {
            let loaded = thread.join().unwrap_or_else(|_| Err(EmbedError::Run("the thread loading it stopped".into())));
            let _ = self.embedder.set(loaded.map(Rc::new).map_err(|e| e.to_string()));
        }
        self
    }

    /// Splits a memory's text into chunks that fill the embedder's window: counted with its
    /// tokenizer when the model is fetched, else estimated.
    pub fn chunk_text(&self, text: &str) -> Vec<store::Span> {
        let counter = self.token_counter.get_or_init(|| embed::TokenCounter::load(&self.config.models.embedder_dir()).ok());
        match counter {
            Some(c) => extract::chunk_text_by(text, &|s| c.count(s)),
            None => extract::chunk_text(text),
        }
    }

    /// Gives every chunk without a vector one, in batches, resumably. Returns how many.
    pub fn embed_pending(&mut self, progress: &mut dyn FnMut(AddEvent)) -> Result<usize> {
        let embedder = self.embedder()?;
        let model = embedder.name().to_string();
        let total = self.store.count_without_vector(&model)? as usize;
        let mut done = 0;
        while done < total {
            let chunks = self.store.chunks_without_vector(&model, 256)?;
            if chunks.is_empty() {
                break;
            }
            // Text embedded lately (the part of a frame that typing left alone) is not again.
            let known: Vec<Option<Vec<f32>>> = chunks.iter().map(|c| self.recent.get(&c.text).cloned()).collect();
            let texts: Vec<&str> = chunks.iter().zip(&known).filter(|(_, k)| k.is_none()).map(|(c, _)| c.text.as_str()).collect();
            let mut fresh = if texts.is_empty() { Vec::new() } else { embedder.embed(&texts)? }.into_iter();
            let mut rows: Vec<(i64, Vec<f32>, f32)> = Vec::with_capacity(chunks.len());
            for (c, known) in chunks.iter().zip(known) {
                let v = match known {
                    Some(v) => v,
                    None => {
                        let v = fresh.next().expect("one vector per text embedded");
                        self.recent.put(&c.text, v.clone());
                        v
                    }
                };
                // The text's share of Latin script, whatever the model reads (see query::search).
                rows.push((c.id, v, embed::latin_share(&c.text)));
            }
            self.store.put_vectors(&model, &rows)?;
            done += rows.len();
            progress(AddEvent::Embedding(done, total));
        }
        // The index (a large store's graph) grows here, as vectors arrive, not in a search.
        if done > 0 {
            self.vector_index(&model, true)?;
        }
        Ok(done)
    }

    /// Brings the embedder's vector index up to the store (loading it first if need be) and
    /// saves it once it has grown by a tenth, so the next process reads it in one piece instead
    /// of opening every vector. Returns how many vectors it holds. [`Engram::embed_pending`]
    /// does this after embedding; a process that stores vectors by other means calls it.
    pub fn load_vectors(&self) -> Result<usize> {
        let model = self.embedder()?.name().to_string();
        Ok(self.vector_index(&model, true)?.len())
    }

    /// Captions memories that have none yet (see [`caption_contents`]).
    pub fn caption_pending(
        &mut self,
        limit: usize,
        stop: &dyn Fn() -> bool,
        on_convert: &dyn Fn(&Path),
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<usize> {
        caption_contents(&mut self.store, &self.config.models, limit, stop, on_convert, progress)
    }

    /// Reads and chunks one file: nothing when the store already has it as it is, or a skip
    /// (remembered when the extraction worker failed on it or it is damaged, and then not read
    /// again until it changes). Errs only when the store cannot be read or written, or no
    /// extraction worker can be started.
    fn prepare_file(&self, path: &Path) -> Result<Prepared> {
        let skipped = |skip| Ok(Prepared::Skipped { skip, as_before: false });
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return skipped(Skip::Vanished),
            Err(e) => return skipped(Skip::Unreadable(e.to_string())),
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // The path exactly as the system gives it: a name that is not UTF-8 is its own file.
        let source = path.as_os_str().to_os_string();
        let (key, size) = (source.as_encoded_bytes(), meta.len() as i64);
        if let Ok(true) = self.store.unchanged(Kind::File, key, size, mtime) {
            return Ok(Prepared::Unchanged);
        }
        let remembered = self.store.remembered_skip(key, size, mtime)?;
        if let store::Remembered::Unchanged(skip) = remembered {
            return Ok(Prepared::Skipped { skip, as_before: true });
        }
        let extracted = extract::extract_file(path, self.config.files.max_file_bytes, &mut self.worker.borrow_mut())
            .map_err(|e| Error::Other(e.to_string()))?;
        let mut doc = match extracted {
            Ok(doc) => doc,
            Err(skip) => {
                if skip.is_remembered() {
                    self.store.remember_skip(key, size, mtime, &skip)?;
                } else if remembered == store::Remembered::Changed {
                    self.store.forget_skip(key)?;
                }
                return skipped(skip);
            }
        };
        if remembered == store::Remembered::Changed {
            self.store.forget_skip(key)?;
        }
        let redacted = capture::privacy::redact(&doc.text);
        for s in &mut doc.sections {
            s.start = redacted.map_offset(s.start);
        }
        doc.text = redacted.text;
        let chunks = self.chunk_text(&doc.text);
        if chunks.is_empty() {
            return skipped(Skip::Empty);
        }
        let title = file_title(doc.title, path);
        Ok(Prepared::Item(Box::new(NewItem {
            kind: Kind::File,
            source,
            title,
            meta: ItemMeta {
                doc_type: Some(doc.doc_type.as_str().into()),
                author: doc.author.map(|a| capture::privacy::redact(&a).text),
                sections: doc.sections,
                ..Default::default()
            },
            time: doc.stated_time.unwrap_or(mtime),
            mtime,
            size: meta.len() as i64,
            text: doc.text,
            chunks,
        })))
    }

    fn write_batch(&mut self, batch: &mut Vec<NewItem>, indexing: &mut Option<IndexBatch>, report: &mut AddReport) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let indexing = match indexing {
            Some(b) => b,
            None => indexing.insert(self.index.batch(&self.store)?),
        };
        let outcomes = self.write_indexed(batch, indexing)?;
        for (item, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                PutOutcome::Added => report.added += 1,
                PutOutcome::Updated => report.updated += 1,
                PutOutcome::Unchanged => report.unchanged += 1,
            }
            if outcome != PutOutcome::Unchanged {
                report.chunks += item.chunks.len();
            }
        }
        batch.clear();
        Ok(())
    }

    /// Forgets file memories under `roots` whose file no longer exists or is now excluded.
    pub fn drop_vanished(&mut self, roots: &[PathBuf]) -> Result<usize> {
        if roots.is_empty() {
            return Ok(0);
        }
        let roots: Vec<PathBuf> = roots.iter().map(|r| files::absolute(r)).collect();
        let excluded = files::exclusions(&self.config.files).map_err(|e| Error::Usage(e.to_string()))?;
        let gone: Vec<i64> = self
            .store
            .all_items()?
            .into_iter()
            .filter_map(|i| Some((i.id, i.path?)))
            .filter(|(_, p)| roots.iter().any(|r| p.starts_with(r)) && (!p.is_file() || files::is_excluded(&excluded, p)))
            .map(|(id, _)| id)
            .collect();
        // What was remembered of files that are gone goes too (and rows that no longer open).
        let (records, mut stale) = self.store.remembered_skips_or_damaged()?;
        stale.extend(
            records
                .into_iter()
                .filter(|r| roots.iter().any(|root| r.path.starts_with(root)) && (!r.path.is_file() || files::is_excluded(&excluded, &r.path)))
                .map(|r| r.id),
        );
        if self.store.forget_skips(&stale)? > 0 && gone.is_empty() {
            self.store.checkpoint()?;
        }
        self.remove_items(&gone)
    }

    /// Stores a captured screen frame (already through the privacy gate) as one memory, in one
    /// transaction; [`Engram::sync_index`] indexes it. Returns the new item's id.
    /// `replaces`: an earlier frame this one continues (see `Captured::continues`), deleted in the
    /// same transaction.
    pub fn add_frame(&mut self, c: &capture::Captured, replaces: Option<i64>) -> Result<i64> {
        let text = if c.text.trim().is_empty() { c.title.clone() } else { c.text.clone() };
        let chunks = self.chunk_text(&text);
        let item = NewItem {
            kind: Kind::Screen,
            source: c.app.clone().into(),
            title: Some(c.title.clone()).filter(|t| !t.is_empty()),
            meta: ItemMeta { app: Some(c.app.clone()), pid: c.pid, ..Default::default() },
            time: c.time,
            mtime: c.time,
            size: c.image.len() as i64,
            text,
            chunks,
        };
        let frame = store::Frame {
            width: c.width,
            height: c.height,
            image: c.image.clone(),
            thumb: c.thumb.clone(),
            words: serde_json::to_vec(&c.words).expect("words serialise"),
        };
        let id = self.store.write(|w| {
            if let Some(old) = replaces {
                w.remove(old)?;
            }
            let (id, _) = w.put(&item)?;
            w.put_frame(id, &frame)?;
            Ok(id)
        })?;
        Ok(id)
    }

    /// Brings the keyword index up to the store. A frame is kept once [`Engram::add_frame`]
    /// returns; the index can catch up later (another process may hold its writer).
    pub fn sync_index(&mut self) -> Result<()> {
        self.index.sync(&self.store)?;
        Ok(())
    }

    /// Deletes screen memories older than the retention age, then the oldest beyond the size
    /// limit. Returns how many went.
    pub fn apply_retention(&mut self, now: i64) -> Result<usize> {
        let s = &self.config.screen;
        let before = if s.retention_days == 0 { i64::MIN } else { now - s.retention_days as i64 * 86_400 };
        let ids = self.store.expired_screens(before, s.max_bytes.min(i64::MAX as u64) as i64)?;
        self.remove_items(&ids)
    }

    /// A screen memory's frame size and OCR words (JSON), if it has a frame.
    pub fn frame_words(&self, id: i64) -> Result<Option<store::FrameWords>> {
        Ok(self.store.frame_words(id)?)
    }

    /// A screen memory's decrypted picture (WebP) or thumbnail, if it has a frame.
    pub fn frame_picture(&self, id: i64, thumb: bool) -> Result<Option<Vec<u8>>> {
        Ok(self.store.frame_picture(id, thumb)?)
    }

    fn remove_items(&mut self, ids: &[i64]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let removed = self.store.write(|w| {
            let mut n = 0;
            for id in ids {
                n += w.remove(*id)? as usize;
            }
            Ok(n)
        })?;
        self.index.sync(&self.store)?;
        self.index.compact()?;
        self.store.checkpoint()?;
        // The saved vector index holds the removed vectors: it goes whole, and is saved again.
        VectorIndex::forget_saved(&self.dir.join(VECTOR_DIR))?;
        Ok(removed)
    }

    /// Writes prepared items (evaluation corpora, tests) in one transaction and indexes their
    /// keywords; [`Engram::embed_pending`] adds their vectors.
    pub fn add_items(&mut self, items: &[NewItem]) -> Result<()> {
        let mut indexing = self.index.batch(&self.store)?;
        self.write_indexed(items, &mut indexing)?;
        indexing.commit(&self.store)?;
        Ok(())
    }

    /// Writes items in one transaction, handing each new text to the index as it is sealed.
    fn write_indexed(&mut self, items: &[NewItem], indexing: &mut IndexBatch) -> Result<Vec<PutOutcome>> {
        Ok(self.store.write(|w| {
            items
                .iter()
                .map(|item| {
                    let put = w.put_item(item)?;
                    indexing.put(&put, item);
                    Ok(put.outcome)
                })
                .collect()
        })?)
    }

    /// Searches. Hybrid mode without an embedder falls back to keywords (see
    /// [`Engram::embedder`] for why it is missing); semantic mode without one is an error.
    pub fn search(&self, req: &SearchRequest) -> Result<Matches> {
        self.refresh()?;
        let embedder = match req.mode {
            Mode::Keyword => None,
            Mode::Hybrid => self.embedder().ok(),
            Mode::Semantic => Some(self.embedder()?),
        };
        let vectors = match &embedder {
            Some(e) => Some(self.vector_index(e.name(), false)?),
            None => None,
        };
        let semantic = match (&embedder, &vectors) {
            (Some(e), Some(v)) => Some(query::Semantic {
                embedder: e,
                vectors: v,
                weight: self.config.search.semantic_weight,
                min_similarity: self.config.search.min_similarity,
            }),
            _ => None,
        };
        Ok(query::search(&self.store, &self.index, semantic.as_ref(), req)?)
    }

    /// Catches up with writes made by another process (the daemon) while this one stays open,
    /// as `engram serve` and `engram mcp` do: one clear counter read when nothing changed.
    /// (The vectors catch up on their own, in [`Engram::vector_index`].)
    fn refresh(&self) -> Result<()> {
        let g = self.store.generation()?;
        if g != self.seen.get() {
            self.index.reload()?;
            // The writer commits the index just after the store; until it has, look again next time.
            if self.index.generation()? >= g {
                self.seen.set(g);
            }
        }
        Ok(())
    }

    /// The vector index of `model`, up to date with the store. `save`: the caller writes (a
    /// search never does, so no answer waits for a save).
    fn vector_index(&self, model: &str, save: bool) -> Result<Arc<VectorIndex>> {
        // Read before the vectors are, so a write landing meanwhile is caught next time.
        let stamp = (self.store.generation()?, self.store.vector_writes()?);
        // Another handle's search keeps its copy while this one is refreshed (make_mut).
        let mut slot = self.vectors.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.dir.join(VECTOR_DIR);
        let v = match slot.as_mut() {
            Some(v) if v.model == model => {
                if v.stamp != stamp {
                    Arc::make_mut(&mut v.index).catch_up(&dir, &self.store, model)?;
                    v.stamp = stamp;
                }
                v
            }
            _ => {
                let index = VectorIndex::open(&dir, self.store.sealer(), &self.store, model, self.config.search.graph_from)?;
                let index = Arc::new(index);
                slot.insert(LoadedVectors { model: model.to_string(), stamp, index })
            }
        };
        // Saved once it has grown by a tenth, so the next process need not open every vector or
        // build the graph again; a failed save loses nothing (the store is read instead).
        if save && v.index.worth_saving() {
            let _ = Arc::make_mut(&mut v.index).save(&dir, self.store.sealer(), model);
        }
        Ok(v.index.clone())
    }

    /// Ends the extraction worker, if one runs (a long-running process between batches of
    /// files should not hold a reader's memory); the next file starts a fresh one.
    pub fn release_worker(&mut self) {
        self.worker.get_mut().release();
    }

    /// Frees the language model (a long-running process that answers a question now and then
    /// should not hold it); the next question loads it again.
    pub fn unload_generator(&mut self) {
        self.generator.take();
    }

    /// The language model, loaded on first use; `on_convert` hears of a one-time conversion.
    pub fn generator(&self, on_convert: &dyn Fn(&Path)) -> std::result::Result<&RefCell<Generator>, LlmError> {
        let loaded = self.generator.get_or_init(|| {
            Generator::load(&self.config.models.generator_path(), on_convert)
                .map(RefCell::new)
                .map_err(|e| e.to_string())
        });
        match loaded {
            Ok(g) => Ok(g),
            Err(msg) => Err(LlmError::Unavailable(msg.clone())),
        }
    }

    /// Answers `req.question` from the memories hybrid search finds for it, streaming the
    /// model's words to `on_text` as they come. The answer cites only the passages it was given.
    /// The language model is loaded only when an answer was found and the style needs it;
    /// `on_convert` hears of its one-time conversion.
    ///
    /// A stretch of time the question names ("What did I read yesterday?", "上周的会议") limits
    /// the memories to those made then, unless `since`, `until` or `any_time` is given; when
    /// nothing made then answers, every memory is searched and the answer says so.
    pub fn ask(&self, req: &AskRequest, on_convert: &dyn Fn(&Path), on_text: &mut dyn FnMut(&str)) -> Result<Answer> {
        let spoken = match (req.since, req.until, req.any_time) {
            (None, None, false) => query::time::spoken_window(&req.question, chrono::Local::now()),
            _ => None,
        };
        let Some(spoken) = spoken else {
            return self.answer_from(req, &req.question, (req.since, req.until), on_convert, on_text);
        };
        let query = spoken.strip(&req.question);
        let mut when = answer::When {
            phrase: req.question[spoken.start..spoken.end].to_string(),
            since: spoken.since,
            until: spoken.until,
            applied: true,
        };
        let mut answer = self.answer_from(req, &query, (Some(spoken.since), Some(spoken.until)), on_convert, on_text)?;
        if !answer.found {
            when.applied = false;
            answer = self.answer_from(req, &query, (None, None), on_convert, on_text)?;
        }
        answer.when = Some(when);
        Ok(answer)
    }

    /// Answers `req.question`, retrieving with `query` (the question, less any time phrase)
    /// within `window`.
    fn answer_from(
        &self,
        req: &AskRequest,
        query: &str,
        window: (Option<i64>, Option<i64>),
        on_convert: &dyn Fn(&Path),
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Answer> {
        let mut search = SearchRequest::new(query.to_string(), req.passages.max(1));
        (search.since, search.until) = window;
        search.kind = req.kind;
        search.app = req.app.clone();
        search.snippets = false;
        let found = self.search(&search)?;
        if !found.damaged.is_empty() {
            return Err(Error::Tamper(format!(
                "{} failed the integrity check; the data was modified or damaged on disk",
                found.damaged.join(", ")
            )));
        }
        let mut passages = Vec::new();
        for r in found.results {
            let Some(chunk) = self.store.chunk(r.chunk_id)? else { continue };
            passages.push(Source {
                n: passages.len() + 1,
                id: r.id,
                kind: r.kind,
                source: r.source,
                title: r.title,
                time: r.time,
                text: chunk.text,
            });
        }
        let terms = Terms::of(query);
        let weights = self.index.idf(&terms)?;
        let unseen = self.index.doc_freqs(&terms)?.into_iter().map(|df| df == 0).collect();
        let embedder = self.embedder().ok();
        let generator = || self.generator(on_convert).map(|g| g.borrow_mut());
        let inputs = answer::Inputs {
            question: &req.question,
            passages,
            terms: Terms { terms, weights, unseen },
            embedder: embedder.as_deref(),
            generator: &generator,
            style: req.style,
            max_tokens: req.max_tokens,
        };
        Ok(answer::answer(inputs, on_text)?)
    }

    /// Memories made in `[since, until)`, newest first, at most `limit`: of one kind, and of
    /// one app (part of its name, any case) when given.
    pub fn timeline(&self, since: Option<i64>, until: Option<i64>, kind: Option<Kind>, app: Option<&str>, limit: usize) -> Result<Vec<Item>> {
        let (since, until) = (since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
        let Some(app) = app else {
            return Ok(self.store.items_between(kind, since, until, limit)?);
        };
        // The app is sealed, so it is matched after opening; only screen memories have one.
        let kind = match kind {
            None | Some(Kind::Screen) => Kind::Screen,
            Some(_) => return Ok(Vec::new()),
        };
        let items = self.store.items_between(Some(kind), since, until, usize::MAX)?;
        Ok(items.into_iter().filter(|i| i.meta.app_has(app)).take(limit).collect())
    }

    /// The captions these contents have, by content id.
    pub fn captions(&self, content_ids: &[i64]) -> Result<HashMap<i64, String>> {
        Ok(self.store.captions_of(content_ids)?)
    }

    /// An item and its whole text.
    pub fn show(&self, id: i64) -> Result<(Item, String)> {
        let item = match self.store.item(id) {
            Err(StoreError::NoSuchItem(id)) => return Err(Error::NotFound(id)),
            other => other?,
        };
        let text = self.store.text_of(item.content_id)?;
        Ok((item, text))
    }

    /// Deletes memories from the store and the index, leaving no copy in the WAL or old
    /// index segments. Returns how many items were removed.
    pub fn forget(&mut self, what: &Forget) -> Result<usize> {
        let ids: Vec<i64> = match what {
            Forget::Id(id) => vec![*id],
            Forget::Before(t) => self.store.item_ids_before(*t)?,
            Forget::Path(p) => {
                let p = files::absolute(p);
                let (records, mut stale) = self.store.remembered_skips_or_damaged()?;
                stale.extend(records.into_iter().filter(|r| r.path.starts_with(&p)).map(|r| r.id));
                if self.store.forget_skips(&stale)? > 0 {
                    self.store.checkpoint()?;
                }
                self.store
                    .all_items()?
                    .into_iter()
                    .filter(|i| i.path.as_deref().is_some_and(|ip| ip.starts_with(&p)))
                    .map(|i| i.id)
                    .collect()
            }
            Forget::App(app) => {
                let app = app.to_lowercase();
                self.store
                    .all_items()?
                    .into_iter()
                    .filter(|i| i.kind == Kind::Screen && i.meta.app.as_deref().is_some_and(|a| a.to_lowercase() == app))
                    .map(|i| i.id)
                    .collect()
            }
        };
        self.remove_items(&ids)
    }

    /// Unlocks the store and rebuilds the keyword index from it, discarding the old index
    /// files first, so a damaged or tampered index cannot stop the repair.
    /// Refused while the daemon runs: it holds the index open and writes to it.
    pub fn reindex(dir: &Path, passphrase: &[u8], config: Config) -> Result<(Engram, usize)> {
        refuse_while_daemon_runs(dir, "reindex")?;
        if !vault::exists(dir) {
            return Err(VaultError::NotInitialised(dir.display().to_string()).into());
        }
        let key = vault::unlock(dir, passphrase)?;
        let index_dir = dir.join(INDEX_DIR);
        if index_dir.exists() {
            std::fs::remove_dir_all(&index_dir)
                .map_err(|e| Error::Other(format!("could not remove the old index {}: {e}", index_dir.display())))?;
        }
        let engram = Self::open_with_key(dir, &key, config)?;
        let n = engram.index.rebuild(&engram.store)?.reindexed_contents;
        Ok((engram, n))
    }

    pub fn status(&self) -> Result<Status> {
        let embedder = embed::model_name(&self.config.models.embedder_dir());
        let (frame_bytes, frames) = self.store.frame_usage()?;
        Ok(Status {
            data_dir: self.dir.display().to_string(),
            store: self.store.stats()?,
            indexed_chunks: self.index.num_chunks(),
            index_generation: self.index.generation()?,
            database_bytes: [DB_FILE, "engram.db-wal", "engram.db-shm"]
                .iter()
                .filter_map(|f| std::fs::metadata(self.dir.join(f)).ok())
                .map(|m| m.len())
                .sum(),
            index_bytes: dir_size(&self.dir.join(INDEX_DIR)),
            frame_bytes,
            frames,
            chunks_without_vector: self.store.count_without_vector(&embedder)?,
            texts_without_caption: self.store.count_without_caption(&self.config.models.generator)?,
            skipped_files: self
                .store
                .remembered_skips()?
                .into_iter()
                .map(|r| RememberedSkip {
                    path: r.path.display().to_string(),
                    reason: r.skip.reason().to_string(),
                    detail: r.skip.detail(),
                })
                .collect(),
            embedder,
            embedder_arithmetic: embed::arithmetic().to_string(),
            daemon: None,
            paused_until: None,
        })
    }
}

/// What [`Engram::prepare_file`] made of a file.
enum Prepared {
    Item(Box<NewItem>),
    /// The store has it as it is.
    Unchanged,
    /// Not indexed; `as_before` when it was not read, having failed before unchanged.
    Skipped { skip: Skip, as_before: bool },
}

impl AddReport {
    fn skip(&mut self, path: &Path, why: Skip, as_before: bool) {
        *self.skipped.entry(why.reason()).or_default() += 1;
        if as_before {
            self.skipped_as_before += 1;
        } else if why.is_worker_failure() {
            *self.worker_failures.entry(why.reason()).or_default() += 1;
        }
        self.skipped_files.push(SkippedFile {
            path: path.display().to_string(),
            reason: why.reason(),
            detail: why.detail(),
            remembered: why.is_remembered(),
            as_before,
        });
    }
}

/// Fails with a usage error (exit 2) when the daemon is running on `dir`: for commands that
/// replace what it holds open.
pub fn refuse_while_daemon_runs(dir: &Path, command: &str) -> Result<()> {
    match daemon::running(dir) {
        Some(d) => Err(Error::Usage(format!(
            "the engram daemon is running on {} (pid {}); stop it first, then run `engram {command}` (it would remove the index the daemon is writing)",
            dir.display(),
            d.pid
        ))),
        None => Ok(()),
    }
}

/// A file memory's title: the document's own title, if any, and the file's name, through the
/// same redaction as its text and as window titles (a subject line can hold a card number).
fn file_title(doc_title: Option<String>, path: &Path) -> Option<String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let title = match (doc_title, name) {
        (Some(t), Some(n)) => Some(format!("{t} · {n}")),
        (t, n) => t.or(n),
    };
    title.map(|t| capture::privacy::redact(&t).text)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_titles_are_redacted_like_window_titles() {
        let t = file_title(Some("Card 4111 1111 1111 1111 charged".into()), Path::new("/mail/order.eml")).unwrap();
        assert!(t.contains("[redacted card number]") && !t.contains("1111"), "{t}");
        assert!(t.ends_with("· order.eml"), "{t}");
        let named = file_title(None, Path::new("/notes/token ghp_0123456789abcdefABCDEF0123456789abcd.txt")).unwrap();
        assert!(!named.contains("ghp_0123456789"), "{named}");
        assert_eq!(file_title(None, Path::new("/notes/plain.txt")).as_deref(), Some("plain.txt"));
    }
}
