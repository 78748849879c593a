//! `engram doctor`: a self-test of the privacy gate. Fake secrets go through the same code paths
//! as real files and screen frames, into a throwaway store, and the checks prove they were not
//! kept: not in the stored text, not in the stored word boxes, not as pixels in the stored
//! picture, and not as bytes anywhere on disk.

use std::path::Path;

use engram::capture::frames;
use engram::capture::privacy::redact_frame;
use engram::extract::picture::{Image, Rect};
use engram::config::Config;
use engram::crypto::DataKey;
use engram::extract::ocr::Word;
use engram::{AddEvent, Engram, Result};

pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Runs the self-test in a temporary folder that is removed afterwards.
pub fn self_test(config: &Config) -> Result<Vec<Check>> {
    let tmp = tempfile::tempdir().map_err(|e| engram::Error::Other(format!("could not create a temporary folder: {e}")))?;
    let store_dir = tmp.path().join("store");
    let key = DataKey::generate()?;
    let mut config = config.clone();
    config.screen.capture = false;
    let mut engram = Engram::open_with_key(&store_dir, &key, config)?;

    // Unique per run, so a leftover from another run cannot make a check pass or fail.
    let mut salt = [0u8; 4];
    engram::crypto::random_bytes(&mut salt)?;
    let n = u32::from_le_bytes(salt) % 9000 + 1000;
    let card = luhn_card(n);
    let password = format!("Zq{n}xw!");
    let aws = format!("AKIA{n}ABCDEFGHIJKL");
    let secrets = [card.clone(), password.clone(), aws.clone(), "GB82 WEST 1234 5698 7654 32".to_string()];
    let canary = format!("doctorcanary{n}");

    let notes = tmp.path().join("notes");
    std::fs::create_dir_all(&notes).map_err(|e| engram::Error::Other(e.to_string()))?;
    let file_text = format!(
        "Travel notes {canary}\nCard {card} expires 12/29.\nPassword: {password}\nAWS key {aws}\nIBAN GB82 WEST 1234 5698 7654 32\n"
    );
    std::fs::write(notes.join("secrets.txt"), &file_text).map_err(|e| engram::Error::Other(e.to_string()))?;
    engram.add_paths(std::slice::from_ref(&notes), &mut |_: AddEvent| {})?;

    // A screen frame: each "word" is a dark block at a known place, as OCR would report it.
    let line = format!("Pay with card {card} today {canary}");
    let (img, words) = fake_frame(&line);
    let captured = redact_frame(img, words.clone(), "Firefox", "Checkout", None, chrono::Utc::now().timestamp(), 80.0);
    let frame_id = engram.add_frame(&captured, None)?;
    engram.sync_index()?;

    let mut checks = Vec::new();
    let mut stored_text = String::new();
    for item in engram.store().all_items()? {
        stored_text.push_str(&engram.store().text_of(item.content_id)?);
        stored_text.push('\n');
    }
    let kept: Vec<&String> = secrets.iter().filter(|s| stored_text.contains(s.as_str()) || stored_text.contains(&s.replace(' ', ""))).collect();
    checks.push(Check {
        name: "secrets are redacted from stored text".into(),
        ok: kept.is_empty() && stored_text.contains(&canary),
        detail: if kept.is_empty() { "card, password, AWS key and IBAN replaced by [redacted …]".into() } else { format!("{} secret(s) kept", kept.len()) },
    });

    let not_stored = || engram::Error::Other("the test frame was not stored".into());
    let frame = engram.frame_words(frame_id)?.ok_or_else(not_stored)?;
    let stored_words: Vec<Word> = serde_json::from_slice(&frame.words).unwrap_or_default();
    let leaked = stored_words.iter().any(|w| card.split(' ').any(|part| w.text == part));
    checks.push(Check {
        name: "secrets are dropped from stored word boxes".into(),
        ok: !leaked && stored_words.iter().any(|w| w.text == canary),
        detail: format!("{} of {} words redacted", stored_words.iter().filter(|w| w.text == "[redacted]").count(), stored_words.len()),
    });

    let stored = engram.frame_picture(frame_id, false)?.ok_or_else(not_stored)?;
    let picture = frames::decode_webp(&stored).ok_or_else(|| engram::Error::Other("the stored frame does not decode".into()))?;
    let secret_boxes: Vec<Rect> = words.iter().filter(|w| card.split(' ').any(|p| p == w.text)).map(|w| w.rect).collect();
    let dark = secret_boxes.iter().all(|r| region_max(&picture, *r) < 40);
    let kept_boxes = words.iter().filter(|w| w.text == canary).all(|w| region_max(&picture, w.rect) > 100);
    checks.push(Check {
        name: "secrets are blacked out in the stored picture".into(),
        ok: dark && kept_boxes && !secret_boxes.is_empty(),
        detail: format!("{} box(es) black, other words intact: {kept_boxes}", secret_boxes.len()),
    });

    engram.store().checkpoint()?;
    drop(engram);
    let mut needles: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
    needles.push(canary.as_bytes().to_vec());
    let found = scan(&store_dir, &needles);
    checks.push(Check {
        name: "nothing readable on disk".into(),
        ok: found.is_empty(),
        detail: if found.is_empty() { "no secret or canary bytes in any file under the store".to_string() } else { format!("found in {}", found.join(", ")) },
    });
    Ok(checks)
}

