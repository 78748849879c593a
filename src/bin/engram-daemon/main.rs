//! `engram-daemon`: what `engram daemon` becomes. The same command line as `engram`, with the
//! daemon (screen capture, Tesseract, file watching) linked in.

#[path = "../../cli/mod.rs"]
mod cli;
mod record;
mod run;

fn main() -> std::process::ExitCode {
    cli::main(Some(run::run))
}
