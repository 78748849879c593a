//! Walks the paths given to `engram add`: honours .gitignore/.ignore/.engramignore and the
//! configured exclusions, detects symlink loops, and reports every file it will not read.
//! Exclusions are matched on the path as walked and on where it really is once symbolic links
//! are resolved, so a link into an excluded folder reads nothing from it.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::FilesConfig;
use crate::extract::Skip;

#[derive(Debug)]
pub enum Found {
    File(PathBuf),
    Skipped(PathBuf, Skip),
    /// Matched a configured exclusion.
    Excluded(PathBuf),
}

#[derive(Debug, thiserror::Error)]
#[error("invalid exclude pattern {pattern:?} in the config: {why}")]
pub struct PatternError {
    pattern: String,
    why: String,
}

pub fn exclusions(cfg: &FilesConfig) -> Result<GlobSet, PatternError> {
    let mut b = GlobSetBuilder::new();
    for pattern in &cfg.exclude {
        let glob = Glob::new(pattern).map_err(|e| PatternError { pattern: pattern.clone(), why: e.to_string() })?;
        b.add(glob);
    }
    b.build().map_err(|e| PatternError { pattern: String::new(), why: e.to_string() })
}

/// Whether `path`, or where it leads once symbolic links are resolved, is excluded.
pub fn is_excluded(excluded: &GlobSet, path: &Path) -> bool {
    excluded.is_match(path) || std::fs::canonicalize(path).is_ok_and(|real| real != path && excluded.is_match(&real))
}

/// Where the walk's entries really are, found cheaply: below the (resolved) root, a path is
/// where it says unless it passes through a symbolic link, and the links met are remembered.
struct Resolver {
    root: PathBuf,
    real_root: PathBuf,
    /// Symbolic links to folders met so far, with where they lead.
    links: Vec<(PathBuf, PathBuf)>,
}

impl Resolver {
    fn new(root: &Path) -> Resolver {
        let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Resolver { root: root.to_path_buf(), real_root, links: Vec::new() }
    }

    fn resolve(&mut self, e: &ignore::DirEntry) -> Option<PathBuf> {
        let path = e.path();
        if e.path_is_symlink() {
            let real = std::fs::canonicalize(path).ok()?;
            if e.file_type().is_some_and(|t| t.is_dir()) {
                self.links.push((path.to_path_buf(), real.clone()));
            }
            return Some(real);
        }
        // The deepest link this path passes through decides; else the root does.
        let (from, to) = self
            .links
            .iter()
            .filter(|(link, _)| path.starts_with(link))
            .max_by_key(|(link, _)| link.components().count())
            .map(|(l, r)| (l.as_path(), r.as_path()))
            .unwrap_or((&self.root, &self.real_root));
        Some(to.join(path.strip_prefix(from).ok()?))
    }
}

/// Every file under `roots`, in a stable order, with what was passed over and why.
pub fn walk(roots: &[PathBuf], cfg: &FilesConfig) -> Result<Vec<Found>, PatternError> {
    let excluded = exclusions(cfg)?;
    let mut out = Vec::new();
    for root in roots {
        let root = absolute(root);
        if !root.exists() && std::fs::symlink_metadata(&root).is_err() {
            out.push(Found::Skipped(root, Skip::Vanished));
            continue;
        }
        let walker = ignore::WalkBuilder::new(&root)
            .hidden(!cfg.include_hidden)
            .git_ignore(cfg.respect_ignore_files)
            .git_global(false)
            .git_exclude(cfg.respect_ignore_files)
            .ignore(cfg.respect_ignore_files)
            .require_git(false)
            .follow_links(true)
            .add_custom_ignore_filename(".engramignore")
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        let mut resolver = Resolver::new(&root);
        for entry in walker {
            match entry {
                Ok(e) => {
                    let path = e.path().to_path_buf();
                    let real = resolver.resolve(&e);
                    if excluded.is_match(&path) || real.is_some_and(|r| r != path && excluded.is_match(&r)) {
                        if e.file_type().is_some_and(|t| t.is_file()) || path == root {
                            out.push(Found::Excluded(path));
                        }
                        continue;
                    }
                    match e.file_type() {
                        Some(t) if t.is_file() => out.push(Found::File(path)),
                        Some(t) if t.is_dir() => {}
                        _ => out.push(Found::Skipped(path, Skip::NotRegular)),
                    }
                }
                Err(err) => out.push(skip_from(err, &root)),
            }
        }
    }
    Ok(out)
}

