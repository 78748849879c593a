//! The `engram` command: parses arguments, unlocks, calls the library, prints.
//!
//! Built twice: as `engram` (src/main.rs), which runs every command but the daemon, and as
//! `engram-daemon` (src/bin/engram-daemon/), which `engram daemon` becomes. Screen capture
//! and Tesseract are reached only from the daemon, so `engram search` beside a warm daemon
//! loads none of their libraries.

mod doctor;
mod eval;
mod mcp;
mod serve;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use engram::config::{self, Config};
use engram::query::snippet::render;
use engram::query::time::parse_time;
use engram::query::{Mode, SearchRequest};
use engram::store::Kind;
use engram::answer::{Answer, Method, Source, Style};
use engram::service::contract::{self, Entry, Filters as Parsed, Hit, Request, Response};
use engram::{AddEvent, AskRequest, Engram, Error, Forget, Preload};
use serde_json::json;
use zeroize::Zeroizing;

/// engram: find anything you saw or wrote on this computer, sealed on your own disk.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Where engram keeps its sealed store [default: $XDG_DATA_HOME/engram]
    #[arg(long, global = true, env = "ENGRAM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Settings file [default: $XDG_CONFIG_HOME/engram/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read the passphrase from this file (first line; only you may read it) instead of
    /// ENGRAM_PASSPHRASE or a prompt
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Run this shell command and read the passphrase from its output (first line), e.g.
    /// "secret-tool lookup app engram": the passphrase then stays in the login keyring
    #[arg(long, global = true, value_name = "CMD", conflicts_with = "passphrase_file")]
    passphrase_cmd: Option<String>,
    /// Print machine-readable JSON
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Which memories a search or a question looks at.
#[derive(clap::Args)]
struct Filters {
    /// Only memories from this time on: 2026-03-01, 2026-03-01T14:00, 3d, "2 weeks ago", yesterday
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only memories before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only this kind of memory
    #[arg(long, value_parser = ["file", "screen", "doc"])]
    kind: Option<String>,
    /// Only memories of this app (screen memories; matches part of the name, any case)
    #[arg(long)]
    app: Option<String>,
}

