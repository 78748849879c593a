//! Where memories come from: files under the folders the user names (and the watcher that
//! follows them), and screen frames with the active window's title and app, passed through the
//! privacy gate before anything is kept.

pub mod files;
pub mod frames;
pub mod privacy;
pub mod screen;
pub mod watch;
pub mod x11;
