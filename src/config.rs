//! Settings: the TOML file, its documented defaults, and where data lives.
//!
//! The config file holds no secrets and no content, only choices (paths to exclude, size caps).
//! Default location: `$XDG_CONFIG_HOME/engram/config.toml`; `--config FILE` overrides. A missing
//! file means all defaults.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the config file {path}: {why}")]
    Read { path: String, why: String },
    #[error("the config file {path} is not valid: {why}")]
    Parse { path: String, why: String },
    #[error("could not create the data directory {path}: {why}")]
    DataDir { path: String, why: String },
    #[error("no home directory found: pass --data-dir DIR or set ENGRAM_DATA_DIR")]
    NoHome,
}

/// Every setting, with its default. `engram config` prints the effective values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// What `engram add` and the folder watcher index.
    pub files: FilesConfig,
    /// Defaults for `engram search`.
    pub search: SearchConfig,
    /// Which local models to use.
    pub models: ModelsConfig,
    /// Defaults for `engram ask`.
    pub ask: AskConfig,
    /// The background indexer (`engram daemon`).
    pub daemon: DaemonConfig,
    /// Screen capture and OCR.
    pub screen: ScreenConfig,
    /// What is never captured and what is never kept.
    pub privacy: PrivacyConfig,
    /// What an agent may read through `engram mcp`.
    pub mcp: McpConfig,
}

