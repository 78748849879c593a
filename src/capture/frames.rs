//! Frame pixels: change detection, redaction boxes, thumbnails and the stored (WebP) form.

use crate::extract::picture::{Image, Rect};

/// Side of a change-detection cell, in pixels: small enough that one newly typed word changes
/// a cell, large enough that the grid of a 1080p screen is ~20k numbers.
const CELL: u32 = 10;
/// Mean-luma change (0–255) for a cell to count as changed: above video noise and cursor blink
/// anti-aliasing, below the change one glyph makes in a 10×10 cell.
const CELL_DELTA: u8 = 6;

/// Mean luma of each CELL×CELL block.
#[derive(Clone, PartialEq)]
pub struct LumaGrid {
    cols: u32,
    rows: u32,
    cells: Vec<u8>,
}

impl LumaGrid {
    pub fn of(img: &Image) -> LumaGrid {
        let cols = img.width.div_ceil(CELL);
        let rows = img.height.div_ceil(CELL);
        let mut sums = vec![0u32; (cols * rows) as usize];
        let mut counts = vec![0u32; (cols * rows) as usize];
        for y in 0..img.height {
            let row = (y / CELL) * cols;
            let line = &img.rgb[(y * img.width * 3) as usize..((y + 1) * img.width * 3) as usize];
            for (x, px) in line.chunks_exact(3).enumerate() {
                let luma = (px[0] as u32 * 77 + px[1] as u32 * 150 + px[2] as u32 * 29) >> 8;
                let i = (row + x as u32 / CELL) as usize;
                sums[i] += luma;
                counts[i] += 1;
            }
        }
        let cells = sums.iter().zip(&counts).map(|(s, c)| (s / c.max(&1)) as u8).collect();
        LumaGrid { cols, rows, cells }
    }

    /// How the cells inside `within` (pixels) changed: how many differ noticeably, and the
    /// bounding box of those, in pixels. Every cell counts as changed when the sizes differ.
    pub fn changes(&self, other: &LumaGrid, within: Rect) -> (usize, Option<Rect>) {
        let inside = |cx: u32, cy: u32| {
            let (px, py) = ((cx * CELL) as i32, (cy * CELL) as i32);
            px + CELL as i32 > within.x && px < within.x + within.w as i32 && py + CELL as i32 > within.y && py < within.y + within.h as i32
        };
        if (self.cols, self.rows) != (other.cols, other.rows) {
            return (self.cells.len(), Some(within));
        }
        let (mut n, mut x0, mut y0, mut x1, mut y1) = (0, u32::MAX, u32::MAX, 0, 0);
        for (i, (a, b)) in self.cells.iter().zip(&other.cells).enumerate() {
            let (cx, cy) = (i as u32 % self.cols, i as u32 / self.cols);
            if a.abs_diff(*b) >= CELL_DELTA && inside(cx, cy) {
                n += 1;
                (x0, y0, x1, y1) = (x0.min(cx), y0.min(cy), x1.max(cx + 1), y1.max(cy + 1));
            }
        }
        let area = (n > 0).then(|| Rect { x: (x0 * CELL) as i32, y: (y0 * CELL) as i32, w: (x1 - x0) * CELL, h: (y1 - y0) * CELL });
        (n, area)
    }
}

/// A hash of each pixel row; 0 for a row of one colour (background matches anything).
pub fn row_hashes(img: &Image) -> Vec<u64> {
    img.rgb
        .chunks_exact((img.width * 3).max(1) as usize)
        .map(|row| {
            if row.chunks_exact(3).all(|p| p == &row[..3]) {
                return 0;
            }
            // FNV-1a: fast, and collisions only cost a missed scroll.
            row.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3)) | 1
        })
        .collect()
}

/// How many pixels the content moved up between two frames of a window, when it scrolled:
/// most rows with content reappear that many rows higher. `None` when it did not scroll.
pub fn scroll_shift(old: &[u64], new: &[u64]) -> Option<usize> {
    if old.len() != new.len() || old.len() < 16 {
        return None;
    }
    let h = new.len();
    let content = new.iter().filter(|&&r| r != 0).count();
    let matches = |dy: usize| (0..h - dy).filter(|&y| new[y] != 0 && new[y] == old[y + dy]).count();
    let still = matches(0);
    let (dy, best) = (1..h / 2).map(|dy| (dy, matches(dy))).max_by_key(|&(_, m)| m)?;
    (best * 2 > content && best > still * 2).then_some(dy)
}