impl Filters {
    fn parse(self) -> Result<Parsed, Error> {
        Parsed::parse(self.since.as_deref(), self.until.as_deref(), self.kind.as_deref(), self.app.as_deref())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a new sealed store, protected by a passphrase; prints a recovery code once
    Init {
        /// Make no recovery code: then only the passphrase opens the store
        #[arg(long)]
        no_recovery_code: bool,
    },
    /// Index files and folders (re-adding unchanged files does no work)
    Add {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Search your memories
    Search {
        /// Words to find; "quoted phrase" must match, -word excludes
        #[arg(required = true, num_args = 1.., value_name = "QUERY")]
        query: Vec<String>,
        /// How many results [default: search.limit in the config, 10]
        #[arg(long, short = 'n')]
        limit: Option<usize>,
        #[command(flatten)]
        filters: Filters,
        /// Retriever: keyword and semantic fused, or one of them alone
        #[arg(long, default_value = "hybrid", value_parser = ["hybrid", "keyword", "semantic"])]
        mode: String,
    },
    /// Answer a question from your memories with the local language model, citing them
    Ask {
        #[arg(required = true, num_args = 1.., value_name = "QUESTION")]
        question: Vec<String>,
        #[command(flatten)]
        filters: Filters,
        /// How the answer is written [default: ask.style in the config, copy]
        #[arg(long, value_parser = ["copy", "free", "extract"])]
        style: Option<String>,
        /// Do not read a time the question names ("yesterday", "last week", "上周") as a
        /// filter on when memories were made
        #[arg(long)]
        any_time: bool,
    },
    /// List memories in the order they were made, newest first: what was on screen, which
    /// files were written
    Timeline {
        #[command(flatten)]
        filters: Filters,
        /// Most memories to list
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print one memory in full
    Show {
        id: i64,
        /// For a screen memory: write its picture here as PNG
        #[arg(long, value_name = "OUT.png")]
        image: Option<PathBuf>,
        /// Box these words in the picture
        #[arg(long, value_name = "WORDS", requires = "image")]
        highlight: Option<String>,
    },
    /// Keep your folders indexed and record the screen, in the background
    Daemon {
        /// Seconds between screen grabs [default: screen.interval_secs in the config, 5]
        #[arg(long, value_name = "SECONDS")]
        interval: Option<f64>,
        /// A folder to keep indexed (repeatable; adds to daemon.watch in the config)
        #[arg(long, value_name = "PATH")]
        watch: Vec<PathBuf>,
    },
    /// Stop screen capture for a while, or until `engram resume`
    Pause {
        /// How long: 30s, 15m, 2h, 1d [default: until resumed]
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
    },
    /// Restart screen capture after `engram pause`
    Resume,
    /// Show the effective exclusions and prove the privacy gate works on fake secrets
    Doctor,
    /// The local web page and API on 127.0.0.1 (prints its address with a fresh token)
    Serve {
        /// Port to listen on (0: any free port)
        #[arg(long, default_value_t = 3030)]
        port: u16,
    },
    /// An MCP server on stdin/stdout, so local agents can search and ask your memories
    Mcp,
    /// Counts, sizes and the state of the index
    Status,
    /// Delete memories for good: from the store, the index and the write-ahead log
    Forget {
        /// One memory, by the id search shows
        #[arg(long, conflicts_with_all = ["path", "before"])]
        id: Option<i64>,
        /// A file, or everything under a folder
        #[arg(long, conflicts_with = "before")]
        path: Option<PathBuf>,
        /// Everything older than this time (same forms as search --since)
        #[arg(long, value_name = "TIME")]
        before: Option<String>,
        /// Every screen memory of this app (its class, as search results show it)
        #[arg(long, conflicts_with_all = ["id", "path", "before"])]
        app: Option<String>,
    },
    /// Let the language model caption memories that have no caption yet, newest first (the
    /// daemon does this in the background)
    Caption {
        /// Most memories to caption
        #[arg(long, default_value_t = usize::MAX, hide_default_value = true)]
        limit: usize,
    },
    /// Rebuild the keyword index from the store
    Reindex,
    /// Change the passphrase (the data is not re-encrypted); with --recover, set a new one
    /// with the recovery code when the passphrase is forgotten
    Passwd {
        /// Read the new passphrase from this file instead of ENGRAM_NEW_PASSPHRASE or a prompt
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// Open the store with the recovery code instead of the old passphrase (the code from
        /// --recovery-code-file, else ENGRAM_RECOVERY_CODE, else a prompt; spaces, dashes and
        /// case do not matter). The code keeps working afterwards
        #[arg(long)]
        recover: bool,
        /// Read the recovery code from this file (first line)
        #[arg(long, value_name = "FILE", requires = "recover")]
        recovery_code_file: Option<PathBuf>,
        /// Replace the recovery code with a new one, printed once (the old one stops working),
        /// or give a store made without one a code; the passphrase stays as it is
        #[arg(long, conflicts_with_all = ["recover", "new_passphrase_file"])]
        new_recovery_code: bool,
    },
    /// Copy the store, its key file and its keyword index, still sealed, into a new folder;
    /// works while the daemon runs, and checks the copy
    Backup {
        /// A new or empty folder outside the data directory (on another disk, ideally)
        #[arg(value_name = "DEST")]
        dest: PathBuf,
    },
    /// Put a backup made by `engram backup` in place, after checking that it opens with the
    /// passphrase and is undamaged (stop the daemon, serve and mcp first)
    Restore {
        /// The backup folder
        #[arg(value_name = "SRC")]
        src: PathBuf,
        /// If the data directory holds a store, move it aside (into DATA_DIR/replaced-TIME/,
        /// still sealed, never deleted) instead of refusing
        #[arg(long)]
        force: bool,
    },
    /// Open every sealed row and index file, run SQLite's integrity check, and report what is
    /// damaged, by table, column and row or by file (exit 4 when anything is)
    Verify,
    /// Print the effective settings
    Config,
    /// Score retrieval on a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels.tsv), or
    /// searches and answers on a personal set (a folder with set.json, searches.jsonl and
    /// questions.jsonl)
    Eval {
        dir: PathBuf,
        /// Personal sets: which part to score (the held part only at the end of a change)
        #[arg(long, default_value = "dev", value_parser = ["dev", "held", "all"])]
        split: String,
        /// Personal sets: score only the searches or only the answers
        #[arg(long, value_parser = ["searches", "questions"])]
        only: Option<String>,
        /// Write the run (qid, docid, score; top 100) here
        #[arg(long, value_name = "RUN.tsv")]
        out: Option<PathBuf>,
        /// Which retriever to score
        #[arg(long, default_value = "hybrid", value_parser = ["hybrid", "keyword", "semantic"])]
        mode: String,
        /// Caption every document with the language model first and index its caption with
        /// its title (slow: about a second a document)
        #[arg(long)]
        captions: bool,
    },
}

/// Runs the screen-capture and file-watching daemon in this process, given its opened store.
pub type DaemonRunner = fn(Engram, engram::daemon::Options, &dyn Fn(&str)) -> Result<engram::daemon::State, Error>;

/// The program: `daemon` is `None` in `engram`, whose `daemon` command becomes `engram-daemon`.
pub fn main(daemon: Option<DaemonRunner>) -> ExitCode {
    // Output piped into `head` and closed early ends the process quietly, as for other tools,
    // instead of a panic about a broken pipe.
    // SAFETY: restores the default action for SIGPIPE before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    engram::harden::apply();
    let cli = Cli::parse();
    match run(cli, daemon) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engram: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// `--passphrase-cmd`, set once at start: every way of unlocking asks `passphrase` alone.
static PASSPHRASE_CMD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn run(cli: Cli, daemon: Option<DaemonRunner>) -> Result<(), Error> {
    if let Some(cmd) = &cli.passphrase_cmd {
        let _ = PASSPHRASE_CMD.set(cmd.clone());
    }
    let (config, config_path) = Config::load(cli.config.as_deref())?;
    let dir = config::data_dir(cli.data_dir.as_deref())?;
    let json = cli.json;
    match cli.command {
        Command::Init { no_recovery_code } => {
            let pass = passphrase(cli.passphrase_file.as_deref(), "ENGRAM_PASSPHRASE", true)?;
            let code = if no_recovery_code {
                Engram::init(&dir, pass.as_bytes(), config)?;
                None
            } else {
                Some(Engram::init_with_recovery(&dir, pass.as_bytes(), config)?.1)
            };
            if json {
                println!("{}", json!({ "data_dir": dir.display().to_string(), "recovery_code": code.as_ref().map(|c| c.as_str()) }));
            } else {
                println!("Created a sealed engram store in {}", dir.display());
                if let Some(code) = &code {
                    print_recovery_code(code);
                }
                println!("Next: engram add ~/Documents   then   engram search WORDS");
            }
        }
        Command::Add { paths } => {
            let mut engram = open(&dir, cli.passphrase_file.as_deref(), config)?;
            let bar = progress_bar(json);
            let report = engram.add_paths(&paths, &mut |ev| match ev {
                AddEvent::Found(n) => bar.set_length(n as u64),
                AddEvent::File(p) => {
                    bar.inc(1);
                    bar.set_message(p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
                }
                AddEvent::Embedding(done, total) => {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message("embedding chunks for semantic search");
                }
            })?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&report).expect("report serialises"));
            } else {
                println!(
                    "added {}, updated {}, unchanged {}, removed {}, excluded {}, skipped {} ({} chunks indexed)",
                    report.added,
                    report.updated,
                    report.unchanged,
                    report.removed,
                    report.excluded,
                    report.skipped_files.len(),
                    report.chunks
                );
                for s in &report.skipped_files {
                    let note = match (s.as_before, s.remembered) {
                        (true, _) => " (as before: not read again until it changes)",
                        (false, true) => " (remembered: not read again until it changes)",
                        _ => "",
                    };
                    println!("  skipped {}: {}{note}", s.path, s.detail);
                }
                if let Some(why) = &report.semantic_off {
                    eprintln!("engram: semantic search is off until the embedding model is present: {why}");
                }
            }
        }
        Command::Search { query, limit, filters, mode } => {
            let mut query = SearchRequest::new(query.join(" "), limit.unwrap_or(config.search.limit)).with_filters(filters.parse()?);
            query.mode = Mode::parse(&mode).unwrap_or(Mode::Hybrid);
            let hybrid = query.mode == Mode::Hybrid;
            let embeds = query.mode != Mode::Keyword;
            let reply = request(&dir, Request::Search { query, boxes: false }, || {
                let preload = embeds.then(|| Preload::start(&config));
                let engram = open(&dir, cli.passphrase_file.as_deref(), config)?.with_embedder(preload);
                if hybrid {
                    if let Err(why) = engram.embedder() {
                        eprintln!("engram: keyword search only; semantic search is off: {why}");
                    }
                }
                Ok(engram)
            })?;
            let Response::Found(found) = reply else { return Err(reply.unexpected()) };
            print_results(&found.results, json);
            if let Some(e) = found.damage() {
                return Err(e);
            }
        }
        Command::Ask { question, filters, style, any_time } => {
            let mut req = AskRequest::new(question.join(" "), &config.ask).with_filters(filters.parse()?);
            req.any_time = any_time;
            if let Some(s) = style.as_deref().and_then(Style::parse) {
                req.style = s;
            }
            let passphrase_file = cli.passphrase_file.clone();
            ask(
                |on_text| {
                    // A running daemon answers with its models already loaded.
                    if engram::daemon::running(&dir).is_some() {
                        let timeout = std::time::Duration::from_secs(600);
                        let mut forward = |r: &Response| {
                            if let Response::Text { text } = r {
                                on_text(text)
                            }
                        };
                        match engram::daemon::socket::call(&dir, &Request::Ask(req.clone()), timeout, &mut forward) {
                            Some(Response::Answer(a)) => return Ok(*a),
                            Some(other) => return Err(other.unexpected()),
                            None => {}
                        }
                    }
                    let preload = Preload::start(&config);
                    let engram = open(&dir, passphrase_file.as_deref(), config)?.with_embedder(Some(preload));
                    let on_convert =
                        |p: &Path| eprintln!("engram: converting the language model once for speed; it is saved as {}", p.display());
                    engram.ask(&req, &on_convert, on_text)
                },
                json,
            )?;
        }
        Command::Timeline { filters, limit } => {
            let reply = request(&dir, Request::Timeline { filters: filters.parse()?, limit }, || open(&dir, cli.passphrase_file.as_deref(), config))?;
            let Response::Timeline { memories } = reply else { return Err(reply.unexpected()) };
            print_timeline(&memories, json);
        }
        Command::Caption { limit } => {
            let mut engram = open(&dir, cli.passphrase_file.as_deref(), config)?;
            let bar = progress_bar(json);
            bar.set_message("captioning memories");
            let on_convert = |p: &Path| eprintln!("engram: converting the language model once for speed; it is saved as {}", p.display());
            let done = engram.caption_pending(limit, &|| false, &on_convert, &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            if json {
                println!("{}", json!({ "captioned": done }));
            } else {
                println!("captioned {done} memories");
            }
        }
        Command::Show { id, image, highlight } => {
            // Two requests with --image: the store is opened once, when no daemon has it warm.
            let local = match engram::daemon::running(&dir) {
                Some(_) => None,
                None => Some(open(&dir, cli.passphrase_file.as_deref(), config.clone())?),
            };
            let call = |req: Request| match &local {
                Some(e) => checked(contract::handle(e, req, &mut |_| {})),
                None => request(&dir, req, || open(&dir, cli.passphrase_file.as_deref(), config.clone())),
            };
            let words = json || image.is_some();
            let reply = call(Request::Show { id, words })?;
            let Response::Memory(m) = reply else { return Err(reply.unexpected()) };
            if let Some(out) = &image {
                let no_picture = || Error::Usage(format!("memory {id} is a {}, not a screen memory: it has no picture", m.about.kind.as_str()));
                let words = m.frame.as_ref().and_then(|f| f.words.as_ref()).ok_or_else(no_picture)?;
                let picture = match call(Request::Picture { id, thumb: false })? {
                    Response::Picture { webp } => webp,
                    other => return Err(other.unexpected()),
                };
                write_frame(&picture, &serde_json::to_vec(words).expect("words serialise"), highlight.as_deref(), out)?;
            }
            if json {
                println!("{}", json!(m));
            } else {
                println!("{} [{}] {}", m.about.id, m.about.kind.as_str(), m.about.source);
                if let Some(t) = &m.about.title {
                    println!("title: {t}");
                }
                if let Some(c) = &m.caption {
                    println!("caption: {c}");
                }
                println!("time:  {}", local_time(m.about.timestamp));
                println!("size:  {} bytes", m.size);
                println!();
                println!("{}", m.text);
            }
        }
        Command::Daemon { interval, watch } => {
            let Some(run_daemon) = daemon else { return Err(exec_daemon()) };
            ensure_ocr_thread_limit()?;
            let mut config = config;
            let mut folders = config.daemon.watch.clone();
            folders.extend(watch);
            config.daemon.watch = folders.clone();
            let interval = interval.unwrap_or(config.screen.interval_secs);
            if interval.is_nan() || interval <= 0.0 {
                return Err(Error::Usage("--interval must be a positive number of seconds".into()));
            }
            let engram = open(&dir, cli.passphrase_file.as_deref(), config)?;
            let log = |m: &str| eprintln!("{} engram daemon: {m}", chrono::Local::now().format("%H:%M:%S"));
            log(&format!("started (pid {}), store {}", std::process::id(), dir.display()));
            let state = run_daemon(engram, engram::daemon::Options { interval, watch: folders }, &log)?;
            log(&format!(
                "stopped: {} frames stored, {} unchanged skipped; {} files indexed, {} removed",
                state.frames_stored, state.frames_unchanged, state.files_indexed, state.files_removed
            ));
        }
        Command::Pause { duration } => {
            let until = duration.map(|d| parse_duration(&d).map(|s| chrono::Utc::now().timestamp().saturating_add(s))).transpose()?;
            engram::daemon::pause(&dir, until).map_err(|e| Error::Other(format!("could not write the pause file in {}: {e}", dir.display())))?;
            match until {
                Some(t) => println!("screen capture paused until {}", local_time(t)),
                None => println!("screen capture paused until `engram resume`"),
            }
        }
        Command::Resume => {
            let was = engram::daemon::resume(&dir).map_err(|e| Error::Other(format!("could not remove the pause file in {}: {e}", dir.display())))?;
            println!("{}", if was { "screen capture resumed" } else { "screen capture was not paused" });
        }
        Command::Doctor => doctor(&config, &dir, json)?,
        Command::Serve { port } => {
            let passphrase_file = cli.passphrase_file.clone();
            serve::run(move || open(&dir, passphrase_file.as_deref(), config), port, |url| {
                // The first line is the address, for people and for scripts.
                println!("{url}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                eprintln!("engram: serving on 127.0.0.1 only; open the address above. Ctrl-C stops.");
            })?;
        }
        Command::Mcp => {
            let passphrase_file = cli.passphrase_file.clone();
            mcp::run(move || open(&dir, passphrase_file.as_deref(), config))?;
        }
        Command::Status => {
            let reply = request(&dir, Request::Status, || open(&dir, cli.passphrase_file.as_deref(), config))?;
            let Response::Status(s) = reply else { return Err(reply.unexpected()) };
            let (daemon, paused) = (s.daemon.clone(), s.paused_until);
            if json {
                println!("{}", json!(s));
            } else {
                println!("data directory: {}", s.data_dir);
                println!("memories:       {} ({} files, {} screens, {} documents)", s.store.items, s.store.files, s.store.screens, s.store.docs);
                println!("distinct texts: {} in {} chunks, {} bytes of text", s.store.contents, s.store.chunks, s.store.text_bytes);
                println!("index:          {} chunks, generation {} of {}", s.indexed_chunks, s.index_generation, s.store.generation);
                println!("disk:           {} bytes database ({} screenshots, {} bytes), {} bytes index", s.database_bytes, s.frames, s.frame_bytes, s.index_bytes);
                println!("embedder:       {} ({} chunks waiting for a vector; dense layers in {})", s.embedder, s.chunks_without_vector, s.embedder_arithmetic);
                println!("captions:       {} of {} distinct texts waiting for one", s.texts_without_caption, s.store.contents);
                if !s.skipped_files.is_empty() {
                    println!(
                        "skipped files:  {} that could not be read (the extraction worker failed on them, or they are damaged); not read again until they change (--json lists them)",
                        s.skipped_files.len()
                    );
                }
                if let (Some(a), Some(b)) = (s.store.oldest, s.store.newest) {
                    println!("span:           {} to {}", local_time(a), local_time(b));
                }
                match &daemon {
                    Some(d) => {
                        let excluded = d.private.as_ref().map(|p| format!(", {} excluded", p.frames_excluded)).unwrap_or_default();
                        println!(
                            "daemon:         running (pid {}), capture {}; {} frames stored, {} unchanged{excluded}; captions {}, {} written",
                            d.pid, d.capture, d.frames_stored, d.frames_unchanged, d.captions, d.captioned
                        );
                        if let Some(e) = &d.last_error {
                            println!("last problem:   {e}");
                        }
                    }
                    None => println!("daemon:         not running"),
                }
                match paused {
                    Some(0) => println!("capture:        paused until `engram resume`"),
                    Some(t) => println!("capture:        paused until {}", local_time(t)),
                    None => {}
                }
            }
        }
        Command::Forget { id, path, before, app } => {
            let what = match (id, path, before, app) {
                (Some(id), _, _, _) => Forget::Id(id),
                (_, Some(p), _, _) => Forget::Path(p),
                (_, _, Some(t), _) => Forget::Before(parse_time(&t, chrono::Local::now()).map_err(|e| Error::Usage(e.to_string()))?),
                (_, _, _, Some(a)) => Forget::App(a),
                _ => return Err(Error::Usage("say what to forget: --id ID, --path PATH, --before TIME or --app APP".into())),
            };
            let mut engram = open(&dir, cli.passphrase_file.as_deref(), config)?;
            let n = engram.forget(&what)?;
            if json {
                println!("{}", json!({ "forgotten": n }));
            } else {
                println!("forgot {n} memor{}", if n == 1 { "y" } else { "ies" });
            }
        }
        Command::Reindex => {
            // Before the passphrase is asked for: the answer is no while the daemon runs.
            engram::refuse_while_daemon_runs(&dir, "reindex")?;
            let pass = passphrase(cli.passphrase_file.as_deref(), "ENGRAM_PASSPHRASE", false)?;
            let (_, n) = Engram::reindex(&dir, pass.as_bytes(), config)?;
            if json {
                println!("{}", json!({ "reindexed_contents": n }));
            } else {
                println!("rebuilt the keyword index from {n} stored texts");
            }
        }
        Command::Passwd { new_passphrase_file, recover: false, new_recovery_code: false, .. } => {
            let old = passphrase(cli.passphrase_file.as_deref(), "ENGRAM_PASSPHRASE", false)?;
            let new = passphrase(new_passphrase_file.as_deref(), "ENGRAM_NEW_PASSPHRASE", true)?;
            Engram::change_passphrase(&dir, old.as_bytes(), new.as_bytes())?;
            if !json {
                println!("passphrase changed");
            }
        }
        Command::Passwd { new_passphrase_file, recover: true, recovery_code_file, .. } => {
            let code = recovery_code(recovery_code_file.as_deref())?;
            Engram::recover_passphrase(&dir, &code, || passphrase(new_passphrase_file.as_deref(), "ENGRAM_NEW_PASSPHRASE", true))?;
            if !json {
                println!("passphrase changed with the recovery code (the code still works)");
            }
        }
        Command::Passwd { new_recovery_code: true, .. } => {
            let pass = passphrase(cli.passphrase_file.as_deref(), "ENGRAM_PASSPHRASE", false)?;
            let code = Engram::new_recovery_code(&dir, pass.as_bytes())?;
            if json {
                println!("{}", json!({ "recovery_code": code.as_str() }));
            } else {
                print_recovery_code(&code);
                println!("The previous recovery code no longer works.");
            }
        }
        Command::Backup { dest } => {
            let pass = passphrase(cli.passphrase_file.as_deref(), "ENGRAM_PASSPHRASE", false)?;
            let r = engram::backup::backup(&dir, pass.as_bytes(), &dest)?;
            if json {
                println!("{}", serde_json::to_string(&r).expect("report serialises"));
            } else {
                println!("backed up {} to {}, sealed as it is in the store (the same passphrase opens it)", dir.display(), r.dest);
                println!("  database  {} bytes: {}", r.database_bytes, r.check.counts());
                println!("  index     {} files, {} bytes", r.index_files, r.index_bytes);
                println!("  key file  {} bytes", r.key_file_bytes);
                if r.check.ok() {
                    println!("checked: every sealed value and index file of the backup opens");
                }
                for d in &r.check.damaged {
                    println!("DAMAGED   {d}");
                }
            }
            if !r.check.ok() {
                return Err(Error::Tamper(format!(
                    "the backup was written, but {} sealed values or files in it (so in the store too) are damaged: {}; `engram verify` lists them",
                    r.check.damaged.len(),
                    r.check.summary()
                )));
            }
        }
        Command::Restore { src, force } => {
            let pass = passphrase(cli.passphrase_file.as_deref(), "ENGRAM_PASSPHRASE", false)?;
            let r = engram::backup::restore(&dir, &src, pass.as_bytes(), config, force)?;
            if json {
                println!("{}", serde_json::to_string(&r).expect("report serialises"));
            } else {
                println!("restored {} into {}: {}", r.restored_from, r.data_dir, r.check.counts());
                if let Some(aside) = &r.set_aside {
                    println!("the store that was there is now in {aside}, still sealed under its own passphrase; delete it once you no longer need it");
                }
            }
        }
        Command::Verify => {
            let pass = passphrase(cli.passphrase_file.as_deref(), "ENGRAM_PASSPHRASE", false)?;
            let r = engram::backup::verify(&dir, pass.as_bytes())?;
            if json {
                println!("{}", serde_json::to_string(&r).expect("report serialises"));
            } else {
                println!("{r}");
            }
            if !r.ok() {
                return Err(Error::Tamper(format!(
                    "{} sealed values or files failed their integrity check: {}",
                    r.damaged.len(),
                    r.summary()
                )));
            }
        }
        Command::Config => {
            if json {
                println!("{}", json!({ "data_dir": dir, "config_file": config_path, "settings": config }));
            } else {
                println!("# data directory: {}", dir.display());
                match &config_path {
                    Some(p) => println!("# config file: {}", p.display()),
                    None => println!("# config file: none (defaults)"),
                }
                print!("{}", config.to_toml());
            }
        }
        Command::Eval { dir: eval_dir, split, only, out, .. } if engram::eval::personal::is_personal(&eval_dir) => {
            let quiet = json || !std::io::stderr().is_terminal();
            let options = engram::eval::personal::Options {
                split: engram::eval::personal::Split::parse(&split).unwrap_or(engram::eval::personal::Split::Dev),
                questions: only.as_deref() != Some("searches"),
                searches: only.as_deref() != Some("questions"),
            };
            let run = engram::eval::personal::run(&eval_dir, config, &options, &mut |msg| {
                if !quiet {
                    eprintln!("{msg}");
                }
            })?;
            if let Some(out) = &out {
                eval::write_personal_rows(out, &run)?;
            }
            eval::print_personal(&run, json);
        }
        Command::Eval { dir: eval_dir, out, mode, captions, .. } => {
            let quiet = json || !std::io::stderr().is_terminal();
            let mode = Mode::parse(&mode).unwrap_or(Mode::Hybrid);
            let result = engram::eval::run(&eval_dir, 100, mode, config, captions, |msg| {
                if !quiet {
                    eprintln!("{msg}");
                }
            })?;
            if let Some(out) = &out {
                engram::eval::write_run(out, &result.run)?;
            }
            match (&result.scores, json) {
                (Some(s), true) => println!("{}", serde_json::to_string(s).expect("scores serialise")),
                (Some(s), false) => println!(
                    "nDCG@10 {:.4}  R@10 {:.4}  R@100 {:.4}  MRR@10 {:.4}  queries {}",
                    s.ndcg10, s.r10, s.r100, s.mrr10, s.queries
                ),
                (None, _) => println!("{} queries run over {} documents (no qrels.tsv to score)", result.queries, result.docs),
            }
        }
    }
    Ok(())
}

fn open(dir: &Path, passphrase_file: Option<&Path>, config: Config) -> Result<Engram, Error> {
    if !engram::crypto::vault::exists(dir) {
        return Err(Error::Usage(format!("no engram store in {}: run `engram init` first (or pass --data-dir)", dir.display())));
    }
    let pass = passphrase(passphrase_file, "ENGRAM_PASSPHRASE", false)?;
    Engram::open(dir, pass.as_bytes(), config)
}

/// The passphrase from a file, then `--passphrase-cmd` (for the store's own passphrase), then
/// the environment, then a prompt on the terminal.
fn passphrase(file: Option<&Path>, var: &str, confirm: bool) -> Result<Zeroizing<String>, Error> {
    if let Some(f) = file {
        refuse_if_shared(f)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(f).map_err(|e| Error::Locked(format!("cannot read the passphrase file {}: {e}", f.display())))?,
        );
        let line = text.lines().next().unwrap_or("");
        return non_empty(Zeroizing::new(line.to_string()));
    }
    if let (Some(cmd), "ENGRAM_PASSPHRASE") = (PASSPHRASE_CMD.get(), var) {
        return passphrase_from_command(cmd);
    }
    if let Some(p) = take_env(var) {
        return non_empty(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Locked(format!(
            "the store is locked and there is no terminal to ask for the passphrase: pass --passphrase-file FILE or set {var}"
        )));
    }
    let prompt = if var == "ENGRAM_NEW_PASSPHRASE" { "new passphrase: " } else { "engram passphrase: " };
    let first = Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| Error::Locked(e.to_string()))?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("again: ").map_err(|e| Error::Locked(e.to_string()))?);
        if *first != *again {
            return Err(Error::Usage("the two passphrases differ; nothing was changed".into()));
        }
    }
    non_empty(first)
}

