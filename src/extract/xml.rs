//! A streaming walk over the XML parts of office files and e-books (quick-xml), with a nesting
//! cap, and the text rules each format needs: which elements end a line, hold text, are tabs
//! or breaks, or are skipped with everything inside.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::formats::tidy_lines;
use super::{DocType, Document, Section, Skip};

/// Deeper than any document a person makes; a deeper part is refused, not walked.
pub const MAX_DEPTH: usize = 256;

pub enum Ev<'a> {
    Start(&'a BytesStart<'a>),
    /// The qualified name of the element that ends.
    End(&'a str),
    Text(&'a str),
}

/// Walks `xml`, handing each start, end and piece of text (entities resolved) to `f`.
/// Empty elements come as a start and an end.
pub fn walk(xml: &str, mut f: impl FnMut(Ev<'_>)) -> Result<(), Skip> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = false;
    let mut depth = 0usize;
    let bad = || Skip::Corrupt("malformed XML in the document".into());
    loop {
        match reader.read_event().map_err(|_| bad())? {
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Skip::Corrupt("XML nested too deep".into()));
                }
                f(Ev::Start(&e));
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                f(Ev::End(&e));
            }
            Event::Text(t) => f(Ev::Text(&t.xml10_content())),
            Event::CData(t) => f(Ev::Text(&t.xml10_content())),
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    f(Ev::Text(c.encode_utf8(&mut [0; 4])));
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                    f(Ev::Text(s));
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// The name without its namespace prefix.
pub fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

/// An attribute by local name (any prefix), unescaped.
pub fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .filter_map(Result::ok)
        .find(|a| local(a.key.as_ref()) == name)
        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
}

/// How one format's XML becomes text. Names match an element's local name or its qualified name.
pub struct Rules {
    /// Elements that end a line.
    pub para: &'static [&'static str],
    /// When not empty, text counts only inside these (OOXML's `w:t`, `a:t`).
    pub text_in: &'static [&'static str],
    pub tab: &'static [&'static str],
    pub brk: &'static [&'static str],
    /// Dropped with everything inside.
    pub skip: &'static [&'static str],
    /// ODF's `text:s`: as many spaces as its `text:c` says.
    pub spaces: Option<&'static str>,
    /// An element that begins a new section, and the word for it ("slide").
    pub section: Option<(&'static str, &'static str)>,
    /// Line ends in character data are layout, not text (ODF).
    pub newline_is_space: bool,
}

fn is(name: &str, set: &[&str]) -> bool {
    set.iter().any(|s| *s == name || *s == local(name))
}

/// Text collected part by part; each part may start a labelled section.
#[derive(Default)]
pub struct Builder {
    parts: Vec<(Option<String>, String)>,
    /// Lines kept as pushed (tabs between cells), only blank lines dropped.
    keep_lines: bool,
}

impl Builder {
    /// For text whose lines and tabs are already as they should be (spreadsheet rows).
    pub fn keeping_lines() -> Builder {
        Builder { keep_lines: true, ..Default::default() }
    }

    pub fn section(&mut self, label: impl Into<String>) {
        self.parts.push((Some(label.into()), String::new()));
    }

    pub fn push(&mut self, s: &str) {
        if self.parts.is_empty() {
            self.parts.push((None, String::new()));
        }
        self.parts.last_mut().expect("a part").1.push_str(s);
    }

    /// Adds the text of one XML part by `rules`.
    pub fn add_xml(&mut self, xml: &str, rules: &Rules) -> Result<(), Skip> {
        self.add_xml_with(xml, rules, |_| None)
    }

