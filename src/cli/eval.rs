//! How `engram eval` prints a personal set's scores and writes its rows.

use std::io::Write;
use std::path::Path;

use engram::eval::personal::PersonalRun;
use engram::Error;
use serde_json::json;

pub(super) fn print_personal(run: &PersonalRun, as_json: bool) {
    let answers = run.answer_scores();
    let searches = run.search_scores();
    if as_json {
        println!("{}", json!({ "files": run.files, "answers": answers, "searches": searches }));
        return;
    }
    if !run.answers.is_empty() {
        println!("answers ({} files)          right  quoted  cited  contra  wrong  missed  not-found", run.files);
        for (lang, s) in &answers {
            println!(
                "  {lang:<4} {:>3} + {:>3} unanswerable  {:>5.1}%  {:>5.1}%  {:>5.1}%  {:>6}  {:>5}  {:>6}  {:>8.1}%",
                s.answerable,
                s.unanswerable,
                100.0 * s.right,
                100.0 * s.quoted,
                100.0 * s.cited_right,
                s.contradicted,
                s.wrong,
                s.missed,
                100.0 * s.abstained
            );
        }
        let mut millis: Vec<u64> = run.answers.iter().map(|r| r.millis).collect();
        millis.sort_unstable();
        println!("  ask p50 {} ms, p90 {} ms", millis[millis.len() / 2], millis[millis.len() * 9 / 10]);
    }
    if !run.searches.is_empty() {
        println!("searches      top-3   MRR@10  queries");
        for (mode, langs) in &searches {
            for (lang, s) in langs {
                println!("  {mode:<8} {lang:<4} {:>5.1}%  {:.3}  {:>5}", 100.0 * s.top3, s.mrr10, s.queries);
            }
        }
    }
}

/// One JSON line per answer and per search, for reading what went wrong.
pub(super) fn write_personal_rows(path: &Path, run: &PersonalRun) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Usage(format!("cannot write {}: {e}", path.display()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    for r in &run.answers {
        writeln!(f, "{}", serde_json::to_string(r).expect("rows serialise")).map_err(fail)?;
    }
    for r in &run.searches {
        writeln!(f, "{}", serde_json::to_string(r).expect("rows serialise")).map_err(fail)?;
    }
    f.flush().map_err(fail)
}
