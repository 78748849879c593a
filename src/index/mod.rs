//! The keyword index: tantivy over sealed files, CJK-aware, kept in step with the store.
//!
//! One tantivy document per chunk: the chunk's text (also as single CJK characters), the
//! titles of its items (on the first chunk only), and the chunk and content ids. Nothing is
//! stored in tantivy but ids; text for snippets comes from the store. Each commit records the
//! store generation it reflects; on open, [`KeywordIndex::sync`] replays what changed since, so
//! a crash between the store's commit and the index's commit heals by itself.

pub mod analyze;
pub mod graph;
mod sealed_dir;
pub mod vector;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::crypto::Sealer;
use crate::store::{chunk_id, NewItem, Put, Store, StoreError};
pub use sealed_dir::{verify_file, SealedDirectory};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("keyword index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("the keyword index file {0} failed its integrity check; run `engram reindex` to rebuild it from the store")]
    Tamper(String),
    #[error("another engram process is writing the index; try again when it has finished")]
    Busy,
    #[error("could not open the index folder {path}: {why}")]
    Open { path: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, IndexError>;

/// How much the title field counts next to the text.
const TITLE_BOOST: f32 = 0.5;
/// Extra weight for query words found next to each other, as typed.
const PHRASE_BOOST: f32 = 0.0;
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// How long a writer waits for another process's index writer before giving up.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A keyword query, already analysed into index terms.
#[derive(Debug, Clone, Default)]
pub struct KeywordQuery {
    /// Runs of terms as typed; each term is optional, adjacent ones score a phrase bonus.
    pub runs: Vec<Vec<String>>,
    /// Quoted phrases: each must match.
    pub phrases: Vec<Vec<String>>,
    /// Terms no result may contain.
    pub excluded: Vec<String>,
    /// The CJK characters of the plain words, each optional, scored beside their bigrams.
    pub chars: Vec<String>,
}

impl KeywordQuery {
    pub fn is_empty(&self) -> bool {
        self.runs.iter().all(Vec::is_empty) && self.phrases.iter().all(Vec::is_empty)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub chunk_id: i64,
    pub content_id: i64,
    pub score: f32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SyncReport {
    pub reindexed_contents: usize,
    pub removed_contents: usize,
}

pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    dir: SealedDirectory,
    chunk: Field,
    content: Field,
    text: Field,
    title: Field,
    chars: Field,
}

impl KeywordIndex {
    pub fn open(root: &Path, sealer: Arc<Sealer>) -> Result<KeywordIndex> {
        let dir = SealedDirectory::open(root, sealer.clone())
            .map_err(|e| IndexError::Open { path: root.display().to_string(), why: e.to_string() })?;
        let (dir, index) = match Index::open_or_create(dir.clone(), schema()) {
            Ok(index) => (dir, index),
            // An index written by an older engram, without a field this one needs: it is only
            // a derived copy of the store, so start it afresh and let `sync` refill it.
            Err(tantivy::TantivyError::SchemaError(_)) => {
                drop(dir);
                let fresh = || -> std::io::Result<SealedDirectory> {
                    std::fs::remove_dir_all(root)?;
                    SealedDirectory::open(root, sealer.clone())
                };
                let dir = fresh().map_err(|e| IndexError::Open { path: root.display().to_string(), why: e.to_string() })?;
                let index = Index::create(dir.clone(), schema(), Default::default()).map_err(|e| tamper_or(&dir, e))?;
                (dir, index)
            }
            Err(e) => return Err(tamper_or(&dir, e)),
        };
        index.tokenizers().register(analyze::TOKENIZER_NAME, analyze::EngramTokenizer::default());
        index.tokenizers().register(analyze::CHARS_TOKENIZER_NAME, analyze::EngramTokenizer::chars());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| tamper_or(&dir, e))?;
        let s = index.schema();
        let field = |name| s.get_field(name).expect("schema field");
        Ok(KeywordIndex {
            chunk: field("chunk"),
            content: field("content"),
            text: field("text"),
            title: field("title"),
            chars: field("cjk_chars"),
            index,
            reader,
            dir,
        })
    }

    /// The store generation this index reflects.
    pub fn generation(&self) -> Result<i64> {
        Ok(self.stamp()?.0)
    }

    /// The store generation and count of removed contents this index reflects (the count
    /// absent from an index written before engram kept it).
    fn stamp(&self) -> Result<(i64, Option<i64>)> {
        let metas = self.index.load_metas().map_err(|e| self.tamper_or(e))?;
        let payload = metas.payload.and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok());
        let get = |key: &str| payload.as_ref().and_then(|v| v.get(key).and_then(|g| g.as_i64()));
        Ok((get("generation").unwrap_or(0), get("removals")))
    }

    /// Brings the index in step with the store; cheap when nothing changed.
    pub fn sync(&self, store: &Store) -> Result<SyncReport> {
        let (from, seen_removals) = self.stamp()?;
        if from == store.generation()? {
            return Ok(SyncReport::default());
        }
        let writer = self.writer()?;
        let (report, stamp) = self.catch_up(&writer, store, from, seen_removals, &HashSet::new())?;
        self.commit(writer, stamp)?;
        Ok(report)
    }

    /// Opens a batch: new contents are handed to it as the store writes them (see
    /// [`IndexBatch`]). Holds the index's writer until [`IndexBatch::commit`].
    pub fn batch(self: &Arc<Self>, store: &Store) -> Result<IndexBatch> {
        let writer = self.writer()?;
        let (from, seen_removals) = self.stamp()?;
        let (from, removals) = if from == store.generation()? {
            (from, seen_removals)
        } else {
            let (_, (target, removals)) = self.catch_up(&writer, store, from, seen_removals, &HashSet::new())?;
            (target, Some(removals))
        };
        Ok(IndexBatch {
            index: self.clone(),
            writer,
            from,
            removals,
            writes: HashSet::new(),
            handed: HashSet::new(),
            failed: None,
            opened: std::time::Instant::now(),
        })
    }

    /// Adds to `writer` every content changed in the store since generation `from` but those
    /// `handed` over already, and drops removed ones; returns the stamp to commit with.
    fn catch_up(
        &self,
        writer: &IndexWriter,
        store: &Store,
        mut from: i64,
        seen_removals: Option<i64>,
        handed: &HashSet<i64>,
    ) -> Result<(SyncReport, (i64, i64))> {
        let target = store.generation()?;
        // Read before the store is: a removal landing meanwhile moves it past what is recorded.
        let removals = store.content_removals()?;
        if from > target {
            // The store is older than the index (restored from a backup): start over.
            writer.delete_all_documents()?;
            from = 0;
        }
        let mut report = SyncReport::default();
        for content_id in store.contents_changed_since(from)? {
            if handed.contains(&content_id) {
                continue;
            }
            writer.delete_term(Term::from_field_u64(self.content, content_id as u64));
            self.add_content(writer, store, content_id)?;
            report.reindexed_contents += 1;
        }
        // Every content in the index against every one in the store: only when one was removed.
        if seen_removals != Some(removals) {
            let alive = store.content_ids()?;
            for content_id in self.content_ids()? {
                if !alive.contains(&content_id) {
                    writer.delete_term(Term::from_field_u64(self.content, content_id as u64));
                    report.removed_contents += 1;
                }
            }
        }
        Ok((report, (target, removals)))
    }

    /// Drops everything and indexes the whole store again.
    pub fn rebuild(&self, store: &Store) -> Result<SyncReport> {
        let writer = self.writer()?;
        writer.delete_all_documents()?;
        let (generation, removals) = (store.generation()?, store.content_removals()?);
        let mut report = SyncReport::default();
        for content_id in store.contents_changed_since(-1)? {
            self.add_content(&writer, store, content_id)?;
            report.reindexed_contents += 1;
        }
        self.commit(writer, (generation, removals))?;
        self.compact()?;
        Ok(report)
    }

    /// Merges all segments into one and removes the old files, so deleted documents' terms
    /// are gone from the index files, not just marked deleted.
    pub fn compact(&self) -> Result<()> {
        let mut writer = self.writer()?;
        let ids = self.index.searchable_segment_ids()?;
        if !ids.is_empty() {
            writer.merge(&ids).wait()?;
        }
        writer.garbage_collect_files().wait()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        Ok(())
    }

    pub fn search(&self, query: &KeywordQuery, limit: usize) -> Result<Vec<Hit>> {
        let Some(q) = self.build_query(query) else { return Ok(Vec::new()) };
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score())
            .map_err(|e| self.tamper_or(e))?;
        let mut hits = Vec::with_capacity(top.len());
        let mut columns = HashMap::new();
        for (score, addr) in top {
            let (chunk_col, content_col) = match columns.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let ff = searcher.segment_reader(addr.segment_ord).fast_fields();
                    v.insert((ff.u64("chunk")?, ff.u64("content")?))
                }
            };
            if let (Some(chunk), Some(content)) = (chunk_col.first(addr.doc_id), content_col.first(addr.doc_id)) {
                hits.push(Hit { chunk_id: chunk as i64, content_id: content as i64, score });
            }
        }
        Ok(hits)
    }

    /// BM25's inverse document frequency of each analysed term over the indexed chunks: how
    /// much finding it says about a chunk.
    pub fn idf(&self, terms: &[String]) -> Result<Vec<f32>> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f32;
        terms
            .iter()
            .map(|t| {
                let df = searcher.doc_freq(&Term::from_field_text(self.text, t)).map_err(|e| self.tamper_or(e))? as f32;
                Ok((1.0 + (n - df + 0.5) / (df + 0.5)).ln())
            })
            .collect()
    }

    /// How many indexed chunks hold each term.
    pub fn doc_freqs(&self, terms: &[String]) -> Result<Vec<u64>> {
        let searcher = self.reader.searcher();
        terms.iter().map(|t| searcher.doc_freq(&Term::from_field_text(self.text, t)).map_err(|e| self.tamper_or(e))).collect()
    }

    /// Sees what another process (the daemon) committed since this reader was opened.
    pub fn reload(&self) -> Result<()> {
        self.reader.reload()?;
        Ok(())
    }

    pub fn num_chunks(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn build_query(&self, q: &KeywordQuery) -> Option<Box<dyn Query>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for run in &q.runs {
            for term in run {
                clauses.push((Occur::Should, self.term_query(term)));
            }
            for pair in run.windows(2) {
                let phrase = PhraseQuery::new(pair.iter().map(|t| Term::from_field_text(self.text, t)).collect());
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(phrase), PHRASE_BOOST))));
            }
        }
        for c in &q.chars {
            clauses.push((Occur::Should, self.char_query(c)));
        }
        for phrase in q.phrases.iter().filter(|p| !p.is_empty()) {
            let must: Box<dyn Query> = if phrase.len() == 1 {
                self.term_query(&phrase[0])
            } else {
                Box::new(PhraseQuery::new(phrase.iter().map(|t| Term::from_field_text(self.text, t)).collect()))
            };
            clauses.push((Occur::Must, must));
        }
        if clauses.is_empty() {
            return None;
        }
        for term in &q.excluded {
            let field = if is_cjk_char(term) { self.chars } else { self.text };
            clauses.push((Occur::MustNot, Box::new(TermQuery::new(Term::from_field_text(field, term), IndexRecordOption::Basic))));
            clauses.push((Occur::MustNot, Box::new(TermQuery::new(Term::from_field_text(self.title, term), IndexRecordOption::Basic))));
        }
        Some(Box::new(BooleanQuery::new(clauses)))
    }

    /// A term in the text or (weighted less) the title. A lone CJK character is looked up
    /// among the single characters, so it also finds the words it is part of.
    fn term_query(&self, term: &str) -> Box<dyn Query> {
        if is_cjk_char(term) {
            return self.char_query(term);
        }
        let text = TermQuery::new(Term::from_field_text(self.text, term), IndexRecordOption::WithFreqs);
        let title = TermQuery::new(Term::from_field_text(self.title, term), IndexRecordOption::WithFreqs);
        Box::new(BooleanQuery::new(vec![
            (Occur::Should, Box::new(text) as Box<dyn Query>),
            (Occur::Should, Box::new(BoostQuery::new(Box::new(title), TITLE_BOOST))),
        ]))
    }

    fn char_query(&self, c: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_field_text(self.chars, c), IndexRecordOption::WithFreqs))
    }

    fn add_content(&self, writer: &IndexWriter, store: &Store, content_id: i64) -> Result<()> {
        let titles = store.titles_of(content_id)?.join("\n");
        for chunk in store.chunks_of(content_id)? {
            writer.add_document(self.document(chunk.id, content_id, chunk.seq == 0, &chunk.text, &titles))?;
        }
        Ok(())
    }

    /// A chunk's document; the titles of the content's items go with its first chunk.
    fn document(&self, chunk_id: i64, content_id: i64, first: bool, text: &str, titles: &str) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.chunk, chunk_id as u64);
        doc.add_u64(self.content, content_id as u64);
        doc.add_text(self.text, text);
        doc.add_text(self.chars, text);
        if first && !titles.is_empty() {
            doc.add_text(self.title, titles);
        }
        doc
    }

    /// Content ids of every live document in the index.
    fn content_ids(&self) -> Result<HashSet<i64>> {
        let searcher = self.reader.searcher();
        let mut ids = HashSet::new();
        for segment in searcher.segment_readers() {
            let col = segment.fast_fields().u64("content")?;
            for doc in segment.doc_ids_alive() {
                if let Some(v) = col.first(doc) {
                    ids.insert(v as i64);
                }
            }
        }
        Ok(ids)
    }

    /// The index writer, waiting up to [`WRITER_WAIT`] while another process holds it: its
    /// writes are short batches, and failing at once made `engram add` beside the daemon fail.
    fn writer(&self) -> Result<IndexWriter> {
        let deadline = std::time::Instant::now() + WRITER_WAIT;
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            match self.index.writer_with_num_threads(1, WRITER_MEMORY) {
                Ok(w) => return Ok(w),
                Err(tantivy::TantivyError::LockFailure(..)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(500));
                }
                Err(tantivy::TantivyError::LockFailure(..)) => return Err(IndexError::Busy),
                Err(e) => return Err(self.tamper_or(e)),
            }
        }
    }

    /// Commits with the store generation and removal count the index now reflects.
    fn commit(&self, mut writer: IndexWriter, (generation, removals): (i64, i64)) -> Result<()> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::json!({ "generation": generation, "removals": removals }).to_string());
        prepared.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        Ok(())
    }

    fn tamper_or(&self, e: tantivy::TantivyError) -> IndexError {
        tamper_or(&self.dir, e)
    }
}