/// The rows of `new` that are not `old` moved up by `dy`, as a full-width box.
pub fn rows_differing(old: &[u64], new: &[u64], dy: usize) -> Option<Rect> {
    let differs: Vec<usize> = (0..new.len()).filter(|&y| old.get(y + dy).is_none_or(|&o| o != new[y])).collect();
    let (first, last) = (*differs.first()?, *differs.last()?);
    Some(Rect { x: 0, y: first as i32, w: 1, h: (last - first + 1) as u32 })
}

/// A copy of part of an image.
pub fn crop(img: &Image, r: Rect) -> Image {
    let (x, y) = (r.x.max(0) as u32, r.y.max(0) as u32);
    let w = r.w.min(img.width.saturating_sub(x));
    let h = r.h.min(img.height.saturating_sub(y));
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for row in y..y + h {
        let start = ((row * img.width + x) * 3) as usize;
        rgb.extend_from_slice(&img.rgb[start..start + (w * 3) as usize]);
    }
    Image { width: w, height: h, rgb }
}

/// The share of `img`'s pixels (sampled every other row and column) far from its most common
/// colour: near 0 for a blank background, whatever else is drawn on it raises it.
pub fn ink(img: &Image) -> f32 {
    let mut counts: std::collections::HashMap<[u8; 3], u32> = std::collections::HashMap::new();
    let px = |x: u32, y: u32| {
        let i = ((y * img.width + x) * 3) as usize;
        [img.rgb[i], img.rgb[i + 1], img.rgb[i + 2]]
    };
    let sample = || (0..img.height).step_by(2).flat_map(move |y| (0..img.width).step_by(2).map(move |x| (x, y)));
    for (x, y) in sample() {
        *counts.entry(px(x, y)).or_default() += 1;
    }
    let Some(background) = counts.into_iter().max_by_key(|&(c, n)| (n, c)).map(|(c, _)| c) else { return 0.0 };
    let far = |c: [u8; 3]| c.iter().zip(background).map(|(a, b)| (*a as i32 - b as i32).abs()).max().unwrap_or(0) > 48;
    let (mut n, mut inked) = (0u32, 0u32);
    for (x, y) in sample() {
        n += 1;
        inked += far(px(x, y)) as u32;
    }
    inked as f32 / n.max(1) as f32
}

/// Paints boxes solid black, a little larger than the box so no stroke of a glyph survives.
pub fn black_out(img: &mut Image, boxes: &[Rect]) {
    paint(img, boxes, 2, [0, 0, 0]);
}

/// Paints over what other windows drew on `area` with `area`'s own most common colour (its
/// background): their pixels are gone, and OCR reads the rest as a page with a gap, where a
/// black block made it drop whole lines.
pub fn paint_over(img: &mut Image, covered: &[Rect], area: Rect) {
    if covered.is_empty() {
        return;
    }
    let mut counts: std::collections::HashMap<[u8; 3], u32> = std::collections::HashMap::new();
    let (x0, y0) = (area.x.max(0) as u32, area.y.max(0) as u32);
    let (x1, y1) = ((x0 + area.w).min(img.width), (y0 + area.h).min(img.height));
    for y in (y0..y1).step_by(3) {
        for x in (x0..x1).step_by(3) {
            if covered.iter().any(|r| x as i32 >= r.x && (x as i32) < r.x + r.w as i32 && y as i32 >= r.y && (y as i32) < r.y + r.h as i32) {
                continue;
            }
            let i = ((y * img.width + x) * 3) as usize;
            *counts.entry([img.rgb[i], img.rgb[i + 1], img.rgb[i + 2]]).or_default() += 1;
        }
    }
    let background = counts.into_iter().max_by_key(|&(c, n)| (n, c)).map_or([0, 0, 0], |(c, _)| c);
    paint(img, covered, 0, background);
}

