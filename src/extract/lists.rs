//! List labels, which are not text in a document but drawn by the word processor from its
//! numbering definitions: counted here as a reader sees them ("2.", "b)", "iv.", "1.3"), and
//! put before each numbered paragraph. Bullets give none.

use std::collections::HashMap;

use super::xml::{self, Ev};

/// A level of a Word list: where it starts, its number format and its label pattern ("%1.%2)").
#[derive(Clone, Default)]
struct Level {
    start: i64,
    format: String,
    text: String,
}

/// DOCX: `word/numbering.xml`, and paragraph styles' numbering from `styles.xml`.
#[derive(Default)]
pub struct WordLists {
    /// abstractNumId → its nine levels.
    abstracts: HashMap<String, Vec<Level>>,
    /// numId → (abstractNumId, start overrides by level).
    nums: HashMap<String, (String, HashMap<usize, i64>)>,
    /// A paragraph style's own numbering: styleId → (numId, level).
    styles: HashMap<String, (Option<String>, Option<usize>)>,
    /// numId → the count at each level.
    counts: HashMap<String, [i64; 9]>,
    /// The paragraph being read: its style, numId and level, and whether its label is out.
    style: Option<String>,
    num: Option<String>,
    level: Option<usize>,
    labelled: bool,
}

fn val(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    xml::attr(e, "val")
}

impl WordLists {
    pub fn new(numbering: Option<&str>, styles: Option<&str>) -> WordLists {
        let mut l = WordLists::default();
        let (mut abs, mut lvl, mut num, mut over, mut style) = (None::<String>, None::<usize>, None::<String>, None::<usize>, None::<String>);
        if let Some(x) = numbering {
            let _ = xml::walk(x, |ev| {
                let Ev::Start(e) = ev else { return };
                match xml::local(e.name().0) {
                    "abstractNum" => abs = xml::attr(e, "abstractNumId"),
                    "num" => num = xml::attr(e, "numId"),
                    "lvl" => lvl = xml::attr(e, "ilvl").and_then(|v| v.parse().ok()).filter(|&v: &usize| v < 9),
                    "lvlOverride" => over = xml::attr(e, "ilvl").and_then(|v| v.parse().ok()).filter(|&v: &usize| v < 9),
                    "abstractNumId" => {
                        if let (Some(n), Some(a)) = (&num, val(e)) {
                            l.nums.entry(n.clone()).or_default().0 = a;
                        }
                    }
                    "startOverride" => {
                        if let (Some(n), Some(o), Some(v)) = (&num, over, val(e).and_then(|v| v.parse().ok())) {
                            l.nums.entry(n.clone()).or_default().1.insert(o, v);
                        }
                    }
                    name @ ("start" | "numFmt" | "lvlText") => {
                        if let (Some(a), Some(i), Some(v)) = (&abs, lvl, val(e)) {
                            let levels = l.abstracts.entry(a.clone()).or_insert_with(|| vec![Level { start: 1, ..Default::default() }; 9]);
                            match name {
                                "start" => levels[i].start = v.parse().unwrap_or(1),
                                "numFmt" => levels[i].format = v,
                                _ => levels[i].text = v,
                            }
                        }
                    }
                    _ => {}
                }
            });
        }
        if let Some(x) = styles {
            let _ = xml::walk(x, |ev| {
                let Ev::Start(e) = ev else { return };
                match xml::local(e.name().0) {
                    "style" => style = xml::attr(e, "styleId"),
                    "numId" => {
                        if let Some(s) = &style {
                            l.styles.entry(s.clone()).or_default().0 = val(e);
                        }
                    }
                    "ilvl" => {
                        if let Some(s) = &style {
                            l.styles.entry(s.clone()).or_default().1 = val(e).and_then(|v| v.parse().ok());
                        }
                    }
                    _ => {}
                }
            });
        }
        l
    }

    /// Follows the document's events; at the end of a numbered paragraph's properties,
    /// its label.
    pub fn event(&mut self, ev: &Ev<'_>) -> Option<String> {
        match ev {
            Ev::Start(e) => match xml::local(e.name().0) {
                "p" => (self.style, self.num, self.level, self.labelled) = (None, None, None, false),
                "pStyle" => self.style = val(e),
                "numId" => self.num = val(e),
                "ilvl" => self.level = val(e).and_then(|v| v.parse().ok()),
                _ => {}
            },
            Ev::End(name) if xml::local(name) == "pPr" && !self.labelled => {
                self.labelled = true;
                return self.label();
            }
            _ => {}
        }
        None
    }

    fn label(&mut self) -> Option<String> {
        let by_style = self.style.as_ref().and_then(|s| self.styles.get(s)).cloned().unwrap_or_default();
        let num = self.num.clone().or(by_style.0)?;
        let level = self.level.or(by_style.1).unwrap_or(0).min(8);
        let (abs, overrides) = self.nums.get(&num)?;
        let levels = self.abstracts.get(abs)?;
        let start = |i: usize| overrides.get(&i).copied().unwrap_or(levels[i].start);
        let counts = self.counts.entry(num).or_insert_with(|| {
            let mut c = [0; 9];
            for (i, c) in c.iter_mut().enumerate() {
                *c = start(i) - 1;
            }
            c
        });
        counts[level] += 1;
        for (i, count) in counts.iter_mut().enumerate().take(9).skip(level + 1) {
            *count = start(i) - 1;
        }
        let lvl = &levels[level];
        if matches!(lvl.format.as_str(), "bullet" | "none") || lvl.text.is_empty() {
            return None;
        }
        let mut label = lvl.text.clone();
        for i in (0..=level).rev() {
            label = label.replace(&format!("%{}", i + 1), &number(counts[i].max(0), &levels[i].format));
        }
        Some(format!("{label} "))
    }
}

