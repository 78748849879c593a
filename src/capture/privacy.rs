//! The privacy gate: what is never captured (excluded apps, private browser windows, title
//! patterns) and what is never kept (card numbers, IBANs, keys, tokens, passwords), applied
//! before anything is stored or indexed.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use super::{frames, Captured};
use crate::config::PrivacyConfig;
use crate::extract::ocr::{self, Word};
use crate::extract::picture::Image;

#[derive(Debug, thiserror::Error)]
#[error("invalid window-title pattern {pattern:?} in the config ([privacy] exclude_titles): {why}")]
pub struct GateError {
    pattern: String,
    why: String,
}

pub struct Gate {
    apps: Vec<String>,
    /// Each excluded app's name as a whole word anywhere in a title ("KeePassXC - Passwords",
    /// "Passwords.kdbx - KeePassXC").
    app_words: Vec<Regex>,
    markers: Vec<String>,
    titles: Vec<Regex>,
    /// Excluded domains, lower case.
    sites: Vec<String>,
}

/// What the gate knows of a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowFacts<'a> {
    /// Its class (`WM_CLASS`, or a Wayland app_id).
    pub app: &'a str,
    pub instance: &'a str,
    pub title: &'a str,
    /// The file name of the owning process's executable.
    pub exe: Option<&'a str>,
}

impl Gate {
    pub fn new(cfg: &PrivacyConfig) -> Result<Gate, GateError> {
        let titles = cfg
            .exclude_titles
            .iter()
            .map(|p| Regex::new(&format!("(?i){p}")).map_err(|e| GateError { pattern: p.clone(), why: e.to_string() }))
            .collect::<Result<_, _>>()?;
        let app_words = cfg
            .exclude_apps
            .iter()
            .map(|a| Regex::new(&format!(r"(?i)(?:^|[^\p{{L}}\p{{N}}]){}(?:$|[^\p{{L}}\p{{N}}])", regex::escape(a))).expect("an escaped name is a valid pattern"))
            .collect();
        Ok(Gate {
            sites: cfg.exclude_sites.iter().map(|d| d.trim().trim_start_matches('.').to_lowercase()).filter(|d| !d.is_empty()).collect(),
            apps: cfg.exclude_apps.iter().map(|a| a.to_lowercase()).collect(),
            app_words,
            markers: cfg.private_window_markers.iter().map(|m| m.to_lowercase()).collect(),
            titles,
        })
    }

    /// Whether any site is excluded (then a browser's address is worth reading).
    pub fn has_sites(&self) -> bool {
        !self.sites.is_empty()
    }

    /// Why a page at `address` (as a browser's address bar shows it, with or without its
    /// scheme) must not be captured: its host is an excluded domain or under one.
    pub fn excludes_site(&self, address: &str) -> Option<String> {
        let host = host(address)?;
        let d = self.sites.iter().find(|d| host == **d || host.ends_with(&format!(".{d}")))?;
        Some(format!("excluded site {d}"))
    }

    /// Why a window must not be captured, or `None` when it may be. An excluded app matches,
    /// ignoring case, its class, instance or executable name containing the app's name, or the
    /// app's name as a word anywhere in the title: renaming the window or its class does not
    /// hide the program.
    pub fn excludes(&self, w: WindowFacts) -> Option<String> {
        let (app_l, inst_l, title_l) = (w.app.to_lowercase(), w.instance.to_lowercase(), w.title.to_lowercase());
        let exe_l = w.exe.map(str::to_lowercase).unwrap_or_default();
        let named = |a: &str| app_l.contains(a) || inst_l.contains(a) || (!exe_l.is_empty() && exe_l.contains(a));
        if let Some(i) = self.apps.iter().enumerate().position(|(i, a)| named(a) || self.app_words[i].is_match(w.title)) {
            return Some(format!("excluded app {}", self.apps[i]));
        }
        if let Some(m) = self.markers.iter().find(|m| title_l.contains(m.as_str())) {
            return Some(format!("private window ({m})"));
        }
        self.titles.iter().find(|r| r.is_match(w.title)).map(|r| format!("excluded title pattern {}", &r.as_str()[4..]))
    }
}

