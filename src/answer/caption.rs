//! One-line captions for memories, written in the background by the local model.
//!
//! The 135M model cannot be trusted to write a caption of its own: asked for one it wrote
//! "This is a great example of how to manage your finances effectively" under meeting notes
//! (BENCHMARKS.md). So it chooses instead: each sentence of the memory that could serve, on one
//! line and cut to [`CAPTION_WORDS`], is weighed whole as the model's reply to "what is this
//! about"; the likeliest per token wins, helped by how much of it the rest of the memory
//! repeats. A caption is therefore always the memory's own words, never an invention, and picks
//! out the line that says what the memory is about — most useful for a screen's OCR text, where
//! the first lines are menus and tabs.

use std::collections::HashSet;

use super::rank::{is_label, is_title_line, words_of};
use crate::index::analyze;
use crate::text::is_cjk;
use crate::llm::{Generator, LlmError};
use crate::query::{parse, snippet};

/// Weight of a line's centrality beside the model's mean log-probability per token.
const CENTRAL_WEIGHT: f32 = 1.0;
/// Longest caption, in words (a Chinese character counts half); a longer line is cut and ends
/// in "…".
const CAPTION_WORDS: usize = 24;
/// Fewest words that matter (index terms other than function words) a line needs to say what
/// a memory is about.
const MIN_TERMS: usize = 3;
/// Most lines weighed (in reading order): each costs the model one pass over its tokens.
const MAX_CANDIDATES: usize = 10;
/// How much of the memory the model reads, in bytes (about 300 tokens of English)…
const READ_BYTES: usize = 1200;
/// …and in tokens.
const READ_TOKENS: usize = 320;
/// Most tokens of candidate lines weighed for one caption.
const WEIGH_TOKENS: usize = 320;
/// Lines looked at, in bytes from the start: what a memory is about is near its top.
const SCAN_BYTES: usize = 6000;

const SYSTEM: &str = "You write a one-line caption that says what a text is about.";

