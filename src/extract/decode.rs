//! Bytes → text for files that are text in some encoding, and the binary check.
//!
//! Order: a byte-order mark wins; then valid UTF-8; then UTF-16 without a mark (zero bytes in
//! every other position); any other NUL byte means binary; otherwise the encoding is guessed
//! (chardetng) and decoded with encoding_rs, which covers GBK/GB18030, Big5, Shift_JIS, Latin-1.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};

/// Decodes text, or returns `None` when the bytes look binary.
pub fn decode_text(bytes: &[u8]) -> Option<(String, &'static str)> {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return Some((text.into_owned(), enc.name()));
    }
    if let Some(enc) = utf16_without_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return (!looks_binary_text(&text)).then(|| (text.into_owned(), enc.name()));
    }
    if bytes.contains(&0) {
        return None;
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (!looks_binary_text(s)).then(|| (s.to_string(), UTF_8.name()));
    }
    let mut det = chardetng::EncodingDetector::new();
    det.feed(bytes, true);
    let enc = det.guess(None, true);
    let (text, _, _) = enc.decode(bytes);
    (!looks_binary_text(&text)).then(|| (text.into_owned(), enc.name()))
}

/// UTF-16 text of Latin or CJK scripts without a BOM: in Latin text every other byte is zero.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    if sample.len() < 4 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_zero = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_zero = sample.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    if odd_zero * 10 >= pairs * 4 && even_zero * 20 < pairs {
        Some(UTF_16LE)
    } else if even_zero * 10 >= pairs * 4 && odd_zero * 20 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Too many control characters for a text anyone wrote.
fn looks_binary_text(text: &str) -> bool {
    let mut total = 0usize;
    let mut control = 0usize;
    for c in text.chars().take(8192) {
        total += 1;
        if (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c')) || c == '\u{fffd}' {
            control += 1;
        }
    }
    total > 0 && control * 10 > total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_through() {
        assert_eq!(decode_text("租约 lease".as_bytes()).unwrap().0, "租约 lease");
    }

    #[test]
    fn gbk_is_detected() {
        let (bytes, _, _) = encoding_rs::GBK.encode("这是一份关于房屋租赁合同的说明，租期为两年，每月租金三千元。");
        let (text, enc) = decode_text(&bytes).unwrap();
        assert!(text.contains("房屋租赁合同"), "{enc}: {text}");
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let mut le = vec![0xFF, 0xFE];
        for u in "hello world".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode_text(&le).unwrap().0, "hello world");
        assert_eq!(decode_text(&le[2..]).unwrap().0, "hello world");
    }

    #[test]
    fn latin1_is_decoded() {
        let bytes = b"caf\xe9 cr\xe8me br\xfbl\xe9e, na\xefve fa\xe7ade";
        assert_eq!(decode_text(bytes).unwrap().0, "café crème brûlée, naïve façade");
    }

    #[test]
    fn binary_is_refused() {
        let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R'];
        assert!(decode_text(&png).is_none());
        let noise: Vec<u8> = (0..2000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1).collect();
        assert!(decode_text(&noise).is_none());
    }
}