/// The host of an address: "https://user@Bank.example:443/x?y" and "bank.example/x" give
/// "bank.example". `None` for what is no address (a search typed in the bar).
fn host(address: &str) -> Option<String> {
    let a = address.trim();
    let rest = a.split_once("://").map_or(a, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?.trim_end_matches('.').to_lowercase();
    (!host.is_empty() && host.contains('.') && !host.contains(char::is_whitespace)).then_some(host)
}

/// Text with its sensitive parts replaced, and where they were in the original.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub text: String,
    /// Byte ranges of the original text that were removed, with what they were.
    pub spans: Vec<(Range<usize>, &'static str)>,
}

impl Redacted {
    /// Where byte `offset` of the original text is in the redacted one (a place inside a
    /// removed part maps to where its replacement begins).
    pub fn map_offset(&self, offset: usize) -> usize {
        let mut shift: isize = 0;
        for (r, label) in &self.spans {
            if offset < r.end {
                let at = offset.min(r.start);
                return (at as isize + shift) as usize;
            }
            shift += replacement(label).len() as isize - r.len() as isize;
        }
        (offset as isize + shift) as usize
    }
}

fn replacement(label: &str) -> String {
    format!("[redacted {label}]")
}

/// Finds the sensitive parts of `text`, in order, not overlapping.
pub fn sensitive_spans(text: &str) -> Vec<(Range<usize>, &'static str)> {
    let mut found: Vec<(Range<usize>, &'static str)> = Vec::new();
    for (label, re, check) in patterns() {
        for m in re.captures_iter(text) {
            let g = m.name("v").unwrap_or_else(|| m.get(0).unwrap());
            if check.is_none_or(|f| f(g.as_str())) {
                found.push((g.range(), label));
            }
        }
    }
    found.sort_by_key(|(r, _)| (r.start, std::cmp::Reverse(r.end)));
    let mut out: Vec<(Range<usize>, &'static str)> = Vec::new();
    for (r, label) in found {
        match out.last_mut() {
            Some((last, _)) if r.start < last.end => last.end = last.end.max(r.end),
            _ => out.push((r, label)),
        }
    }
    out
}

/// Replaces each sensitive part with `[redacted LABEL]`.
pub fn redact(text: &str) -> Redacted {
    let spans = sensitive_spans(text);
    if spans.is_empty() {
        return Redacted { text: text.to_string(), spans };
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, label) in &spans {
        out.push_str(&text[at..r.start]);
        out.push_str(&replacement(label));
        at = r.end;
    }
    out.push_str(&text[at..]);
    Redacted { text: out, spans }
}

type Check = fn(&str) -> bool;

fn patterns() -> &'static [(&'static str, Regex, Option<Check>)] {
    static P: OnceLock<Vec<(&'static str, Regex, Option<Check>)>> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("built-in pattern");
        vec![
            ("private key", re(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)"), None),
            ("card number", re(r"\b(?P<v>\d(?:[ -]?\d){12,18})\b"), Some(luhn as Check)),
            ("IBAN", re(r"\b(?P<v>[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})\b"), Some(iban as Check)),
            ("token", re(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), None),
            ("key", re(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), None),
            ("key", re(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"), None),
            ("key", re(r"\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_-]{20,}"), None),
            ("key", re(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), None),
            ("key", re(r"\bAIza[0-9A-Za-z_-]{35}\b"), None),
            ("key", re(r"\bglpat-[A-Za-z0-9_-]{20,}"), None),
            (
                "password",
                re(r"(?i)(?:password|passwd|passphrase|passcode|pwd|pin|密码|口令)\s*(?:is)?\s*[:=：]\s*(?P<v>[^\s,;]{3,})"),
                None,
            ),
            ("key", re(r#"(?i)(?:api[_-]?key|secret|access[_-]?token|auth[_-]?token)\s*[:=]\s*["']?(?P<v>[A-Za-z0-9_\-./+]{16,})"#), None),
        ]
    })
}

/// The Luhn check that every payment card number passes (and most digit runs fail).
pub fn luhn(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616 mod-97 check.
pub fn iban(candidate: &str) -> bool {
    let s: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    let rearranged = s[4..].chars().chain(s[..4].chars());
    let mut rem: u32 = 0;
    for c in rearranged {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        for d in if v >= 10 { vec![v / 10, v % 10] } else { vec![v] } {
            rem = (rem * 10 + d) % 97;
        }
    }
    rem == 1
}

/// Width of a frame's stored thumbnail, in pixels.
pub const THUMB_WIDTH: u32 = 320;

/// The privacy gate for a frame: redacts sensitive text, blacks out the boxes of the words it
/// came from and drops their text, then encodes picture and thumbnail for storage.
pub fn redact_frame(mut img: Image, mut words: Vec<Word>, app: &str, title: &str, pid: Option<u32>, now: i64, quality: f32) -> Captured {
    let (text, ranges) = ocr::layout(&words);
    let redacted = redact(&text);
    let mut boxes = Vec::new();
    for (w, r) in words.iter_mut().zip(&ranges) {
        if redacted.spans.iter().any(|(s, _)| s.start < r.end && r.start < s.end) {
            boxes.push(w.rect);
            w.text = "[redacted]".into();
        }
    }
    frames::black_out(&mut img, &boxes);
    let thumb = frames::thumbnail(&img, THUMB_WIDTH);
    Captured {
        time: now,
        app: app.to_string(),
        title: redact(title).text,
        pid,
        text: redacted.text,
        words,
        redactions: boxes.len(),
        ocr_ms: 0,
        ocr_pixels: 0,
        continues: false,
        width: img.width,
        height: img.height,
        image: frames::encode_webp(&img, quality),
        thumb: frames::encode_webp(&thumb, quality),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_ibans_keys_tokens_and_passwords_are_redacted() {
        let text = "Card 4111 1111 1111 1111 exp 12/29. Order 1234 5678 9012 3456 is not a card.\n\
                    IBAN GB82 WEST 1234 5698 7654 32 please.\n\
                    AWS AKIAIOSFODNN7EXAMPLE and ghp_abcdefghijklmnopqrstuvwxyz0123456789.\n\
                    jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n\
                    Password: hunter2!x\n密码：芝麻开门123\n\
                    -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\nafter";
        let r = redact(text);
        for secret in ["4111 1111", "GB82 WEST", "AKIAIOSFODNN7", "ghp_abc", "eyJhbGci", "hunter2", "芝麻开门", "b3BlbnNzaC1rZXk"] {
            assert!(!r.text.contains(secret), "{secret} left in {}", r.text);
        }
        for kept in ["Card", "1234 5678 9012 3456 is not a card", "Password:", "after", "please"] {
            assert!(r.text.contains(kept), "{kept} lost from {}", r.text);
        }
        assert!(r.text.contains("[redacted card number]"));
        let labels: Vec<_> = r.spans.iter().map(|(_, l)| *l).collect();
        assert!(labels.contains(&"IBAN") && labels.contains(&"password") && labels.contains(&"private key"));
    }

    #[test]
    fn offsets_move_with_what_redaction_replaced() {
        let text = "page one Password: hunter2x\u{c}page two";
        let r = redact(text);
        let two = text.find("page two").unwrap();
        assert_eq!(&r.text[r.map_offset(two)..], "page two");
        assert_eq!(r.map_offset(0), 0);
        let inside = text.find("hunter2x").unwrap() + 3;
        assert!(r.text[r.map_offset(inside)..].starts_with("[redacted password]"));
    }

    #[test]
    fn plain_text_is_left_alone() {
        let text = "Meeting on 2024-03-19 at 10:30, room 4, invoice 312.40 EUR, phone 020 7946 0958.";
        assert_eq!(redact(text).text, text);
    }

    #[test]
    fn sites_are_known_by_the_host_of_the_address_shown() {
        let gate = Gate::new(&PrivacyConfig { exclude_sites: vec!["Bank.example".into(), ".mail.example".into()], ..Default::default() }).unwrap();
        assert!(gate.has_sites());
        for shown in ["https://bank.example/login", "bank.example", "online.bank.example/x?y=1", "https://me@BANK.EXAMPLE:443/", "mail.example."] {
            assert!(gate.excludes_site(shown).is_some(), "{shown}");
        }
        for shown in ["https://notbank.example/", "https://example.com/?q=bank.example", "bank example search", "about:blank", ""] {
            assert_eq!(gate.excludes_site(shown), None, "{shown}");
        }
        assert!(!Gate::new(&PrivacyConfig::default()).unwrap().has_sites());
    }

    #[test]
    fn gate_excludes_password_managers_private_windows_and_patterns() {
        let cfg = PrivacyConfig { exclude_titles: vec!["^Online banking".into()], ..Default::default() };
        let gate = Gate::new(&cfg).unwrap();
        let excludes = |app, instance, title| gate.excludes(WindowFacts { app, instance, title, exe: None });
        assert!(excludes("KeePassXC", "keepassxc", "Passwords.kdbx - KeePassXC").is_some());
        assert!(excludes("XTerm", "xterm", "Passwords.kdbx - KeePassXC").is_some());
        assert!(excludes("firefox", "Navigator", "Cats — Mozilla Firefox Private Browsing").is_some());
        assert!(excludes("Google-chrome", "google-chrome", "New Tab - Google Chrome (Incognito)").is_some());
        assert!(excludes("firefox", "Navigator", "online BANKING - My Bank").is_some());
        assert!(excludes("XTerm", "xterm", "notes.txt - vim").is_none());
        assert!(Gate::new(&PrivacyConfig { exclude_titles: vec!["(".into()], ..Default::default() }).is_err());
    }

    #[test]
    fn a_password_manager_is_known_by_its_title_anywhere_and_by_its_executable() {
        let gate = Gate::new(&PrivacyConfig::default()).unwrap();
        let w = |app, title, exe| WindowFacts { app, instance: app, title, exe };
        assert!(gate.excludes(w("Xdialog", "KeePassXC - Passwords", None)).is_some(), "the name first in the title");
        assert!(gate.excludes(w("Xdialog", "Unlock 1Password", None)).is_some());
        // A renamed class and a neutral title: the program is still the password manager.
        assert!(gate.excludes(w("MyVault", "Entries", Some("keepassxc"))).is_some());
        assert!(gate.excludes(w("Alacritty", "Entries", Some("alacritty"))).is_none());
        // A whole word only: "goalkeeper" is not Keeper.
        assert!(gate.excludes(w("firefox", "Goalkeeper drills - Mozilla Firefox", None)).is_none());
    }
}