/// A count in a list's number format.
pub fn number(n: i64, format: &str) -> String {
    let letters = |upper: bool| {
        // a..z, then aa..zz, as Word counts.
        let base = if upper { b'A' } else { b'a' };
        let c = (base + ((n.max(1) - 1) % 26) as u8) as char;
        c.to_string().repeat(((n.max(1) - 1) / 26 + 1) as usize)
    };
    match format {
        "lowerLetter" => letters(false),
        "upperLetter" => letters(true),
        "lowerRoman" => roman(n).to_lowercase(),
        "upperRoman" => roman(n),
        "decimalZero" => format!("{n:02}"),
        "ordinal" => {
            let suffix = match (n % 10, n % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{n}{suffix}")
        }
        _ => n.to_string(),
    }
}

fn roman(mut n: i64) -> String {
    if !(1..4000).contains(&n) {
        return n.to_string();
    }
    let mut out = String::new();
    for (v, s) in [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")] {
        while n >= v {
            out.push_str(s);
            n -= v;
        }
    }
    out
}

/// A numbered level of an OpenDocument list style.
#[derive(Clone, Default)]
struct OdfLevel {
    format: String,
    prefix: String,
    suffix: String,
    shown: usize,
    start: i64,
}

/// OpenDocument's list labels, from the list styles (`text:list-level-style-number`): the
/// number of each `text:list-item` at its depth, before its first paragraph.
#[derive(Default)]
pub struct OdfLists {
    /// List style name → its numbered levels (1-based level → format).
    styles: HashMap<String, HashMap<usize, OdfLevel>>,
    /// The lists open around the text: their style.
    open: Vec<Option<String>>,
    /// Counts by style, one per level.
    counts: HashMap<String, [i64; 10]>,
    /// A label waiting for the item's first paragraph.
    pending: Option<String>,
}

impl OdfLists {
    pub fn new(parts: &[Option<&str>]) -> OdfLists {
        let mut l = OdfLists::default();
        for part in parts.iter().flatten() {
            let mut style = None;
            let _ = xml::walk(part, |ev| {
                let Ev::Start(e) = ev else { return };
                match e.name().0 {
                    "text:list-style" => style = xml::attr(e, "name"),
                    "text:list-level-style-number" => {
                        let (Some(s), Some(level)) = (&style, xml::attr(e, "level").and_then(|v| v.parse::<usize>().ok()).filter(|&v| (1..=10).contains(&v))) else { return };
                        let level_style = OdfLevel {
                            format: xml::attr(e, "num-format").unwrap_or_default(),
                            prefix: xml::attr(e, "num-prefix").unwrap_or_default(),
                            suffix: xml::attr(e, "num-suffix").unwrap_or_default(),
                            shown: xml::attr(e, "display-levels").and_then(|v| v.parse().ok()).unwrap_or(1),
                            start: xml::attr(e, "start-value").and_then(|v| v.parse().ok()).unwrap_or(1),
                        };
                        l.styles.entry(s.clone()).or_default().insert(level, level_style);
                    }
                    _ => {}
                }
            });
        }
        l
    }

    pub fn event(&mut self, ev: &Ev<'_>) -> Option<String> {
        match ev {
            Ev::Start(e) => match e.name().0 {
                "text:list" => {
                    // A nested list without a style of its own takes its parent's.
                    let style = xml::attr(e, "style-name").or_else(|| self.open.last().cloned().flatten());
                    let continues = xml::attr(e, "continue-numbering").as_deref() == Some("true") || xml::attr(e, "continue-list").is_some();
                    if self.open.is_empty() && !continues {
                        if let Some(s) = &style {
                            self.counts.remove(s);
                        }
                    }
                    self.open.push(style);
                }
                "text:list-item" => self.pending = self.item(),
                "text:list-header" => self.pending = None,
                "text:p" | "text:h" => return self.pending.take(),
                _ => {}
            },
            Ev::End(name) if *name == "text:list" => {
                self.open.pop();
            }
            _ => {}
        }
        None
    }

    /// Counts one item at the current depth and gives its label, if its level is numbered.
    fn item(&mut self) -> Option<String> {
        let depth = self.open.len().clamp(1, 10);
        let style = self.open.last().cloned().flatten()?;
        let levels = self.styles.get(&style)?;
        let start = |i: usize| levels.get(&i).map_or(1, |l| l.start);
        let counts = self.counts.entry(style.clone()).or_insert_with(|| {
            let mut c = [0; 10];
            for (i, c) in c.iter_mut().enumerate() {
                *c = start(i + 1) - 1;
            }
            c
        });
        counts[depth - 1] += 1;
        for (i, count) in counts.iter_mut().enumerate().take(10).skip(depth) {
            *count = start(i + 1) - 1;
        }
        let level = levels.get(&depth)?;
        let format = |f: &str| match f {
            "a" => "lowerLetter",
            "A" => "upperLetter",
            "i" => "lowerRoman",
            "I" => "upperRoman",
            _ => "decimal",
        };
        if level.format.is_empty() {
            return None;
        }
        let first = depth.saturating_sub(level.shown.max(1));
        let numbers: Vec<String> = (first..depth)
            .map(|i| number(counts[i].max(0), format(levels.get(&(i + 1)).map_or("1", |l| l.format.as_str()))))
            .collect();
        Some(format!("{}{}{} ", level.prefix, numbers.join("."), level.suffix))
    }
}