/// New contents handed to the index as the store writes them, committed together: a bulk add
/// indexes the text it has in hand while the store seals it, instead of reading it back.
///
/// Anything else changed meanwhile (a content written again with another title, another
/// process's writes) is read back from the store at [`IndexBatch::commit`]. Dropped without a
/// commit, nothing is kept and the next [`KeywordIndex::sync`] catches up.
pub struct IndexBatch {
    index: Arc<KeywordIndex>,
    writer: IndexWriter,
    /// The store generation and removal count the index reflects before this batch's writes.
    from: i64,
    removals: Option<i64>,
    /// Generations of the store writes handed to this batch.
    writes: HashSet<i64>,
    /// Contents whose documents are in the writer, as written.
    handed: HashSet<i64>,
    /// Why the writer took no more (its indexing thread failed); reported at commit.
    failed: Option<IndexError>,
    opened: std::time::Instant,
}

impl IndexBatch {
    /// Takes one item the store has just put (inside the store's write).
    pub fn put(&mut self, put: &Put, item: &NewItem) {
        self.writes.insert(put.generation);
        if !put.created {
            // Another item holds the same text (its titles change), or nothing changed.
            self.handed.remove(&put.content);
            return;
        }
        if self.failed.is_some() {
            return;
        }
        let titles = item.title.as_deref().unwrap_or("");
        for (seq, span) in item.chunks.iter().enumerate() {
            let doc = self.index.document(chunk_id(put.content, seq), put.content, seq == 0, &item.text[span.start..span.end], titles);
            if let Err(e) = self.writer.add_document(doc) {
                self.failed = Some(e.into());
                return;
            }
        }
        self.handed.insert(put.content);
    }