fn skip_from(err: ignore::Error, root: &Path) -> Found {
    let mut path = root.to_path_buf();
    let mut e = &err;
    loop {
        match e {
            ignore::Error::WithPath { path: p, err } => {
                path = p.clone();
                e = err;
            }
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => e = err,
            ignore::Error::Loop { child, .. } => {
                return Found::Skipped(child.clone(), Skip::SymlinkLoop)
            }
            ignore::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => return Found::Skipped(path, Skip::Vanished),
            other => return Found::Skipped(path, Skip::Unreadable(other.to_string())),
        }
    }
}

/// The absolute form of a path, without resolving symbolic links (the user's name for it).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_gitignore_exclusions_and_hidden() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("keep.txt"), "a").unwrap();
        std::fs::write(root.join("build.log"), "a").unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        std::fs::write(root.join(".hidden"), "a").unwrap();
        std::fs::create_dir(root.join("node_modules")).unwrap();
        std::fs::write(root.join("node_modules/x.js"), "a").unwrap();
        let found = walk(&[root.to_path_buf()], &FilesConfig::default()).unwrap();
        let files: Vec<String> = found
            .iter()
            .filter_map(|f| match f {
                Found::File(p) => Some(p.file_name().unwrap().to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(files, vec!["keep.txt"]);
        assert!(found.iter().any(|f| matches!(f, Found::Excluded(p) if p.ends_with("x.js"))));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loop_is_a_skip() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::os::unix::fs::symlink(d.path(), sub.join("loop")).unwrap();
        std::fs::write(sub.join("a.txt"), "a").unwrap();
        let found = walk(&[d.path().to_path_buf()], &FilesConfig::default()).unwrap();
        assert!(found.iter().any(|f| matches!(f, Found::Skipped(_, Skip::SymlinkLoop))));
        assert_eq!(found.iter().filter(|f| matches!(f, Found::File(_))).count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn exclusions_match_where_symlinks_lead() {
        let d = tempfile::tempdir().unwrap();
        let private = d.path().join("elsewhere/private");
        std::fs::create_dir_all(private.join("deeper")).unwrap();
        std::fs::write(private.join("diary.txt"), "a").unwrap();
        std::fs::write(private.join("deeper/more.txt"), "a").unwrap();
        let open = d.path().join("elsewhere/open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::write(open.join("fine.txt"), "a").unwrap();
        let root = d.path().join("watched");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("notes.txt"), "a").unwrap();
        std::os::unix::fs::symlink(&private, root.join("to-private")).unwrap();
        std::os::unix::fs::symlink(private.join("diary.txt"), root.join("diary-link.txt")).unwrap();
        std::os::unix::fs::symlink(&open, root.join("to-open")).unwrap();
        // A link inside a linked folder that leads back into the excluded one.
        std::os::unix::fs::symlink(&private, open.join("back")).unwrap();
        let cfg = FilesConfig { exclude: vec!["**/private/**".into()], ..FilesConfig::default() };
        let found = walk(std::slice::from_ref(&root), &cfg).unwrap();
        let names = |want: fn(&Found) -> Option<&PathBuf>| -> Vec<String> {
            let mut v: Vec<String> =
                found.iter().filter_map(want).map(|p| p.strip_prefix(&root).unwrap().to_string_lossy().into_owned()).collect();
            v.sort();
            v
        };
        let files = names(|f| match f {
            Found::File(p) => Some(p),
            _ => None,
        });
        assert_eq!(files, vec!["notes.txt", "to-open/fine.txt"]);
        let excluded = names(|f| match f {
            Found::Excluded(p) => Some(p),
            _ => None,
        });
        assert_eq!(
            excluded,
            vec!["diary-link.txt", "to-open/back/deeper/more.txt", "to-open/back/diary.txt", "to-private/deeper/more.txt", "to-private/diary.txt"]
        );
        let set = exclusions(&cfg).unwrap();
        assert!(is_excluded(&set, &root.join("diary-link.txt")));
        assert!(!is_excluded(&set, &root.join("notes.txt")));
    }

    #[test]
    fn missing_root_is_reported() {
        let found = walk(&[PathBuf::from("/nonexistent/engram-test")], &FilesConfig::default()).unwrap();
        assert!(matches!(found[0], Found::Skipped(_, Skip::Vanished)));
    }
}