/// A card number that passes the Luhn check, different each run.
fn luhn_card(n: u32) -> String {
    let body = format!("453914880{n:04}01");
    let s = (0..10)
        .map(|check| format!("{}{check}", &body[..15]))
        .find(|s| engram::capture::privacy::luhn(s))
        .expect("one check digit passes");
    format!("{} {} {} {}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
}

/// A light image with one dark block per word, and the words as OCR would return them.
fn fake_frame(line: &str) -> (Image, Vec<Word>) {
    let (w, h) = (900u32, 60u32);
    let mut img = Image { width: w, height: h, rgb: vec![235; (w * h * 3) as usize] };
    let mut words = Vec::new();
    let mut x = 10;
    for text in line.split(' ') {
        let ww = 9 * text.chars().count() as u32;
        let rect = Rect { x, y: 20, w: ww, h: 16 };
        for yy in 20..36 {
            for xx in (x as u32..x as u32 + ww).step_by(2) {
                let i = ((yy * w + xx) * 3) as usize;
                img.rgb[i..i + 3].fill(200);
            }
        }
        words.push(Word { text: text.into(), rect, conf: 95.0, line: (1, 1, 1) });
        x += ww as i32 + 9;
    }
    (img, words)
}

fn region_max(img: &Image, r: Rect) -> u8 {
    let mut max = 0;
    for y in r.y.max(0) as u32..(r.y as u32 + r.h).min(img.height) {
        for x in r.x.max(0) as u32..(r.x as u32 + r.w).min(img.width) {
            let i = ((y * img.width + x) * 3) as usize;
            max = max.max(img.rgb[i]).max(img.rgb[i + 1]).max(img.rgb[i + 2]);
        }
    }
    max
}

/// Files under `dir` that contain any of `needles`.
fn scan(dir: &Path, needles: &[Vec<u8>]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walk(dir) {
        if let Ok(bytes) = std::fs::read(&entry) {
            if needles.iter().any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice())) {
                hits.push(entry.display().to_string());
            }
        }
    }
    hits
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_cards_pass_luhn() {
        for n in [1000, 4321, 9999] {
            assert!(engram::capture::privacy::luhn(&luhn_card(n)), "{}", luhn_card(n));
        }
    }

    #[test]
    fn self_test_passes_without_models() {
        let mut config = Config::default();
        config.models.dir = Some(std::path::PathBuf::from("/nonexistent"));
        let checks = self_test(&config).unwrap();
        for c in &checks {
            assert!(c.ok, "{}: {}", c.name, c.detail);
        }
        assert_eq!(checks.len(), 4);
    }
}
