//! iCalendar (.ics) invites as a person reads them: the event's name, when, where, who and
//! its description, with the format's line folding and escapes undone ("Pentland Suite 2\, level
//! 1" folded over two lines reads "Pentland Suite 2, level 1"), and the time zone rules, ids and
//! stamps left out.

use chrono::{NaiveDate, NaiveDateTime};

use super::{DocType, Document};

/// Whether `text` is an iCalendar file.
pub fn is_calendar(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').trim_start().starts_with("BEGIN:VCALENDAR")
}

/// The invite's events as text; its title is the first event's name.
pub fn calendar(text: &str) -> Document {
    let mut out = String::new();
    let mut title = None;
    let mut depth_skipped = 0usize;
    let mut attendees: Vec<String> = Vec::new();
    for line in unfold(text) {
        let Some((name, params, value)) = property(&line) else { continue };
        match (name.as_str(), value.as_str()) {
            ("BEGIN", "VTIMEZONE" | "VALARM") => depth_skipped += 1,
            ("END", "VTIMEZONE" | "VALARM") => depth_skipped = depth_skipped.saturating_sub(1),
            _ if depth_skipped > 0 => {}
            ("BEGIN", "VEVENT" | "VTODO" | "VJOURNAL") if !out.is_empty() => out.push('\n'),
            ("END", "VEVENT" | "VTODO" | "VJOURNAL") if !attendees.is_empty() => {
                out.push_str(&format!("Attendees: {}\n", attendees.join(", ")));
                attendees.clear();
            }
            ("SUMMARY", _) => {
                let summary = unescape(&value);
                out.push_str(&summary);
                out.push('\n');
                title.get_or_insert(summary);
            }
            ("DTSTART", _) => out.push_str(&format!("Starts: {}\n", when(&params, &value))),
            ("DTEND", _) => out.push_str(&format!("Ends: {}\n", when(&params, &value))),
            ("DUE", _) => out.push_str(&format!("Due: {}\n", when(&params, &value))),
            ("LOCATION", _) => out.push_str(&format!("Location: {}\n", unescape(&value))),
            ("ORGANIZER", _) => out.push_str(&format!("Organiser: {}\n", person(&params, &value))),
            ("ATTENDEE", _) => attendees.push(person(&params, &value)),
            ("DESCRIPTION" | "COMMENT", _) => {
                out.push_str(unescape(&value).trim());
                out.push('\n');
            }
            ("URL", _) => out.push_str(&format!("Link: {value}\n")),
            _ => {}
        }
    }
    Document { title, ..Document::new(out, DocType::Text) }
}

/// The file's logical lines: a line break followed by a space or tab continues the line.
fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => lines.push(raw.to_string()),
        }
    }
    lines
}

/// A property's parameters (`TZID=Europe/London`), names in upper case.
type Params = Vec<(String, String)>;

/// `NAME;PARAM=x;PARAM="y":value` → name (upper case), parameters, value.
fn property(line: &str) -> Option<(String, Params, String)> {
    // The value starts at the first colon outside a quoted parameter.
    let mut quoted = false;
    let colon = line.char_indices().find(|&(_, c)| {
        if c == '"' {
            quoted = !quoted;
        }
        c == ':' && !quoted
    })?;
    let (head, value) = (&line[..colon.0], &line[colon.0 + 1..]);
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_ascii_uppercase(), v.trim_matches('"').to_string()))
        .collect();
    Some((name, params, value.to_string()))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// "Thursday 21 May 2026, 14:30 (Europe/London)"; a date-only value as the date.
fn when(params: &[(String, String)], value: &str) -> String {
    let value = value.trim();
    let zone = match (param(params, "TZID"), value.ends_with('Z')) {
        (Some(tz), _) => format!(" ({tz})"),
        (None, true) => " (UTC)".to_string(),
        (None, false) => String::new(),
    };
    if let Ok(t) = NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S") {
        return format!("{}{zone}", t.format("%A %-d %B %Y, %H:%M"));
    }
    match NaiveDate::parse_from_str(value, "%Y%m%d") {
        Ok(d) => d.format("%A %-d %B %Y").to_string(),
        Err(_) => value.to_string(),
    }
}

/// "Mei Lin <mei.lin@example.com>" from `CN=Mei Lin:mailto:mei.lin@example.com`.
fn person(params: &[(String, String)], value: &str) -> String {
    let address = value.trim().trim_start_matches("mailto:").trim_start_matches("MAILTO:");
    match param(params, "CN") {
        Some(name) if !name.is_empty() && !address.is_empty() => format!("{name} <{address}>"),
        Some(name) if !name.is_empty() => name.to_string(),
        _ => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/London\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T010000\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nDTSTART;TZID=Europe/London:20260521T143000\r\nDTEND;TZID=Europe/London:20260521T151000\r\nORGANIZER;CN=DSS Programme Team:mailto:programme@example.org\r\nATTENDEE;ROLE=REQ-PARTICIPANT;CN=Daniel\r\n  Hart:mailto:me@example.com\r\nSUMMARY:Talk: Search in Rust\r\nLOCATION:Pentland Suite 2\\, lev\r\n el 1\r\nDESCRIPTION:Your slot: 14:30-15:10\\nCheck in by 13:45\\; bring HDMI\r\nBEGIN:VALARM\r\nDESCRIPTION:Reminder\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn an_invite_reads_as_its_event() {
        assert!(is_calendar(INVITE) && !is_calendar("BEGIN: not a calendar"));
        let doc = calendar(INVITE);
        assert_eq!(doc.title.as_deref(), Some("Talk: Search in Rust"));
        let text = doc.text;
        assert!(text.contains("Starts: Thursday 21 May 2026, 14:30 (Europe/London)"), "{text}");
        assert!(text.contains("Location: Pentland Suite 2, level 1"), "{text}");
        assert!(text.contains("Your slot: 14:30-15:10\nCheck in by 13:45; bring HDMI"), "{text}");
        assert!(text.contains("Organiser: DSS Programme Team <programme@example.org>"), "{text}");
        assert!(text.contains("Attendees: Daniel Hart <me@example.com>"), "{text}");
        // Time zone rules and alarms are not what the invite says.
        assert!(!text.contains("19700329") && !text.contains("Reminder") && !text.contains("VERSION"), "{text}");
    }

    #[test]
    fn a_whole_day_and_a_utc_time_read_plainly() {
        assert_eq!(when(&[], "20260613"), "Saturday 13 June 2026");
        assert_eq!(when(&[], "20260521T133000Z"), "Thursday 21 May 2026, 13:30 (UTC)");
        assert_eq!(when(&[], "garbage"), "garbage");
    }
}