fn paint(img: &mut Image, boxes: &[Rect], pad: i32, colour: [u8; 3]) {
    for b in boxes {
        let x0 = (b.x - pad).max(0) as u32;
        let y0 = (b.y - pad).max(0) as u32;
        let x1 = ((b.x + b.w as i32 + pad).max(0) as u32).min(img.width);
        let y1 = ((b.y + b.h as i32 + pad).max(0) as u32).min(img.height);
        for y in y0..y1 {
            let start = ((y * img.width + x0) * 3) as usize;
            let end = ((y * img.width + x1) * 3) as usize;
            for px in img.rgb[start.min(end)..end].chunks_exact_mut(3) {
                px.copy_from_slice(&colour);
            }
        }
    }
}

/// Draws a 2-pixel frame around each box, to show where the matched words are.
pub fn outline(img: &mut Image, boxes: &[Rect], colour: [u8; 3]) {
    let mut put = |x: i32, y: i32| {
        if x >= 0 && y >= 0 && (x as u32) < img.width && (y as u32) < img.height {
            let i = ((y as u32 * img.width + x as u32) * 3) as usize;
            img.rgb[i..i + 3].copy_from_slice(&colour);
        }
    };
    for b in boxes {
        let (x0, y0, x1, y1) = (b.x - 3, b.y - 3, b.x + b.w as i32 + 2, b.y + b.h as i32 + 2);
        for t in 0..2 {
            for x in x0..=x1 {
                put(x, y0 + t);
                put(x, y1 - t);
            }
            for y in y0..=y1 {
                put(x0 + t, y);
                put(x1 - t, y);
            }
        }
    }
}

/// A box-filtered copy no wider than `max_width`.
pub fn thumbnail(img: &Image, max_width: u32) -> Image {
    let f = img.width.div_ceil(max_width).max(1);
    let (w, h) = (img.width / f, img.height / f);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for ty in 0..h {
        for tx in 0..w {
            let mut sum = [0u32; 3];
            for y in ty * f..(ty + 1) * f {
                let start = ((y * img.width + tx * f) * 3) as usize;
                for px in img.rgb[start..start + (f * 3) as usize].chunks_exact(3) {
                    (0..3).for_each(|c| sum[c] += px[c] as u32);
                }
            }
            rgb.extend(sum.iter().map(|s| (s / (f * f)) as u8));
        }
    }
    Image { width: w, height: h, rgb }
}

/// Lossy WebP; quality 80 keeps screen text readable and re-OCRable.
pub fn encode_webp(img: &Image, quality: f32) -> Vec<u8> {
    webp::Encoder::from_rgb(&img.rgb, img.width, img.height).encode(quality).to_vec()
}

pub fn decode_webp(bytes: &[u8]) -> Option<Image> {
    let decoded = webp::Decoder::new(bytes).decode()?;
    let (width, height) = (decoded.width(), decoded.height());
    let raw: &[u8] = &decoded;
    let rgb = if raw.len() == (width * height * 4) as usize {
        raw.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()
    } else {
        raw.to_vec()
    };
    Some(Image { width, height, rgb })
}