    /// As `add_xml`, and `hook` sees every event outside skipped elements first; what it
    /// returns is added (a list label at the end of a paragraph's properties).
    pub fn add_xml_with(&mut self, xml: &str, rules: &Rules, mut hook: impl FnMut(&Ev<'_>) -> Option<String>) -> Result<(), Skip> {
        let mut skipping = 0usize;
        let mut inside_text = 0usize;
        let mut sections = 0usize;
        walk(xml, |ev| {
            let skipped_start = matches!(&ev, Ev::Start(e) if skipping > 0 || is(e.name().0, rules.skip));
            if skipping == 0 && !skipped_start {
                if let Some(s) = hook(&ev) {
                    self.push(&s);
                }
            }
            self.event(ev, rules, &mut skipping, &mut inside_text, &mut sections)
        })
    }

    fn event(&mut self, ev: Ev<'_>, rules: &Rules, skipping: &mut usize, inside_text: &mut usize, sections: &mut usize) {
        match ev {
            Ev::Start(e) => {
                let name: &str = e.name().0;
                if *skipping > 0 || is(name, rules.skip) {
                    *skipping += 1;
                    return;
                }
                if is(name, rules.text_in) {
                    *inside_text += 1;
                }
                if let Some((el, word)) = rules.section {
                    if is(name, &[el]) {
                        *sections += 1;
                        self.section(format!("{word} {sections}"));
                    }
                }
                if is(name, rules.tab) {
                    self.push("\t");
                } else if is(name, rules.brk) {
                    self.push("\n");
                } else if rules.spaces.is_some_and(|s| is(name, &[s])) {
                    let n = attr(e, "c").and_then(|c| c.parse::<usize>().ok()).unwrap_or(1).min(64);
                    self.push(&" ".repeat(n));
                }
            }
            Ev::End(name) => {
                if *skipping > 0 {
                    *skipping -= 1;
                    return;
                }
                if is(name, rules.text_in) {
                    *inside_text = inside_text.saturating_sub(1);
                }
                if is(name, rules.para) {
                    self.push("\n");
                }
            }
            Ev::Text(t) => {
                if *skipping == 0 && (rules.text_in.is_empty() || *inside_text > 0) {
                    if rules.newline_is_space && t.contains(['\n', '\r']) {
                        self.push(&t.replace(['\n', '\r'], " "));
                    } else {
                        self.push(t);
                    }
                }
            }
        }
    }

    /// The text, each part tidied (spaces and blank lines collapsed), and where each labelled part
    /// begins. Parts left with no text are dropped.
    pub fn finish(self, doc_type: DocType) -> Document {
        let mut text = String::new();
        let mut sections = Vec::new();
        for (label, raw) in self.parts {
            let part = if self.keep_lines {
                raw.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n")
            } else {
                tidy_lines(&raw)
            };
            if part.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            if let Some(label) = label {
                sections.push(Section { start: text.len(), label });
            }
            text.push_str(&part);
        }
        Document { sections, ..Document::new(text, doc_type) }
    }
}

/// The text of the first element of each of `names` (local or qualified), trimmed, if not empty.
pub fn first_texts(xml: &str, names: &[&str]) -> Vec<Option<String>> {
    let mut found: Vec<Option<String>> = vec![None; names.len()];
    let mut current: Option<(usize, String)> = None;
    let _ = walk(xml, |ev| match ev {
        Ev::Start(e) => {
            if current.is_none() {
                let name: &str = e.name().0;
                if let Some(i) = names.iter().position(|n| *n == name || *n == local(name)) {
                    if found[i].is_none() {
                        current = Some((i, String::new()));
                    }
                }
            }
        }
        Ev::Text(t) => {
            if let Some((_, s)) = &mut current {
                s.push_str(t);
            }
        }
        Ev::End(name) => {
            if let Some((i, s)) = &current {
                if names[*i] == name || names[*i] == local(name) {
                    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
                    found[*i] = (!s.is_empty()).then_some(s);
                    current = None;
                }
            }
        }
    });
    found
}

/// An OPC relationships part: (Id, Type, Target) of each relationship.
pub fn relationships(xml: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let _ = walk(xml, |ev| {
        if let Ev::Start(e) = ev {
            if local(e.name().0) == "Relationship" {
                if let (Some(id), Some(target)) = (attr(e, "Id"), attr(e, "Target")) {
                    out.push((id, attr(e, "Type").unwrap_or_default(), target));
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODF: Rules = Rules {
        para: &["p", "h"],
        text_in: &[],
        tab: &["tab"],
        brk: &["line-break"],
        skip: &["tracked-changes"],
        spaces: Some("s"),
        section: Some(("page", "slide")),
        newline_is_space: true,
    };

    #[test]
    fn rules_make_lines_tabs_spaces_and_sections() {
        let xml = r#"<r xmlns:t="x" xmlns:d="y"><d:page><t:p>a<t:s t:c="3"/>b<t:tab/>c &amp; &#x4E2D;</t:p></d:page>
            <t:tracked-changes><t:p>deleted</t:p></t:tracked-changes><d:page><t:h>two
            lines</t:h><t:p>x<t:line-break/>y</t:p></d:page></r>"#;
        let mut b = Builder::default();
        b.add_xml(xml, &ODF).unwrap();
        let d = b.finish(DocType::Slides);
        assert_eq!(d.text, "a b c & 中\n\ntwo lines\nx\ny");
        assert_eq!(d.sections, vec![Section { start: 0, label: "slide 1".into() }, Section { start: 13, label: "slide 2".into() }]);
    }

    #[test]
    fn text_only_inside_text_elements() {
        let rules = Rules { para: &["p"], text_in: &["t"], tab: &[], brk: &[], skip: &["Fallback"], spaces: None, section: None, newline_is_space: false };
        let xml = r#"<w:b xmlns:w="w" xmlns:mc="m"><w:p><w:instrText>PAGE</w:instrText><w:t>seen</w:t><mc:Fallback><w:t>twice</w:t></mc:Fallback></w:p></w:b>"#;
        let mut b = Builder::default();
        b.add_xml(xml, &rules).unwrap();
        assert_eq!(b.finish(DocType::Word).text, "seen");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let xml = "<a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(walk(&xml, |_| {}), Err(Skip::Corrupt(_))));
    }

    #[test]
    fn metadata_and_relationships() {
        let core = r#"<cp:coreProperties xmlns:dc="d" xmlns:cp="c"><dc:title> Lease
          notes </dc:title><dc:creator>Mei</dc:creator></cp:coreProperties>"#;
        assert_eq!(first_texts(core, &["title", "creator", "subject"]), vec![Some("Lease notes".into()), Some("Mei".into()), None]);
        let rels = r#"<Relationships><Relationship Id="rId2" Type="http://x/slide" Target="slides/slide1.xml"/></Relationships>"#;
        assert_eq!(relationships(rels), vec![("rId2".into(), "http://x/slide".into(), "slides/slide1.xml".into())]);
    }
}
