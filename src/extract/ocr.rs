//! Screen text by OCR (Tesseract through libtesseract): words with boxes and confidences, and
//! the text they make, with the spaces Tesseract puts between CJK characters taken out. The
//! engine itself (`Ocr`) is built with the `capture` feature; the words and their layout are
//! read wherever a stored frame is shown.

use serde::{Deserialize, Serialize};
#[cfg(feature = "capture")]
use tesseract::{PageSegMode, Tesseract};

#[cfg(feature = "capture")]
use super::picture::Image;
use super::picture::Rect;

#[cfg(feature = "capture")]
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error("Tesseract could not start with languages {langs:?}: {why}. Install the language data (Debian: tesseract-ocr-eng tesseract-ocr-chi-sim) or change [screen] ocr_languages")]
    Init { langs: String, why: String },
    #[error("Tesseract failed on a frame: {0}")]
    Recognise(String),
}

/// One recognised word, its box in screen pixels and Tesseract's confidence (0–100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    #[serde(rename = "box")]
    pub rect: Rect,
    pub conf: f32,
    /// Block, paragraph and line numbers, to rebuild the layout.
    #[serde(skip)]
    pub line: (u32, u32, u32),
}

#[cfg(feature = "capture")]
pub struct Ocr {
    langs: String,
    min_confidence: f32,
    engine: Option<Tesseract>,
}

#[cfg(feature = "capture")]
impl Ocr {
    pub fn new(langs: &str, min_confidence: f32) -> Result<Ocr, OcrError> {
        let mut ocr = Ocr { langs: langs.to_string(), min_confidence, engine: None };
        ocr.engine = Some(ocr.start()?);
        Ok(ocr)
    }

    fn start(&self) -> Result<Tesseract, OcrError> {
        Tesseract::new(None, Some(&self.langs)).map_err(|e| OcrError::Init { langs: self.langs.clone(), why: e.to_string() })
    }

    /// The words of `img`, with boxes moved by `offset` (where the crop sits on the screen).
    /// `one_window`: the image is one window. Its text is then read as one column of lines
    /// (PSM 4): automatic layout lost whole lines of sparse terminal text here. A whole screen
    /// gets automatic layout, so side-by-side windows do not merge into one line.
    pub fn words(&mut self, img: &Image, offset: (i32, i32), one_window: bool) -> Result<Vec<Word>, OcrError> {
        if img.width < 8 || img.height < 8 {
            return Ok(Vec::new());
        }
        let mut engine = match self.engine.take() {
            Some(e) => e,
            None => self.start()?,
        };
        engine.set_page_seg_mode(if one_window { PageSegMode::PsmSingleColumn } else { PageSegMode::PsmAuto });
        let mut engine = engine
            .set_frame(&img.rgb, img.width as i32, img.height as i32, 3, img.width as i32 * 3)
            .map(|t| t.set_source_resolution(96))
            .map_err(|e| OcrError::Recognise(e.to_string()))?
            .recognize()
            .map_err(|e| OcrError::Recognise(e.to_string()))?;
        let tsv = engine.get_tsv_text(0).map_err(|e| OcrError::Recognise(e.to_string()));
        self.engine = Some(engine);
        Ok(parse_tsv(&tsv?, offset, self.min_confidence))
    }

    /// The text of a scanned page: `gray` holds `width` × `height` 8-bit gray pixels, row by
    /// row, rendered at `dpi`. Automatic layout (a page may have columns), laid out by [`layout`].
    pub fn page_text(&mut self, gray: &[u8], width: u32, height: u32, dpi: u32) -> Result<String, OcrError> {
        // In the extraction worker, a page of OCR restarts the file's clock (see worker::progress).
        super::worker::progress();
        if width < 8 || height < 8 || gray.len() < width as usize * height as usize {
            return Ok(String::new());
        }
        let mut engine = match self.engine.take() {
            Some(e) => e,
            None => self.start()?,
        };
        engine.set_page_seg_mode(PageSegMode::PsmAuto);
        let mut engine = engine
            .set_frame(gray, width as i32, height as i32, 1, width as i32)
            .map(|t| t.set_source_resolution(dpi as i32))
            .map_err(|e| OcrError::Recognise(e.to_string()))?
            .recognize()
            .map_err(|e| OcrError::Recognise(e.to_string()))?;
        let tsv = engine.get_tsv_text(0).map_err(|e| OcrError::Recognise(e.to_string()));
        self.engine = Some(engine);
        Ok(layout(&parse_tsv(&tsv?, (0, 0), self.min_confidence)).0)
    }
}