/// The caption of a memory with `title` and `text`, or `None` when no line of it can serve.
pub fn caption(generator: &mut Generator, title: &str, text: &str) -> Result<Option<String>, LlmError> {
    let mut lines = candidates(title, text);
    if lines.len() < 2 {
        return Ok(lines.pop());
    }
    // The lines weighed cost one pass each over their tokens: as many as fit the budget (a
    // Chinese line is about three times the tokens of an English one of the same length).
    let mut spent = 0;
    let fit = lines.iter().take_while(|l| {
        spent += generator.count(l);
        spent <= WEIGH_TOKENS
    });
    let fit = fit.count();
    lines.truncate(fit.max(2));
    let mut head = clip(text, READ_BYTES);
    while head.len() > 64 && generator.count(head) > READ_TOKENS {
        head = clip(head, head.len() * 3 / 4);
    }
    let user = if title.trim().is_empty() { head.to_string() } else { format!("{title}\n\n{head}") };
    let prompt = generator.format().prompt(SYSTEM, &user);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let Some(weights) = generator.weigh(&prompt, &refs)? else {
        // A model that cannot weigh whole lines: the first that can serve.
        return Ok(lines.into_iter().next());
    };
    let central = centrality(title, text, &lines);
    let best = weights
        .iter()
        .zip(&central)
        .enumerate()
        .filter_map(|(i, (w, c))| w.map(|w| (i, w.log_prob / w.tokens as f32 + CENTRAL_WEIGHT * c)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    Ok(best.map(|(i, _)| lines[i].clone()))
}

/// The lines that could serve as a caption, in reading order, each on one line and cut to at
/// most [`CAPTION_WORDS`] words: not a label (mail header, heading, title line), not a line
/// the title already says, not an address, with at least [`MIN_TERMS`] words, mostly letters.
fn candidates(title: &str, text: &str) -> Vec<String> {
    let titled = words_of(title);
    let scanned = clip(text, SCAN_BYTES);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let footer = footer_start(text);
    for (start, end) in snippet::sentences(scanned) {
        let line = scanned[start..end].trim();
        if line.is_empty()
            || is_label(line)
            || is_title_line(scanned, start, end)
            || start >= footer
            || !mostly_letters(line)
            || looks_like_code(line)
            || line.contains("://")
        {
            continue;
        }
        // On one line, without list marks, Markdown emphasis and docstring quotes.
        let line = line.trim_start_matches(['-', '*', '•', '>', '/', '"', '\'', ' ']).trim_end_matches(r#"""""#).replace('*', "");
        let line = cut(&line.split_whitespace().collect::<Vec<_>>().join(" "));
        let terms = content_terms(&line);
        if terms.len() < MIN_TERMS || terms.is_subset(&titled) || !seen.insert(line.clone()) {
            continue;
        }
        out.push(line);
        if out.len() == MAX_CANDIDATES {
            break;
        }
    }
    out
}

/// A line cut to [`CAPTION_WORDS`] words (a Chinese character counts half): at the last
/// comma or semicolon in its second half, else at a word, ending in "…". Closing punctuation
/// goes.
fn cut(line: &str) -> String {
    let mut units = 0.0;
    let mut last_word = 0;
    let mut last_clause = 0;
    let mut in_word = false;
    for (i, c) in line.char_indices() {
        if is_cjk(c) {
            units += 0.5;
            last_word = i;
            in_word = false;
        } else if c.is_whitespace() {
            if in_word {
                last_word = i;
            }
            in_word = false;
        } else if !in_word {
            in_word = true;
            units += 1.0;
        }
        if [',', ';', '，', '；', '、'].contains(&c) && units >= CAPTION_WORDS as f32 / 2.0 {
            last_clause = i;
        }
        if units > CAPTION_WORDS as f32 {
            let end = if last_clause > 0 { last_clause } else { last_word };
            return format!("{}…", line[..end].trim_end_matches([',', ';', '，', '；', '、', ' ']));
        }
    }
    line.trim_end_matches(['.', '!', '?', ':', ';', ',', '。', '！', '？', '：', '；', '，']).to_string()
}

/// How many words a line holds, a Chinese character counting half.
fn words(line: &str) -> f32 {
    let cjk = line.chars().filter(|&c| is_cjk(c)).count();
    let other = line.split(|c: char| c.is_whitespace() || is_cjk(c)).filter(|w| !w.is_empty()).count();
    other as f32 + cjk as f32 / 2.0
}

/// A line's index terms that are not stop words.
fn content_terms(line: &str) -> HashSet<String> {
    words_of(line).into_iter().filter(|t| !parse::is_stop_word(t)).collect()
}

/// For each line, the share of its words that the title or the rest of the text says too: a
/// line about what the whole memory is about shares its words ("the boiler pressure valve"
/// under "Re: boiler pressure"), a pleasantry ("Thanks for letting me know") does not.
fn centrality(title: &str, text: &str, lines: &[String]) -> Vec<f32> {
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for t in analyze::analyze(clip(text, SCAN_BYTES)) {
        *counts.entry(t.text).or_default() += 1;
    }
    let titled = words_of(title);
    lines
        .iter()
        .map(|line| {
            let terms = content_terms(line);
            let shared = terms.iter().filter(|t| titled.contains(*t) || counts.get(*t).is_some_and(|&n| n >= 2)).count();
            shared as f32 / terms.len().max(1) as f32
        })
        .collect()
}

/// Whether most of a line's visible characters are letters: not code punctuation, a table
/// of figures or OCR debris.
fn mostly_letters(line: &str) -> bool {
    let visible = line.chars().filter(|c| !c.is_whitespace()).count();
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    visible > 0 && letters * 10 >= visible * 6
}

/// Where a text's footer starts: its last line when that is short and not a sentence (a
/// mail's signature "Kwik Garage, 2 Station Road", a page's "Cookie settings Accept all");
/// the text's end otherwise.
fn footer_start(text: &str) -> usize {
    let body = text.trim_end();
    let start = body.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let last = body[start..].trim();
    let sentence = last.ends_with(['.', '!', '?', '。', '！', '？']);
    if start > 0 && !sentence && words(last) <= 6.0 {
        start
    } else {
        text.len()
    }
}

/// Whether a line is a statement of a program rather than prose about it.
fn looks_like_code(line: &str) -> bool {
    // A call: a name right before its parenthesis ("copytree(", not "back (ask Tom)").
    let call = line.as_bytes().windows(2).any(|w| w[1] == b'(' && (w[0].is_ascii_alphanumeric() || w[0] == b'_'));
    call || ["{", "}", "->", "=", "::"].iter().any(|m| line.contains(m))
}

/// `text` cut to at most `bytes`, at a character boundary.
fn clip(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_headings_and_what_the_title_says_are_not_candidates() {
        let mail = "From: Mark Reid <mark@example.org>\nSubject: Boiler service\n\nHi Sam,\n\n\
                    The engineer from HeatWise will come on Thursday between 8 and 12 to look at the boiler.\n\n\
                    Thanks,\nMark";
        assert_eq!(candidates("Boiler service", mail), ["The engineer from HeatWise will come on Thursday between 8 and 12 to look at the boiler"]);
        // Nor a signature: a short last line that is not a sentence.
        let signed = "Please book the rear brakes in within six months.\n\nKwik Garage, 2 Station Road\n";
        assert_eq!(candidates("", signed), ["Please book the rear brakes in within six months"]);
        assert_eq!(candidates("", "Kwik Garage, 2 Station Road"), ["Kwik Garage, 2 Station Road"]);
        // A last line in Chinese without a full stop is a sentence when it is long enough.
        let plan = "周六上午带孩子去科技馆。\n周日和朋友去爬香山，记得带水和防晒霜";
        assert_eq!(candidates("", plan).len(), 2);
        let note = "# Lisbon trip, April\n\nFlight TP1351 leaves at 07:40; hotel is Casa do Bairro.\n";
        assert_eq!(candidates("travel-lisbon.md", note), ["Flight TP1351 leaves at 07:40; hotel is Casa do Bairro"]);
        // A line the title already says, in other case or order, adds nothing.
        assert!(candidates("Budget meeting notes", "Sprint plan\nNotes of the budget meeting.\n").is_empty());
    }

    #[test]
    fn code_and_ocr_debris_are_not_candidates() {
        let text = "fn fizzbuzz(n: u32) -> String {\nTARGET = Path(\"/media/backup-drive/photos\")\n\
                    shutil.copytree(SOURCE, dest, dirs_exist_ok=True)\n|| ## 0x3F |= 12 ;; 44\n< > C https://example.com/backup/photos/disk\n\
                    \"\"\"The backup script copies the photos folder\nto the external disk.\"\"\"";
        assert_eq!(candidates("", text), ["The backup script copies the photos folder to the external disk"]);
    }

    #[test]
    fn chinese_lines_are_candidates_and_a_long_one_is_cut_at_a_comma() {
        let text = "周末计划\n\n周六上午去公园跑步，下午去超市买菜。\n";
        assert_eq!(candidates("周末计划.md", text), ["周六上午去公园跑步，下午去超市买菜"]);
        // 48 characters count as 24 words: a longer line is cut at its last comma past halfway.
        let long = "这次出差先到上海参加三天的行业会议并拜访两家客户，然后坐高铁去杭州看新办公室的装修进度，最后回北京写总结报告交给部门经理审批。";
        assert_eq!(candidates("", long), ["这次出差先到上海参加三天的行业会议并拜访两家客户，然后坐高铁去杭州看新办公室的装修进度…"]);
    }

    #[test]
    fn a_long_clause_is_cut_and_says_so() {
        let line = "We walked from the old harbour up through the market and the long park past the museum \
                    and the church to the castle on the hill above the town before lunch.";
        let words: Vec<&str> = line.split(' ').collect();
        assert!(words.len() > CAPTION_WORDS);
        assert_eq!(candidates("", line), [format!("{}…", words[..CAPTION_WORDS].join(" "))]);
    }

    #[test]
    fn clipping_keeps_whole_characters() {
        assert_eq!(clip("会议室", 4), "会");
        assert_eq!(clip("abc", 10), "abc");
    }
}