/// A passphrase file that others can read is no secret: refuse it, with the fix. (Pipes such as
/// /dev/stdin are not files on disk and are taken as they are.)
fn refuse_if_shared(f: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(f) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o077 != 0 => Err(Error::Locked(format!(
            "the passphrase file {} can be read by other users (mode {:o}): run `chmod 600 {}` first",
            f.display(),
            m.permissions().mode() & 0o777,
            f.display()
        ))),
        _ => Ok(()),
    }
}

/// Runs `cmd` with `sh -c` and reads the passphrase from the first line it prints.
fn passphrase_from_command(cmd: &str) -> Result<Zeroizing<String>, Error> {
    let out = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::Locked(format!("could not run the passphrase command: {e}")))?;
    let text = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(Error::Locked(format!("the passphrase command failed ({}); nothing was unlocked", out.status)));
    }
    let line = String::from_utf8_lossy(&text).lines().next().unwrap_or("").to_string();
    non_empty(Zeroizing::new(line))
}

/// Reads a variable and removes it from this process, wiping its bytes where the kernel shows
/// them (/proc/PID/environ is the environment block given at start, which unsetting alone does
/// not change): a long-running daemon does not carry the passphrase there for its whole life.
fn take_env(var: &str) -> Option<Zeroizing<String>> {
    let value = Zeroizing::new(std::env::var(var).ok()?);
    let name = std::ffi::CString::new(var).ok()?;
    // SAFETY: getenv's pointer is to the value's NUL-terminated bytes in the environment block,
    // overwritten in place before the variable is removed; engram's threads do not read it.
    unsafe {
        let p = libc::getenv(name.as_ptr());
        if !p.is_null() {
            let len = libc::strlen(p);
            std::ptr::write_bytes(p, 0, len);
        }
    }
    std::env::remove_var(var);
    Some(value)
}