pub fn write_png(img: &Image, out: &mut impl std::io::Write) -> Result<(), png::EncodingError> {
    let mut enc = png::Encoder::new(out, img.width, img.height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header()?;
    w.write_image_data(&img.rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(w: u32, h: u32, v: u8) -> Image {
        Image { width: w, height: h, rgb: vec![v; (w * h * 3) as usize] }
    }

    #[test]
    fn ink_is_what_differs_from_the_background() {
        let mut img = blank(100, 100, 240);
        assert_eq!(ink(&img), 0.0);
        // A faint shade is no ink; a dark block over a tenth of the picture is about a tenth.
        paint(&mut img, &[Rect { x: 0, y: 0, w: 100, h: 50 }], 0, [225, 225, 225]);
        paint(&mut img, &[Rect { x: 0, y: 60, w: 100, h: 10 }], 0, [20, 20, 20]);
        assert!((ink(&img) - 0.1).abs() < 0.02, "{}", ink(&img));
    }

    fn draw_text_line(img: &mut Image, x: u32, y: u32, len: u32) {
        // Glyph-like strokes: alternate dark columns, like a short typed word.
        for yy in y..y + 8 {
            for xx in (x..x + len).step_by(2) {
                let i = ((yy * img.width + xx) * 3) as usize;
                img.rgb[i..i + 3].fill(0);
            }
        }
    }

    #[test]
    fn a_newly_typed_word_changes_cells_and_a_static_screen_does_not() {
        let a = blank(200, 100, 240);
        let mut b = a.clone();
        let all = Rect { x: 0, y: 0, w: 200, h: 100 };
        assert_eq!(LumaGrid::of(&a).changes(&LumaGrid::of(&b), all), (0, None));
        draw_text_line(&mut b, 40, 50, 24);
        let (ga, gb) = (LumaGrid::of(&a), LumaGrid::of(&b));
        let (n, area) = ga.changes(&gb, all);
        assert!(n >= 2);
        let area = area.unwrap();
        assert!(area.x <= 40 && area.x + area.w as i32 >= 64 && area.y <= 50, "{area:?}");
        // A change outside the window being watched is no change to it.
        assert_eq!(ga.changes(&gb, Rect { x: 100, y: 0, w: 100, h: 40 }), (0, None));
    }

    #[test]
    fn scrolling_is_seen_as_a_shift_and_only_the_new_rows_differ() {
        let mut old = blank(60, 100, 255);
        for (i, y) in (5..95).step_by(12).enumerate() {
            draw_text_line(&mut old, 4 + i as u32 * 3, y, 30);
        }
        // Scroll up by 12 pixels; a new line appears at the bottom.
        let mut new = blank(60, 100, 255);
        new.rgb[..(60 * 88 * 3) as usize].copy_from_slice(&old.rgb[(60 * 12 * 3) as usize..]);
        draw_text_line(&mut new, 20, 89, 30);
        let (ro, rn) = (row_hashes(&old), row_hashes(&new));
        assert_eq!(scroll_shift(&ro, &rn), Some(12));
        let band = rows_differing(&ro, &rn, 12).unwrap();
        assert!(band.y >= 80, "only the bottom rows are new: {band:?}");
        assert_eq!(scroll_shift(&ro, &ro), None, "no scroll");
    }

    #[test]
    fn black_out_covers_the_box() {
        let mut img = blank(50, 30, 200);
        black_out(&mut img, &[Rect { x: 10, y: 10, w: 5, h: 5 }]);
        let px = |x: u32, y: u32| img.rgb[((y * 50 + x) * 3) as usize];
        assert_eq!(px(10, 10), 0);
        assert_eq!(px(14, 14), 0);
        assert_eq!(px(30, 20), 200);
    }

    #[test]
    fn what_covers_a_window_is_painted_in_its_background() {
        let mut img = blank(40, 30, 250);
        // A dark overlay with text-like specks, over part of the window at (5,5) 30x20.
        for y in 10..20 {
            for x in 12..30 {
                let i = ((y * 40 + x) * 3) as usize;
                img.rgb[i..i + 3].copy_from_slice(if x % 3 == 0 { &[255, 255, 255] } else { &[20, 20, 90] });
            }
        }
        let over = Rect { x: 12, y: 10, w: 18, h: 10 };
        paint_over(&mut img, &[over], Rect { x: 5, y: 5, w: 30, h: 20 });
        assert!(img.rgb.chunks(3).all(|p| p == [250, 250, 250]), "a pixel of the overlay is left");
        paint_over(&mut img, &[], Rect { x: 0, y: 0, w: 40, h: 30 });
    }

    #[test]
    fn webp_round_trip_keeps_size_and_tone() {
        let mut img = blank(64, 32, 128);
        draw_text_line(&mut img, 8, 8, 30);
        let back = decode_webp(&encode_webp(&img, 80.0)).unwrap();
        assert_eq!((back.width, back.height), (64, 32));
        assert!(back.rgb[((20 * 64 + 50) * 3) as usize].abs_diff(128) < 10);
        let t = thumbnail(&img, 16);
        assert_eq!((t.width, t.height), (16, 8));
        let c = crop(&img, Rect { x: 60, y: 30, w: 10, h: 10 });
        assert_eq!((c.width, c.height), (4, 2));
    }
}
