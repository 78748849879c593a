//! engram: a private, local memory of what you saw and wrote.
//!
//! The pipeline, one way: capture (walk files) → extract (text, chunks) → store (sealed SQLite)
//! → index (sealed tantivy) → query. [`Engram`] ties the stages together for the CLI; each stage
//! lives in its own module and can be used alone; `service` ties them together for every front end.

pub mod answer;
pub mod backup;
pub mod capture;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod embed;
pub mod eval;
pub mod extract;
pub mod harden;
pub mod index;
pub mod llm;
pub mod models;
pub mod query;
pub mod service;
pub mod store;
pub mod text;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::crypto::vault::VaultError;
use crate::crypto::CryptoError;
use crate::embed::EmbedError;
use crate::index::IndexError;
use crate::llm::LlmError;
use crate::query::QueryError;
use crate::store::StoreError;

pub use crate::service::{
    caption_contents, refuse_while_daemon_runs, AddEvent, AddReport, AskRequest, Engram, Forget, Preload,
    RememberedSkip, SkippedFile, Status,
};

pub const DB_FILE: &str = "engram.db";
pub const INDEX_DIR: &str = "index";
/// The saved, sealed vector index: a scan's rows or a graph ([`index::vector::VectorIndex::save`]).
pub const VECTOR_DIR: &str = "vectors";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Index(IndexError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("tampering detected: {0}")]
    Tamper(String),
    #[error("{0}")]
    Usage(String),
    #[error("no memory with id {0}; `engram search` shows ids")]
    NotFound(i64),
    #[error("memory {0} is not a screen memory: it has no picture")]
    NoPicture(i64),
    /// A request failed in the daemon (or in the thread that owns the store) with an error
    /// of this kind; the kind crosses the socket, the message is shown as it came.
    #[error("{message}")]
    Relayed { message: String, kind: ErrorKind },
    /// No passphrase could be had (no file, no variable, no terminal to ask on).
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    Other(String),
}

/// What a caught panic is reported as: where it happened goes to stderr (see `harden`), what
/// it said never does, since a parser's message may quote the user's document.
pub const INTERNAL_ERROR: &str = "internal error (a bug in engram; its message is not shown, as it may hold your content)";

/// What went wrong, as every front end reports it: the CLI's exit code, the HTTP status, the MCP
/// error and the daemon socket's reply come from this, never from an error's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is wrong: a bad argument, filter or setting.
    Usage,
    /// No memory has that id.
    NotFound,
    /// No passphrase, or a wrong one.
    Locked,
    /// Sealed data failed its integrity check.
    Tampered,
    /// Something needed is not there or is in use: a model, the index writer, a stopping daemon.
    Unavailable,
    /// Anything else: a failure of the disk, the database or engram.
    Failed,
}

impl ErrorKind {
    /// The process exit code: 1 error, 2 usage, 3 locked, 4 tampering.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage | ErrorKind::NotFound => 2,
            ErrorKind::Locked => 3,
            ErrorKind::Tampered => 4,
            ErrorKind::Unavailable | ErrorKind::Failed => 1,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Usage => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Locked => 401,
            ErrorKind::Tampered => 409,
            ErrorKind::Unavailable => 503,
            ErrorKind::Failed => 500,
        }
    }

    /// The JSON-RPC error code: invalid params, MCP's resource-not-found, or internal error.
    pub fn rpc_code(self) -> i32 {
        match self {
            ErrorKind::Usage => -32602,
            ErrorKind::NotFound => -32002,
            _ => -32603,
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) => ErrorKind::Usage,
            Error::NotFound(_) | Error::NoPicture(_) => ErrorKind::NotFound,
            Error::Vault(VaultError::WrongPassphrase(_) | VaultError::WrongRecoveryCode(_) | VaultError::NoRecoveryCode(_))
            | Error::Locked(_) => ErrorKind::Locked,
            Error::Tamper(_) => ErrorKind::Tampered,
            Error::Index(IndexError::Busy) | Error::Embed(_) | Error::Llm(_) => ErrorKind::Unavailable,
            Error::Relayed { kind, .. } => *kind,
            Error::Config(_) | Error::Vault(_) | Error::Store(_) | Error::Index(_) | Error::Other(_) => ErrorKind::Failed,
        }
    }

    /// Which part failed, for logs that must not carry the message (which may name a file).
    pub fn area(&self) -> &'static str {
        match self {
            Error::Vault(_) => "key file",
            Error::Config(_) => "settings",
            Error::Store(_) => "database",
            Error::Index(_) => "keyword index",
            Error::Embed(_) => "embedder",
            Error::Llm(_) => "language model",
            Error::Tamper(_) => "tampering",
            Error::Usage(_) => "usage",
            Error::NotFound(_) | Error::NoPicture(_) => "not found",
            Error::Relayed { .. } => "relayed",
            Error::Locked(_) => "locked",
            Error::Other(_) => "other",
        }
    }

    /// The process exit code: 1 error, 2 usage, 3 locked, 4 tampering.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Crypto(CryptoError::Tamper(what)) => {
                Error::Tamper(format!("{what} in the database failed its integrity check; it was not shown"))
            }
            other => Error::Store(other),
        }
    }
}

impl From<IndexError> for Error {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Tamper(name) => Error::Tamper(format!(
                "the keyword index file {name} failed its integrity check; run `engram reindex` to rebuild it"
            )),
            IndexError::Store(s) => s.into(),
            other => Error::Index(other),
        }
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Index(e) => e.into(),
            QueryError::Store(e) => e.into(),
            QueryError::Embed(e) => e.into(),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        StoreError::Crypto(e).into()
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexError;

    #[test]
    fn each_error_has_one_kind_that_every_front_end_reports_alike() {
        let cases = [
            (Error::Usage("bad".into()), ErrorKind::Usage, 2, 400),
            (Error::NotFound(7), ErrorKind::NotFound, 2, 404),
            (Error::Locked("no passphrase".into()), ErrorKind::Locked, 3, 401),
            (Error::Tamper("x".into()), ErrorKind::Tampered, 4, 409),
            (Error::Index(IndexError::Busy), ErrorKind::Unavailable, 1, 503),
            (Error::Other("disk".into()), ErrorKind::Failed, 1, 500),
        ];
        for (e, kind, exit, http) in cases {
            assert_eq!((e.kind(), e.exit_code(), e.kind().http_status()), (kind, exit, http), "{e}");
            // Through the daemon's socket the kind survives, whatever the message says.
            let relayed = Error::Relayed { message: e.to_string(), kind: e.kind() };
            assert_eq!(relayed.exit_code(), exit);
        }
        assert_eq!(serde_json::to_value(ErrorKind::NotFound).unwrap(), "not_found");
    }
}