/// A recovery code from a file (its first line), then ENGRAM_RECOVERY_CODE (taken out of the
/// environment once read), then a prompt on the terminal.
fn recovery_code(file: Option<&Path>) -> Result<Zeroizing<String>, Error> {
    const VAR: &str = "ENGRAM_RECOVERY_CODE";
    if let Some(f) = file {
        use std::os::unix::fs::PermissionsExt;
        if let Some(m) = std::fs::metadata(f).ok().filter(|m| m.is_file() && m.permissions().mode() & 0o077 != 0) {
            let mode = m.permissions().mode() & 0o777;
            return Err(Error::Locked(format!(
                "the recovery code file {} can be read by other users (mode {mode:o}): run `chmod 600 {}` first",
                f.display(),
                f.display()
            )));
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(f).map_err(|e| Error::Locked(format!("cannot read the recovery code file {}: {e}", f.display())))?,
        );
        return Ok(Zeroizing::new(text.lines().next().unwrap_or("").to_string()));
    }
    if let Some(code) = take_env(VAR) {
        return Ok(code);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Locked(format!("no recovery code and no terminal to ask for it: pass --recovery-code-file FILE or set {VAR}")));
    }
    Ok(Zeroizing::new(rpassword::prompt_password("recovery code: ").map_err(|e| Error::Locked(e.to_string()))?))
}

