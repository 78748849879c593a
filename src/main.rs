//! `engram`: every command but the daemon's own work, which `engram-daemon` does.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main(None)
}
