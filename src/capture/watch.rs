//! Follows the watched folders with `notify` (inotify on Linux), recursively. Events are only
//! hints: the daemon re-reads each named path, so a burst of writes costs one read, and a path
//! that vanished is forgotten.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::config::FilesConfig;

pub struct Watcher {
    _inner: RecommendedWatcher,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {why}")]
pub struct WatchError {
    pub path: String,
    pub why: String,
}

/// Starts watching; `on_change` gets the paths of each event, `on_error` the watcher's errors
/// (for example the inotify watch limit; the message says how to raise it).
pub fn watch(
    roots: &[PathBuf],
    on_change: impl Fn(Vec<PathBuf>) + Send + 'static,
    on_error: impl Fn(String) + Send + 'static,
) -> Result<Watcher, WatchError> {
    let mut inner = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
        Ok(ev) => {
            if !matches!(ev.kind, EventKind::Access(_)) && !ev.paths.is_empty() {
                on_change(ev.paths);
            }
        }
        Err(e) => on_error(explain(&e)),
    })
    .map_err(|e| WatchError { path: String::new(), why: explain(&e) })?;
    for root in roots {
        inner
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| WatchError { path: root.display().to_string(), why: explain(&e) })?;
    }
    Ok(Watcher { _inner: inner })
}

/// What went wrong, without the paths notify attaches (they would reach the daemon's log).
fn explain(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            "the inotify watch limit is reached; raise it with `sudo sysctl fs.inotify.max_user_watches=524288`".into()
        }
        notify::ErrorKind::PathNotFound => "the folder does not exist".into(),
        notify::ErrorKind::Io(io) => io.to_string(),
        notify::ErrorKind::Generic(s) => s.clone(),
        notify::ErrorKind::WatchNotFound => "a watch was lost".into(),
        notify::ErrorKind::InvalidConfig(_) => "the watcher's settings were refused".into(),
    }
}

/// Whether a changed path should be indexed: under a watched root, not hidden below it (unless
/// configured), not excluded by the config's patterns (on its path or where it leads).
pub fn wanted(path: &Path, roots: &[PathBuf], cfg: &FilesConfig, excluded: &globset::GlobSet) -> bool {
    let Some(root) = roots.iter().find(|r| path.starts_with(r)) else { return false };
    if crate::capture::files::is_excluded(excluded, path) {
        return false;
    }
    let rel = path.strip_prefix(root).unwrap_or(path);
    cfg.include_hidden || !rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_excluded_paths_are_not_wanted() {
        let cfg = FilesConfig::default();
        let ex = crate::capture::files::exclusions(&cfg).unwrap();
        let roots = vec![PathBuf::from("/home/u/notes")];
        assert!(wanted(Path::new("/home/u/notes/a.md"), &roots, &cfg, &ex));
        assert!(!wanted(Path::new("/home/u/notes/.a.md.swp"), &roots, &cfg, &ex));
        assert!(!wanted(Path::new("/home/u/notes/.git/HEAD"), &roots, &cfg, &ex));
        assert!(!wanted(Path::new("/home/u/notes/x/node_modules/y.js"), &roots, &cfg, &ex));
        assert!(!wanted(Path::new("/home/u/other/a.md"), &roots, &cfg, &ex));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_into_an_excluded_folder_is_not_wanted() {
        let d = tempfile::tempdir().unwrap();
        let private = d.path().join("private");
        let notes = d.path().join("notes");
        std::fs::create_dir_all(&private).unwrap();
        std::fs::create_dir_all(&notes).unwrap();
        std::fs::write(private.join("diary.txt"), "a").unwrap();
        std::fs::write(notes.join("plain.txt"), "a").unwrap();
        std::os::unix::fs::symlink(private.join("diary.txt"), notes.join("diary.txt")).unwrap();
        let cfg = FilesConfig { exclude: vec!["**/private/**".into()], ..FilesConfig::default() };
        let ex = crate::capture::files::exclusions(&cfg).unwrap();
        let roots = vec![notes.clone()];
        assert!(wanted(&notes.join("plain.txt"), &roots, &cfg, &ex));
        assert!(!wanted(&notes.join("diary.txt"), &roots, &cfg, &ex));
    }
}