/// Shows a new recovery code, once.
fn print_recovery_code(code: &engram::crypto::vault::RecoveryCode) {
    println!();
    println!("Recovery code (shown only now; write it down and keep it away from this computer):");
    println!();
    println!("    {}", code.as_str());
    println!();
    println!("If you forget the passphrase, `engram passwd --recover` sets a new one with this code.");
    println!("Anyone with the code and a copy of your data can read it, as with the passphrase.");
}

fn non_empty(p: Zeroizing<String>) -> Result<Zeroizing<String>, Error> {
    if p.is_empty() {
        return Err(Error::Locked("the passphrase is empty".into()));
    }
    Ok(p)
}

fn progress_bar(json: bool) -> indicatif::ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files  {wide_msg}")
            .expect("valid template"),
    );
    bar
}

fn print_results(results: &[Hit], json: bool) {
    if json {
        println!("{}", json!({ "results": results }));
        return;
    }
    if results.is_empty() {
        println!("no matches");
        return;
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (open, close) = if colour { ("\x1b[1;33m", "\x1b[0m") } else { ("**", "**") };
    for r in results {
        let a = &r.about;
        let title = a.title.as_deref().unwrap_or("");
        println!("[{}] {}  ({}, {}, score {:.2})", a.id, title, a.kind.as_str(), local_time(a.timestamp), r.score);
        match &r.location {
            Some(at) => println!("    {}, {at}", a.source),
            None => println!("    {}", a.source),
        }
        // A caption the snippet already shows is not repeated.
        if let Some(c) = r.caption.as_deref().filter(|c| !render(&r.pieces, "", "").contains(c.trim_end_matches('…'))) {
            println!("    — {c}");
        }
        println!("    {}", render(&r.pieces, open, close));
    }
}

/// Streams the answer on a terminal, then the quotation it rests on and its sources.
/// Prints an answer; `produce` writes it, handing each piece to the callback as it comes.
fn ask(produce: impl FnOnce(&mut dyn FnMut(&str)) -> Result<Answer, Error>, json: bool) -> Result<(), Error> {
    let tty = !json && std::io::stdout().is_terminal();
    let colour = tty && std::env::var_os("NO_COLOR").is_none();
    let mut streamed = false;
    let answer = produce(&mut |text| {
        if tty {
            print!("{text}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            streamed = true;
        }
    })?;
    if json {
        println!("{}", answer.to_json());
        return Ok(());
    }
    let cited: Vec<&Source> = answer.sources.iter().filter(|s| answer.cited.contains(&s.n)).collect();
    // A streamed draft the checks replaced is said to be replaced, not left standing as fact.
    let draft = answer.generation.as_ref().map(|g| g.text.trim().to_string()).unwrap_or_default();
    let stands = matches!(answer.method, Method::Copied | Method::YesNo) || (answer.method == Method::Generated && draft == answer.text);
    if streamed {
        println!();
        if !stands && !answer.unsupported.is_empty() {
            println!("(not shown as fact: the sources do not say {})", answer.unsupported.join(", "));
        }
    }
    if !(streamed && stands) {
        println!("{}", answer.text);
    }
    let (open, close) = if colour { ("\x1b[2m", "\x1b[0m") } else { ("", "") };
    if let Some(quote) = answer.extract.as_deref().filter(|q| *q != answer.text) {
        println!("{open}  “{}”{close}", quote.trim());
    }
    for s in cited {
        let title = s.title.as_deref().map(|t| format!(" — {t}")).unwrap_or_default();
        println!("[{}] {}{}, {} (engram show {})", s.n, s.source, title, local_time(s.time), s.id);
    }
    if let Some(w) = &answer.when {
        let span = format!("{} to {}", local_time(w.since), local_time(w.until));
        if w.applied {
            println!("{open}(from memories made {}, {span}; --any-time searches them all){close}", w.phrase);
        } else {
            println!("{open}(nothing made {} ({span}) answers this, so all your memories were searched){close}", w.phrase);
        }
    }
    Ok(())
}


/// Memories under a line for each day: time, id, kind, then app and window title or path.
fn print_timeline(memories: &[Entry], json: bool) {
    if json {
        println!("{}", json!({ "memories": memories }));
        return;
    }
    if memories.is_empty() {
        println!("no memories in that time");
        return;
    }
    let mut day = String::new();
    for m in memories {
        let a = &m.about;
        let when = local_time(a.timestamp);
        let (date, hour) = when.split_once(' ').unwrap_or((&when, ""));
        if date != day {
            println!("{date}");
            day = date.to_string();
        }
        let what = match (a.kind, &a.title) {
            (Kind::Screen, Some(t)) => format!("{} — {t}", a.source),
            _ => a.source.clone(),
        };
        println!("  {hour}  {:<7} {:<6} {what}", format!("[{}]", a.id), a.kind.as_str());
        if let Some(c) = &m.caption {
            println!("  {:<22} — {c}", "");
        }
    }
}

fn local_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Debian's Tesseract uses OpenMP, which on 2 cores is 3–5× slower than one thread and reads
/// its limit only at process start: so the daemon restarts itself with the limit set. glibc's
/// malloc likewise reads its arena count only at start; two arenas keep the capture, OCR and
/// main threads from each holding their own high-water mark of freed frames.
fn ensure_ocr_thread_limit() -> Result<(), Error> {
    if std::env::var("OMP_THREAD_LIMIT").as_deref() == Ok("1") {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| Error::Other(format!("could not find the engram executable: {e}")))?;
    Err(restart_as(&exe))
}

/// `engram daemon` becomes the `engram-daemon` program beside this one, same arguments.
fn exec_daemon() -> Error {
    let exe = std::env::current_exe().unwrap_or_default();
    let program = exe.with_file_name(DAEMON_PROGRAM);
    if !program.is_file() {
        return Error::Other(format!("{DAEMON_PROGRAM} is missing: it is installed beside {}", exe.display()));
    }
    restart_as(&program)
}

/// Replaces this process with `program` and this process's arguments, with the OCR thread and
/// malloc arena limits set; returns only on failure.
fn restart_as(program: &Path) -> Error {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    cmd.args(std::env::args_os().skip(1)).env("OMP_THREAD_LIMIT", "1");
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        cmd.env("MALLOC_ARENA_MAX", "2");
    }
    let err = cmd.exec();
    Error::Other(format!("could not start {}: {err}", program.display()))
}

const DAEMON_PROGRAM: &str = "engram-daemon";

/// "90s", "15m", "2h", "1d", or plain seconds.
fn parse_duration(s: &str) -> Result<i64, Error> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| Error::Usage(format!("cannot read the duration {s:?}: use forms like 30s, 15m, 2h, 1d")))?;
    let mult = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(Error::Usage(format!("cannot read the duration {s:?}: use forms like 30s, 15m, 2h, 1d"))),
    };
    // A pause is at most a year: longer is not a pause, and no sum may overflow.
    n.checked_mul(mult)
        .filter(|&secs| secs <= 366 * 86_400)
        .ok_or_else(|| Error::Usage(format!("the duration {s:?} is longer than a year: pause without --for, then `engram resume`")))
}