    /// How long the batch has held the index's writer.
    pub fn age(&self) -> std::time::Duration {
        self.opened.elapsed()
    }

    /// Reads back what was not handed over, then commits.
    pub fn commit(self, store: &Store) -> Result<SyncReport> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        // Only this batch wrote since `from`: what it was handed is still what the store holds.
        let target = store.generation()?;
        let alone = self.writes.len() as i64 == target - self.from && self.writes.iter().all(|g| *g > self.from && *g <= target);
        let handed = if alone { self.handed } else { HashSet::new() };
        let (report, stamp) = self.index.catch_up(&self.writer, store, self.from, self.removals, &handed)?;
        self.index.commit(self.writer, stamp)?;
        Ok(report)
    }
}

fn tamper_or(dir: &SealedDirectory, e: tantivy::TantivyError) -> IndexError {
    match dir.tampered() {
        Some(name) => IndexError::Tamper(name),
        None => IndexError::Tantivy(e),
    }
}

fn schema() -> Schema {
    let mut b = Schema::builder();
    b.add_u64_field("chunk", INDEXED | FAST);
    b.add_u64_field("content", INDEXED | FAST);
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analyze::TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    b.add_text_field("text", text.clone());
    b.add_text_field("title", text);
    let chars = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analyze::CHARS_TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    b.add_text_field("cjk_chars", chars);
    b.build()
}