/// Words from Tesseract's TSV output (level 5 rows), dropping empty and low-confidence ones.
#[cfg(any(feature = "capture", test))]
fn parse_tsv(tsv: &str, (dx, dy): (i32, i32), min_confidence: f32) -> Vec<Word> {
    let mut out = Vec::new();
    for line in tsv.lines() {
        let f: Vec<&str> = line.splitn(12, '\t').collect();
        if f.len() < 12 || f[0] != "5" {
            continue;
        }
        let num = |i: usize| f[i].trim().parse::<i64>().unwrap_or(0);
        let conf: f32 = f[10].trim().parse().unwrap_or(-1.0);
        let text = f[11].trim();
        if text.is_empty() || conf < min_confidence {
            continue;
        }
        out.push(Word {
            text: text.to_string(),
            rect: Rect { x: num(6) as i32 + dx, y: num(7) as i32 + dy, w: num(8).max(0) as u32, h: num(9).max(0) as u32 },
            conf,
            line: (num(2) as u32, num(3) as u32, num(4) as u32),
        });
    }
    out
}

/// The text of `words`: words of a line joined by spaces (none between CJK characters), lines
/// by newlines, paragraphs by blank lines. Also returns each word's byte range in that text.
pub fn layout(words: &[Word]) -> (String, Vec<std::ops::Range<usize>>) {
    let mut text = String::new();
    let mut ranges = Vec::with_capacity(words.len());
    let mut prev: Option<&Word> = None;
    for w in words {
        if let Some(p) = prev {
            if p.line.0 != w.line.0 || p.line.1 != w.line.1 {
                text.push_str("\n\n");
            } else if p.line.2 != w.line.2 {
                text.push('\n');
            } else if !(ends_cjk(&p.text) && starts_cjk(&w.text)) {
                text.push(' ');
            }
        }
        let start = text.len();
        text.push_str(&w.text);
        ranges.push(start..text.len());
        prev = Some(w);
    }
    (text, ranges)
}

/// The boxes of the words (stored as JSON) that match `query`, to draw around them.
pub fn boxes_matching(words_json: &[u8], query: &str) -> Vec<Rect> {
    let words: Vec<Word> = serde_json::from_slice(words_json).unwrap_or_default();
    words.iter().filter(|w| matches(&w.text, query)).map(|w| w.rect).collect()
}

/// Whether an OCR word is one of the words of `query` (ignoring case and punctuation; for CJK,
/// whether they share text, as OCR splits Chinese differently from the query).
pub fn matches(word: &str, query: &str) -> bool {
    let norm = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let w = norm(word);
    if w.is_empty() {
        return false;
    }
    query.split_whitespace().map(norm).filter(|q| !q.is_empty()).any(|q| {
        q == w || (w.chars().any(is_cjk) && (q.contains(&w) || w.contains(&q))) || (w.len() > 3 && w.starts_with(&q) && q.len() >= 4)
    })
}

fn is_cjk(c: char) -> bool {
    crate::text::is_cjk(c) || matches!(c, '，' | '。' | '、' | '：' | '；' | '！' | '？' | '（' | '）')
}

fn ends_cjk(s: &str) -> bool {
    s.chars().next_back().is_some_and(is_cjk)
}

fn starts_cjk(s: &str) -> bool {
    s.chars().next().is_some_and(is_cjk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, line: (u32, u32, u32), x: i32) -> Word {
        Word { text: text.into(), rect: Rect { x, y: 0, w: 10, h: 10 }, conf: 90.0, line }
    }

    #[test]
    fn layout_joins_latin_words_with_spaces_and_cjk_without() {
        let words = [
            word("Lease", (1, 1, 1), 0),
            word("ends", (1, 1, 1), 20),
            word("租约", (1, 1, 2), 0),
            word("到期", (1, 1, 2), 20),
            word("next", (2, 1, 1), 0),
        ];
        let (text, ranges) = layout(&words);
        assert_eq!(text, "Lease ends\n租约到期\n\nnext");
        assert_eq!(&text[ranges[3].clone()], "到期");
    }

    #[test]
    fn tsv_rows_become_words_and_noise_is_dropped() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   4\t1\t1\t1\t1\t0\t5\t5\t100\t12\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t5\t5\t40\t12\t96.5\tHello\n\
                   5\t1\t1\t1\t1\t2\t50\t5\t8\t12\t12.0\t~\n";
        let words = parse_tsv(tsv, (100, 200), 50.0);
        assert_eq!(words.len(), 1);
        assert_eq!(words[0].text, "Hello");
        assert_eq!(words[0].rect, Rect { x: 105, y: 205, w: 40, h: 12 });
    }
}