/// Writes a stored picture as PNG, with the words matching `highlight` boxed.
fn write_frame(picture: &[u8], words: &[u8], highlight: Option<&str>, out: &Path) -> Result<(), Error> {
    use engram::capture::frames;
    let mut img = frames::decode_webp(picture).ok_or_else(|| Error::Other("the stored picture does not decode".into()))?;
    if let Some(h) = highlight {
        frames::outline(&mut img, &engram::extract::ocr::boxes_matching(words, h), [255, 40, 40]);
    }
    // The picture is a decrypted screen: readable by its owner only, even if `out` existed
    // (a pipe or device given as `out` keeps its own mode).
    let file = (|| {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(out)?;
        if f.metadata()?.is_file() {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok::<_, std::io::Error>(f)
    })()
    .map_err(|e| Error::Other(format!("could not create {}: {e}", out.display())))?;
    let mut w = std::io::BufWriter::new(file);
    frames::write_png(&img, &mut w).map_err(|e| Error::Other(format!("could not write {}: {e}", out.display())))?;
    Ok(())
}

fn doctor(config: &Config, dir: &Path, json: bool) -> Result<(), Error> {
    let mut checks = doctor::self_test(config)?;
    let guard = engram::harden::protections();
    checks.push(doctor::Check {
        name: "core dumps off".into(),
        ok: guard.core_dumps_off && guard.not_dumpable,
        detail: "a crash writes no core file, and other processes cannot attach to engram or read its memory".into(),
    });
    let sandbox = engram::extract::worker::check_sandbox(engram::extract::worker::Limits::from_config(config).memory_mb);
    checks.push(doctor::Check {
        name: "document reader sandboxed".into(),
        ok: sandbox.is_ok(),
        detail: sandbox.unwrap_or_else(|why| why),
    });
    let ok = checks.iter().all(|c| c.ok);
    let p = &config.privacy;
    let m = &config.mcp;
    let mcp_scope = format!(
        "kinds {}; apps {}; {}",
        m.kinds.join(", "),
        if m.apps.is_empty() { "all".to_string() } else { m.apps.join(", ") },
        if m.max_age_days == 0 { "any age".to_string() } else { format!("the last {} days", m.max_age_days) }
    );
    let free = engram::daemon::free_bytes(dir).or_else(|| dir.parent().and_then(engram::daemon::free_bytes));
    let min_free = config.daemon.min_free_mb << 20;
    if json {
        let list: Vec<_> = checks.iter().map(|c| json!({ "check": c.name, "ok": c.ok, "detail": c.detail })).collect();
        println!(
            "{}",
            json!({ "ok": ok, "checks": list, "exclude_apps": p.exclude_apps, "private_window_markers": p.private_window_markers,
                    "exclude_titles": p.exclude_titles, "exclude_paths": config.files.exclude,
                    "display": std::env::var("DISPLAY").ok(), "paused_until": engram::daemon::paused(dir, chrono::Utc::now().timestamp()),
                    "protections": guard, "socket_scope": SOCKET_SCOPE, "serve_scope": SERVE_SCOPE, "mcp_scope": mcp_scope,
                    "in_the_clear": IN_THE_CLEAR, "disk_free_bytes": free, "disk_min_free_bytes": min_free })
        );
    } else {
        println!("never captured:");
        println!("  apps:            {}", p.exclude_apps.join(", "));
        println!("  private windows: titles containing {}", p.private_window_markers.join(", "));
        println!("  window titles:   {}", if p.exclude_titles.is_empty() { "(no patterns)".to_string() } else { p.exclude_titles.join(", ") });
        println!("  paths:           {}", config.files.exclude.join(", "));
        println!("never kept: card numbers (Luhn), IBANs, API keys and tokens, JWTs, private keys, values after a password label");
        let var = |k: &str| std::env::var(k).ok().filter(|d| !d.is_empty());
        println!("screen capture: {}", match (var("WAYLAND_DISPLAY"), var("DISPLAY")) {
            (Some(d), _) => format!("Wayland display {d}, OCR languages {}", config.screen.ocr_languages),
            (None, Some(d)) => format!("X display {d}, OCR languages {}", config.screen.ocr_languages),
            _ => "off (no display)".into(),
        });
        println!("protections:");
        println!("  core dumps:      {}", if guard.core_dumps_off && guard.not_dumpable { "off, and no process may attach" } else { "ON: a crash could write keys to disk" });
        println!("  key memory:      {}", if guard.keys_locked { "locked in RAM, left out of dumps" } else { "left out of dumps (not locked: raise `ulimit -l`)" });
        println!("  daemon socket:   {SOCKET_SCOPE}");
        println!("  web server:      {SERVE_SCOPE}");
        println!("  agents (mcp):    {mcp_scope}");
        println!("  in the clear:    {}", IN_THE_CLEAR.join("; "));
        if let Some(free) = free {
            let state = if free < min_free { "capture pauses until room returns" } else { "enough" };
            println!("  disk:            {} MiB free, {} MiB needed for capture: {state}", free >> 20, min_free >> 20);
        }
        println!();
        for c in &checks {
            println!("{} {} — {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail);
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Error::Other("the privacy self-test failed; do not run the daemon until this is fixed".into()))
    }
}

const SOCKET_SCOPE: &str = "mode 0600, answers processes of your own user only, requests capped at 64 KiB";
const SERVE_SCOPE: &str = "127.0.0.1 only, your own user's connections only, the printed token or its session cookie";
/// What the store keeps unsealed, as the README's privacy model explains.
const IN_THE_CLEAR: &[&str] = &[
    "when each memory was made and added",
    "its kind (file, screen, document)",
    "text and picture sizes rounded up, and the length of each sealed value",
    "counts and ids",
    "keyed hashes (which memories share a text, which files changed; never what they are)",
    "model names",
];

/// The reply to `req` from the running daemon, warm, or else from the store opened here: the
/// same contract either way. A failed request is an error.
fn request(dir: &Path, req: Request, open: impl FnOnce() -> Result<Engram, Error>) -> Result<Response, Error> {
    let from_daemon = match engram::daemon::running(dir) {
        Some(_) => engram::daemon::socket::call(dir, &req, std::time::Duration::from_secs(120), &mut |_| {}),
        None => None,
    };
    checked(match from_daemon {
        Some(reply) => reply,
        None => contract::handle(&open()?, req, &mut |_| {}),
    })
}

fn checked(reply: Response) -> Result<Response, Error> {
    match reply {
        Response::Error { .. } => Err(reply.unexpected()),
        reply => Ok(reply),
    }
}