/// The memories an agent may reach through `engram mcp`: every tool (search, ask, get by id)
/// sees only these.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Kinds of memory: "file", "screen", "doc".
    pub kinds: Vec<String>,
    /// Screen memories only of these apps (part of the name, any case); empty: every app.
    pub apps: Vec<String>,
    /// Only memories made in the last this many days (0: any age).
    pub max_age_days: u64,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig { kinds: ["file", "screen", "doc"].map(String::from).to_vec(), apps: Vec::new(), max_age_days: 0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Folders the daemon keeps indexed (`--watch` adds to these).
    pub watch: Vec<PathBuf>,
    /// Let the language model caption new memories, at low priority.
    pub captions: bool,
    /// Seconds between rounds of captioning; the model is loaded only for a round.
    pub caption_every_secs: u64,
    /// Screen capture pauses while the data directory's disk has less free than this many MiB,
    /// and resumes by itself when room returns.
    pub min_free_mb: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig { watch: Vec::new(), captions: true, caption_every_secs: 120, min_free_mb: 256 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScreenConfig {
    /// Record the screen when a Wayland or X display is present.
    pub capture: bool,
    /// Seconds between screen grabs (`--interval` overrides).
    pub interval_secs: f64,
    /// Tesseract languages, `+`-joined.
    pub ocr_languages: String,
    /// OCR words below this confidence (0–100) are dropped as noise.
    pub min_confidence: f32,
    /// No capture after this many minutes without keyboard or mouse input (0: never pause).
    pub idle_minutes: u64,
    /// WebP quality of stored screenshots (0–100).
    pub webp_quality: f32,
    /// Read the focused window's text through accessibility (AT-SPI) where the app exposes it,
    /// and OCR only the rest.
    pub accessibility: bool,
    /// Turn the desktop's accessibility on when it is off (without it Firefox, Chromium and Qt
    /// apps expose no text). Off unless you say so: it is a session-wide setting.
    pub enable_accessibility: bool,
    /// On KDE Plasma (Wayland), write the desktop file that names engram to KWin
    /// (`~/.local/share/applications/engram-capture.desktop`), without which KWin shows it no
    /// windows. Off unless you say so.
    pub kwin_permission: bool,
    /// Screen memories older than this many days are deleted (0: keep forever).
    pub retention_days: u64,
    /// When screenshots take more than this many bytes, the oldest are deleted.
    pub max_bytes: u64,
}

impl Default for ScreenConfig {
    fn default() -> Self {
        ScreenConfig {
            capture: true,
            interval_secs: 5.0,
            ocr_languages: "eng+chi_sim".into(),
            min_confidence: 50.0,
            idle_minutes: 5,
            webp_quality: 80.0,
            accessibility: true,
            enable_accessibility: false,
            kwin_permission: false,
            retention_days: 90,
            max_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Apps never captured: matched, ignoring case, against the window's class and instance
    /// (`xprop WM_CLASS` shows them) and the end of its title.
    pub exclude_apps: Vec<String>,
    /// Window titles never captured: regular expressions, ignoring case.
    pub exclude_titles: Vec<String>,
    /// Title words that mark a private or incognito browser window.
    pub private_window_markers: Vec<String>,
    /// Web sites never captured, by domain (a subdomain too): `["bank.example", "mail.example"]`.
    /// Known by the address the browser shows, read through accessibility.
    pub exclude_sites: Vec<String>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            exclude_apps: ["keepassxc", "keepass", "1password", "bitwarden", "lastpass", "dashlane", "enpass", "keeper", "proton pass", "seahorse", "kwalletmanager"]
                .map(String::from)
                .to_vec(),
            exclude_titles: Vec::new(),
            private_window_markers: ["private browsing", "inprivate", "incognito", "(private)", "隐私浏览", "无痕"].map(String::from).to_vec(),
            exclude_sites: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AskConfig {
    /// How many retrieved passages the answer may draw on.
    pub passages: usize,
    /// The longest answer the model may write, in tokens.
    pub max_tokens: usize,
    /// How answers are written: "copy" (the model quotes the words that answer from your
    /// memories), "free" (the model writes; unverifiable details are replaced by a quotation)
    /// or "extract" (no model: the best-matching sentence).
    pub style: Style,
}

impl Default for AskConfig {
    fn default() -> Self {
        AskConfig { passages: 5, max_tokens: 96, style: Style::Copy }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Folder holding the unpacked models [default: $ENGRAM_MODELS, else $XDG_DATA_HOME/engram/models].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The sentence embedder: a folder name under `dir`, or a path to any BERT-family
    /// sentence-transformer folder (config.json, tokenizer.json, model.safetensors).
    pub embedder: String,
    /// Set when the embedder reads every script (a multilingual model); an English-only model's
    /// vectors are trusted only for Latin-script text.
    pub embedder_multilingual: bool,
    /// The language model for `engram ask`: a folder name under `dir` holding one GGUF file,
    /// or a path to a llama, qwen2, qwen3 or gemma3 GGUF file.
    pub generator: String,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: None,
            embedder: crate::models::DEFAULT_EMBEDDER.into(),
            embedder_multilingual: false,
            generator: crate::models::DEFAULT_GENERATOR.into(),
        }
    }
}

impl ModelsConfig {
    /// The embedder's folder.
    pub fn embedder_dir(&self) -> PathBuf {
        self.resolve(&self.embedder)
    }

    /// The language model's file, or the folder holding it.
    pub fn generator_path(&self) -> PathBuf {
        self.resolve(&self.generator)
    }

    fn resolve(&self, named: &str) -> PathBuf {
        let named = PathBuf::from(named);
        if named.is_absolute() {
            return named;
        }
        self.dir.clone().unwrap_or_else(crate::models::models_dir).join(named)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Files larger than this many bytes are skipped (counted as "too large").
    pub max_file_bytes: u64,
    /// Glob patterns of paths never to index, matched against the full path.
    pub exclude: Vec<String>,
    /// Index dot-files and dot-folders too.
    pub include_hidden: bool,
    /// Honour .gitignore, .ignore and .engramignore files.
    pub respect_ignore_files: bool,
    /// At most this many pages of a scanned PDF (pages with no text layer) are read by OCR, in
    /// [screen] ocr_languages; the other pages of it are left unread.
    pub pdf_ocr_pages: u32,
    /// The extraction worker's address-space limit, in MiB: a document that needs more is
    /// skipped (and remembered until it changes).
    pub worker_memory_mb: u64,
    /// Seconds the extraction worker may spend on one file before it is killed and the file
    /// skipped (and remembered); each page it begins to read by OCR starts the clock again, at
    /// most `pdf_ocr_pages` times.
    pub worker_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// How many results `engram search` shows when --limit is not given.
    pub limit: usize,
    /// How much hybrid search trusts the semantic side, 0 (keywords only) to 1, for a query the
    /// embedder fully reads; it is scaled down for text the embedder cannot read.
    pub semantic_weight: f32,
    /// Cosine similarity below which a chunk is not a semantic match at all, on
    /// all-MiniLM-L6-v2's scale (unrelated chunks score about 0.1–0.22, paraphrases 0.28+);
    /// multilingual-e5-small's cosines are mapped onto it.
    pub min_similarity: f32,
    /// From how many vectors on semantic search uses an approximate graph (HNSW) instead of
    /// scanning every vector: faster at scale, and it misses a few percent of true neighbours.
    pub graph_from: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_file_bytes: 20 * 1024 * 1024,
            exclude: [
                "**/node_modules/**",
                "**/target/**",
                "**/__pycache__/**",
                "**/.cache/**",
                "**/*.kdbx",
                "**/.ssh/**",
                "**/.gnupg/**",
                "**/id_rsa*",
                "**/id_ed25519*",
            ]
            .map(String::from)
            .to_vec(),
            include_hidden: false,
            respect_ignore_files: true,
            pdf_ocr_pages: 50,
            worker_memory_mb: 2048,
            worker_timeout_secs: 60,
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig { limit: 10, semantic_weight: 0.5, min_similarity: 0.25, graph_from: crate::index::vector::GRAPH_FROM }
    }
}

impl Config {
    /// Loads `path` if given, else the default location if it exists, else defaults.
    pub fn load(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let (path, must_exist) = match path {
            Some(p) => (Some(p.to_path_buf()), true),
            None => (default_config_path(), false),
        };
        let Some(path) = path else { return Ok((Config::default(), None)) };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let cfg = toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse { path: path.display().to_string(), why: e.to_string() })?;
                Ok((cfg, Some(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => Ok((Config::default(), None)),
            Err(e) => Err(ConfigError::Read { path: path.display().to_string(), why: e.to_string() }),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "engram").map(|d| d.config_dir().join("config.toml"))
}

/// The data directory: the explicit choice, else `$XDG_DATA_HOME/engram`.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => directories::ProjectDirs::from("", "", "engram")
            .map(|d| d.data_dir().to_path_buf())
            .ok_or(ConfigError::NoHome),
    }
}

/// Creates the data directory readable by the user alone (0700).
pub fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    let err = |e: std::io::Error| ConfigError::DataDir { path: dir.display().to_string(), why: e.to_string() };
    fs::create_dir_all(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// How an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// The model reads the best sentence and quotes the words that answer: short, and never
    /// invented (its decoding may only copy). The default: it scored best (BENCHMARKS.md; the
    /// best 2 or 3 sentences scored worse than the best alone).
    Copy,
    /// The model writes freely over the numbered passages; an answer whose numbers, dates or
    /// names are not in its sources is replaced by the extractive one.
    Free,
    /// No model: the sentence of the passages that best answers the question.
    Extract,
}

impl Style {
    pub fn parse(s: &str) -> Option<Style> {
        match s {
            "copy" => Some(Style::Copy),
            "free" => Some(Style::Free),
            "extract" => Some(Style::Extract),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = Config::default().to_toml();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.files.max_file_bytes, 20 * 1024 * 1024);
        assert_eq!(back.search.limit, 10);
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let cfg: Config = toml::from_str("[files]\nmax_file_bytes = 5\n").unwrap();
        assert_eq!(cfg.files.max_file_bytes, 5);
        assert!(cfg.files.respect_ignore_files);
        assert_eq!(cfg.search.limit, 10);
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert!(toml::from_str::<Config>("[files]\nmax_size = 5\n").is_err());
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Config::load(Some(&dir.path().join("nope.toml"))).is_err());
    }
}