fn is_cjk_char(term: &str) -> bool {
    let mut chars = term.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if crate::text::is_cjk(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;
    use crate::query::parse::parse_query;
    use crate::store::{ItemMeta, Kind, NewItem, Span};

    /// A sealed store holding one note of `text`, in `dir`.
    fn store_with(dir: &Path, text: &str) -> (Arc<Sealer>, Store) {
        let sealer = Arc::new(Sealer::new(&DataKey::generate().unwrap()));
        let mut store = Store::open(&dir.join("db"), sealer.clone()).unwrap();
        store.write(|w| w.put(&note(text))).unwrap();
        (sealer, store)
    }

    fn note(text: &str) -> NewItem {
        NewItem {
            kind: Kind::File,
            source: "/notes/a.txt".into(),
            title: None,
            meta: ItemMeta::default(),
            time: 100,
            mtime: 100,
            size: text.len() as i64,
            text: text.into(),
            chunks: vec![Span { start: 0, end: text.len() }],
        }
    }

    fn chunks(index: &KeywordIndex, query: &str) -> usize {
        index.search(&parse_query(query), 10).unwrap().len()
    }

    #[test]
    fn a_writer_waits_for_another_processs_writer_to_finish() {
        let dir = tempfile::tempdir().unwrap();
        let (sealer, store) = store_with(dir.path(), "the kea took a windscreen wiper");
        let other = KeywordIndex::open(&dir.path().join("index"), sealer.clone()).unwrap();
        let index = KeywordIndex::open(&dir.path().join("index"), sealer).unwrap();
        let held = other.writer().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        index.sync(&store).unwrap();
        release.join().unwrap();
        assert_eq!(chunks(&index, "kea"), 1);
    }

    #[test]
    fn a_removed_content_leaves_the_index_also_when_the_index_predates_the_removal_count() {
        let dir = tempfile::tempdir().unwrap();
        let (sealer, mut store) = store_with(dir.path(), "the kea took a windscreen wiper");
        let index = KeywordIndex::open(&dir.path().join("index"), sealer).unwrap();
        index.sync(&store).unwrap();
        // The note rewritten: its old content is removed from the store, and then the index.
        store.write(|w| w.put(&note("a tui sang at dawn"))).unwrap();
        assert_eq!(store.content_removals().unwrap(), 1);
        assert_eq!(index.sync(&store).unwrap().removed_contents, 1);
        assert_eq!((chunks(&index, "kea"), chunks(&index, "tui")), (0, 1));
        // An index an older engram wrote records no count: it looks once.
        let stale = store.write(|w| w.put(&NewItem { source: "/notes/b.txt".into(), ..note("a kaka called") })).unwrap().0;
        index.sync(&store).unwrap();
        let mut writer = index.writer().unwrap();
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(&serde_json::json!({ "generation": 1 }).to_string());
        prepared.commit().unwrap();
        drop(writer);
        store.write(|w| w.remove(stale)).unwrap();
        store.write(|w| w.put(&NewItem { source: "/notes/c.txt".into(), ..note("a weka ran") })).unwrap();
        index.sync(&store).unwrap();
        assert_eq!((chunks(&index, "kaka"), chunks(&index, "weka")), (0, 1));
    }

    /// Writes `items` through a batch, as a bulk add does.
    fn put_all(store: &mut Store, batch: &mut IndexBatch, items: &[NewItem]) {
        store
            .write(|w| {
                items.iter().try_for_each(|item| {
                    batch.put(&w.put_item(item)?, item);
                    Ok(())
                })
            })
            .unwrap();
    }

    fn titled(source: &str, text: &str, title: &str) -> NewItem {
        NewItem { source: source.into(), title: Some(title.into()), ..note(text) }
    }

    #[test]
    fn a_batch_indexes_what_it_was_handed_and_reads_back_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (sealer, mut store) = store_with(dir.path(), "the kea took a windscreen wiper");
        let index = Arc::new(KeywordIndex::open(&dir.path().join("index"), sealer).unwrap());
        // The batch first catches up with the note written before it.
        let mut batch = index.batch(&store).unwrap();
        // Two items with one text: the second's title joins the first's.
        put_all(&mut store, &mut batch, &[titled("/b.txt", "a tui sang at dawn", "birds"), titled("/c.txt", "a tui sang at dawn", "chorus")]);
        put_all(&mut store, &mut batch, &[titled("/d.txt", "the weka ran off", "flightless")]);
        batch.commit(&store).unwrap();
        for word in ["kea", "tui", "birds", "chorus", "weka", "flightless"] {
            assert_eq!(chunks(&index, word), 1, "{word}");
        }
        assert_eq!(index.generation().unwrap(), store.generation().unwrap());
        assert_eq!(index.sync(&store).unwrap().reindexed_contents, 0);
        // Another process writes between the batch's write and its commit: the same text under
        // a new title must not be lost behind what the batch was handed.
        let mut batch = index.batch(&store).unwrap();
        put_all(&mut store, &mut batch, &[titled("/e.txt", "a kaka called twice", "parrots")]);
        let mut other = store.reopen().unwrap();
        other.write(|w| w.put(&titled("/f.txt", "a kaka called twice", "noisy"))).unwrap();
        batch.commit(&store).unwrap();
        assert_eq!((chunks(&index, "parrots"), chunks(&index, "noisy"), chunks(&index, "kaka")), (1, 1, 1));
        // Dropped uncommitted, a batch keeps nothing; a sync indexes what the store holds.
        let mut batch = index.batch(&store).unwrap();
        put_all(&mut store, &mut batch, &[titled("/g.txt", "a takahe grazed", "rare")]);
        drop(batch);
        assert_eq!(chunks(&index, "takahe"), 0);
        index.sync(&store).unwrap();
        assert_eq!(chunks(&index, "takahe"), 1);
    }

    #[test]
    fn chinese_matches_by_character_as_well_as_by_bigram() {
        let dir = tempfile::tempdir().unwrap();
        let (sealer, store) = store_with(dir.path(), "黑豹队的防守只丢了 308分");
        let index = KeywordIndex::open(&dir.path().join("index"), sealer).unwrap();
        index.sync(&store).unwrap();
        // 分 is a word of its own here, inside no indexed bigram of the query.
        assert_eq!(chunks(&index, "分"), 1);
        assert_eq!(chunks(&index, "防守"), 1);
        // No shared bigram, but shared characters: found.
        assert_eq!(chunks(&index, "黑队"), 1);
        assert_eq!(chunks(&index, "-分 防守"), 0);
        assert_eq!(chunks(&index, "进攻"), 0);
    }

    #[test]
    fn an_index_from_an_older_schema_is_rebuilt_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (sealer, store) = store_with(dir.path(), "租约到期 lease ends");
        let root = dir.path().join("index");
        {
            // The schema before CJK characters had a field of their own.
            let mut old = Schema::builder();
            old.add_u64_field("chunk", INDEXED | FAST);
            old.add_u64_field("content", INDEXED | FAST);
            old.add_text_field("text", tantivy::schema::TEXT);
            old.add_text_field("title", tantivy::schema::TEXT);
            let sealed = SealedDirectory::open(&root, sealer.clone()).unwrap();
            let index = Index::create(sealed, old.build(), Default::default()).unwrap();
            let mut writer: IndexWriter = index.writer_with_num_threads(1, WRITER_MEMORY).unwrap();
            let mut prepared = writer.prepare_commit().unwrap();
            prepared.set_payload(&serde_json::json!({ "generation": store.generation().unwrap() }).to_string());
            prepared.commit().unwrap();
        }
        let index = KeywordIndex::open(&root, sealer).unwrap();
        assert_eq!(index.generation().unwrap(), 0, "the old index is gone");
        index.sync(&store).unwrap();
        assert_eq!(chunks(&index, "租约"), 1);
        assert_eq!(chunks(&index, "lease"), 1);
    }
}
