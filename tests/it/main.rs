//! The end-to-end tests, one binary (issue 19): each module was a test binary of its own, every
//! one of them linking the whole library with poppler, Tesseract and candle.
//! `cargo test --test it web::` runs one module.

#[path = "../util/mod.rs"]
mod util;
#[path = "../util/pdf.rs"]
mod make_pdf;

mod accessibility;
mod ask;
mod backup;
mod caption;
mod daemon;
mod eval;
mod extract;
mod formats;
mod gate;
mod gnome;
mod kde;
mod hardening;
mod ingest;
mod llm;
mod pdf;
mod privacy;
mod search;
mod semantic;
mod serve;
mod wayland;
mod web;
