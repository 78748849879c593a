//! Structured formats: HTML (title kept, markup dropped), e-mail. PDFs are read by poppler in
//! the extraction worker (src/bin/engram-extract/pdf.rs).

use mail_parser::MimeHeaders;
use scraper::{Html, Node};

use super::{decode_text, DocType, Document, Skip};

const BLOCK_TAGS: &[&str] = &[
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "article",
    "header", "footer", "blockquote", "pre", "hr", "dt", "dd", "title", "nav", "aside", "main", "figcaption",
];
const SKIP_TAGS: &[&str] = &["script", "style", "noscript", "template", "svg", "head"];

pub fn html(source: &str) -> Document {
    let doc = Html::parse_document(source);
    let title = doc
        .select(&scraper::Selector::parse("title").expect("valid selector"))
        .next()
        .map(|t| collapse_spaces(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let mut text = String::new();
    let mut stack = vec![(doc.tree.root(), false)];
    // Depth-first walk; a `true` entry closes a block element.
    while let Some((node, closing)) = stack.pop() {
        if closing {
            text.push('\n');
            continue;
        }
        match node.value() {
            Node::Text(t) => text.push_str(t),
            Node::Element(e) => {
                let name = e.name();
                if SKIP_TAGS.contains(&name) {
                    continue;
                }
                let block = BLOCK_TAGS.contains(&name);
                if block {
                    text.push('\n');
                    stack.push((node, true));
                }
                for child in node.children().rev() {
                    stack.push((child, false));
                }
            }
            _ => {
                for child in node.children().rev() {
                    stack.push((child, false));
                }
            }
        }
    }
    Document { title, ..Document::new(tidy_lines(&text), DocType::Html) }
}

pub fn looks_like_email(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]);
    let mut headers = 0;
    for line in head.lines().take(30) {
        let lower = line.to_ascii_lowercase();
        if ["from:", "to:", "subject:", "date:", "message-id:", "mime-version:"].iter().any(|h| lower.starts_with(h)) {
            headers += 1;
        }
        if line.is_empty() {
            break;
        }
    }
    headers >= 3
}

pub fn email(bytes: &[u8]) -> Result<Document, Skip> {
    let Some(msg) = mail_parser::MessageParser::default().parse(bytes) else {
        return match decode_text(bytes) {
            Some((text, _)) => Ok(Document::new(text, DocType::Email)),
            None => Err(Skip::Corrupt("not a readable e-mail message".into())),
        };
    };
    let subject = msg.subject().map(str::to_string);
    let mut text = String::new();
    let people = |a: Option<&mail_parser::Address>| -> String {
        a.map(|a| {
            a.iter()
                .map(|addr| match (addr.name(), addr.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (Some(n), None) => n.to_string(),
                    (None, Some(e)) => e.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    for (label, value) in [("From", people(msg.from())), ("To", people(msg.to())), ("Cc", people(msg.cc()))] {
        if !value.is_empty() {
            text.push_str(&format!("{label}: {value}\n"));
        }
    }
    if let Some(s) = &subject {
        text.push_str(&format!("Subject: {s}\n"));
    }
    text.push('\n');
    let mut bodies = 0;
    for i in 0..msg.text_body.len() {
        if let Some(body) = msg.body_text(i) {
            text.push_str(&body);
            text.push('\n');
            bodies += 1;
        }
    }
    if bodies == 0 {
        for i in 0..msg.html_body.len() {
            if let Some(body) = msg.body_html(i) {
                text.push_str(&html(&body).text);
                text.push('\n');
            }
        }
    }
    for att in msg.attachments() {
        if let Some(name) = att.attachment_name() {
            text.push_str(&format!("Attachment: {name}\n"));
        }
    }
    let stated_time = msg.date().map(|d| d.to_timestamp());
    Ok(Document { title: subject, stated_time, ..Document::new(tidy_lines(&text), DocType::Email) })
}

fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Collapses runs of spaces inside lines and runs of blank lines, keeping paragraph breaks.
pub(super) fn tidy_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = collapse_spaces(line);
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_keeps_title_drops_markup_and_scripts() {
        let d = html("<html><head><title>My  Page</title><style>p{}</style></head><body><h1>Hello</h1><p>World &amp; more</p><script>var secret=1</script></body></html>");
        assert_eq!(d.title.as_deref(), Some("My Page"));
        assert!(d.text.contains("Hello"));
        assert!(d.text.contains("World & more"));
        assert!(!d.text.contains("secret"));
        assert!(!d.text.contains('<'));
    }

    #[test]
    fn email_has_subject_people_and_body() {
        let raw = b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Brake repair\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe mechanic charged 240 euros.\r\n";
        let d = email(raw).unwrap();
        assert_eq!(d.title.as_deref(), Some("Brake repair"));
        assert!(d.text.contains("Alice <alice@example.com>"));
        assert!(d.text.contains("240 euros"));
        assert_eq!(d.stated_time, Some(1772532000));
        assert!(looks_like_email(raw));
    }

}
