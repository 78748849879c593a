//! Leaf helpers about text that every stage shares: which characters are Chinese, Japanese or
//! Korean. Nothing here imports from the rest of the crate.

/// A CJK character: kana, Han (the unified blocks, extensions and compatibility ideographs) or
/// a Hangul syllable. These are words of their own to the index and the chunker.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// CJK punctuation and full-width forms (、。「」，：), which take no space around them.
pub fn is_cjk_punctuation(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn han_kana_and_hangul_are_cjk_latin_and_punctuation_are_not() {
        assert!("租約東京ひらカナ한국𠀀".chars().all(is_cjk));
        assert!(!"aé1 ".chars().any(is_cjk));
        assert!("，。、「」".chars().all(|c| is_cjk_punctuation(c) && !is_cjk(c)));
    }
}
