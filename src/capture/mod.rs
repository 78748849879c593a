//! Where memories come from. For now: files under the folders the user names.
//! Screen capture and the folder watcher join here (see DESIGN.md).

pub mod files;
