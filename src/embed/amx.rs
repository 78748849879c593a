//! Dense layers on Intel AMX tiles (bf16 products, f32 sums), where the CPU and kernel offer it.
//!
//! Dense layers are most of an embedding's work. One AMX instruction multiplies a 16×32 bf16
//! tile by a 32×16 one into 16×16 f32 sums, many times what AVX-512 does on f32. Rounding the
//! weights and the layer inputs to bf16 keeps the vectors within cosine 0.99998 of
//! sentence-transformers (the reference test's bar is 0.9999); the sums stay f32. Everywhere
//! else (no AMX, another architecture, or `ENGRAM_EMBED_F32=1`) the f32 path runs.

use std::sync::OnceLock;

/// Tile shapes: 16 rows of 64 bytes, for every tile.
const ROWS: usize = 16;
/// Inputs per tile step (32 bf16 in a 64-byte row).
const STEP: usize = 32;
/// bf16 values in one packed weight tile.
const TILE: usize = ROWS * STEP;

/// Whether dense layers run on AMX in this process: asked once, since Linux must grant the
/// tile state to the process before its first use.
pub fn available() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        if std::env::var_os("ENGRAM_EMBED_F32").is_some_and(|v| v != "0") {
            return false;
        }
        request_tiles()
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tiles() -> bool {
    // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    if leaf.edx & (1 << 22) == 0 || leaf.edx & (1 << 24) == 0 {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this request only changes which state the kernel saves for us.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn request_tiles() -> bool {
    false
}

/// Round to nearest even, as the hardware's own conversion does.
fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// A weight matrix `[k, n]` in bf16, laid out as AMX reads it: for each block of 16 outputs,
/// its blocks of 32 inputs in order, each 16 rows of 16 (even input, odd input) pairs.
pub struct Packed {
    data: Vec<u16>,
    k: usize,
    n: usize,
}

impl Packed {
    /// Packs `w`, `[k, n]` row-major; `None` for shapes the tiles do not divide (`k` and `n`
    /// must be multiples of 32, as in every BERT size).
    pub fn new(w: &[f32], k: usize, n: usize) -> Option<Packed> {
        if !k.is_multiple_of(STEP) || !n.is_multiple_of(2 * ROWS) || w.len() != k * n {
            return None;
        }
        let mut data = vec![0u16; k * n];
        let mut at = 0;
        for col in (0..n).step_by(ROWS) {
            for k0 in (0..k).step_by(STEP) {
                for r in 0..ROWS {
                    for j in 0..ROWS {
                        for p in 0..2 {
                            data[at] = bf16(w[(k0 + 2 * r + p) * n + col + j]);
                            at += 1;
                        }
                    }
                }
            }
        }
        Some(Packed { data, k, n })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// `x · w` for `x` of `m` rows of `k` (row-major), as `m` rows of `n`. Call only when
    /// [`available`].
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        assert!(available(), "AMX matmul without AMX");
        assert_eq!(x.len(), m * self.k);
        thread_local! {
            // The inputs in bf16, kept between calls: a fresh buffer this size costs page faults.
            static INPUT: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let padded = m.div_ceil(ROWS) * ROWS;
        let mut c: Vec<f32> = Vec::with_capacity(padded * self.n);
        INPUT.with_borrow_mut(|a| {
            a.resize(padded * self.k, 0);
            to_bf16(x, &mut a[..x.len()]);
            a[x.len()..].fill(0);
            // SAFETY: `available` granted the tile state; `a` holds `padded` rows of `k`, `c`
            // room for `padded` rows of `n`, and `data` the packed tiles of `[k, n]`, which is
            // every address the kernel touches. The kernel stores every element of `c`.
            unsafe {
                kernel(a, self.k, &self.data, c.spare_capacity_mut().as_mut_ptr().cast(), self.n, padded);
                c.set_len(padded * self.n);
            }
        });
        c.truncate(m * self.n);
        c
    }
}

/// `out = bf16(x)`, with AVX-512 when the CPU has it (every CPU with AMX does).
fn to_bf16(x: &[f32], out: &mut [u16]) {
    #[inline(always)]
    fn each(x: &[f32], out: &mut [u16]) {
        for (o, v) in out.iter_mut().zip(x) {
            *o = bf16(*v);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw")]
        fn wide(x: &[f32], out: &mut [u16]) {
            each(x, out)
        }
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU was just found to have the features `wide` is compiled for.
            return unsafe { wide(x, out) };
        }
    }
    each(x, out)
}

#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

/// Four sums (two row blocks × two column blocks) in tmm0–3, inputs in tmm4–5, weights in tmm6–7.
#[cfg(target_arch = "x86_64")]
unsafe fn kernel(a: &[u16], k: usize, b: &[u16], c: *mut f32, n: usize, rows: usize) {
    use std::arch::asm;
    let mut config = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], bytes_per_row: [0; 16], rows: [0; 16] };
    for t in 0..8 {
        config.bytes_per_row[t] = 64;
        config.rows[t] = ROWS as u8;
    }
    let (a, b) = (a.as_ptr(), b.as_ptr());
    let (a_stride, c_stride, tile_stride) = (k * 2, n * 4, 64usize);
    let steps = k / STEP;
    let block = steps * TILE;
    asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly));
    let mut i = 0;
    while i < rows {
        let pair = i + 2 * ROWS <= rows;
        for j in (0..n).step_by(2 * ROWS) {
            let (b0, b1) = (b.add(j / ROWS * block), b.add((j / ROWS + 1) * block));
            asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
            for s in 0..steps {
                let a0 = a.add(i * k + s * STEP);
                let (w0, w1) = (b0.add(s * TILE), b1.add(s * TILE));
                if pair {
                    asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm5, [{a1} + {sa}*1]",
                        "tileloadd tmm6, [{w0} + {sw}*1]",
                        "tileloadd tmm7, [{w1} + {sw}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0, a1 = in(reg) a0.add(ROWS * k), w0 = in(reg) w0, w1 = in(reg) w1,
                        sa = in(reg) a_stride, sw = in(reg) tile_stride,
                        options(nostack, readonly),
                    );
                } else {
                    asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm6, [{w0} + {sw}*1]",
                        "tileloadd tmm7, [{w1} + {sw}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        a0 = in(reg) a0, w0 = in(reg) w0, w1 = in(reg) w1,
                        sa = in(reg) a_stride, sw = in(reg) tile_stride,
                        options(nostack, readonly),
                    );
                }
            }
            let c0 = c.add(i * n + j);
            asm!(
                "tilestored [{c0} + {sc}*1], tmm0",
                "tilestored [{c1} + {sc}*1], tmm1",
                c0 = in(reg) c0, c1 = in(reg) c0.add(ROWS), sc = in(reg) c_stride,
                options(nostack),
            );
            if pair {
                let c2 = c0.add(ROWS * n);
                asm!(
                    "tilestored [{c2} + {sc}*1], tmm2",
                    "tilestored [{c3} + {sc}*1], tmm3",
                    c2 = in(reg) c2, c3 = in(reg) c2.add(ROWS), sc = in(reg) c_stride,
                    options(nostack),
                );
            }
        }
        i += if pair { 2 * ROWS } else { ROWS };
    }
    asm!("tilerelease", options(nostack, nomem));
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel(_: &[u16], _: usize, _: &[u16], _: *mut f32, _: usize, _: usize) {
    unreachable!("AMX is x86-64 only; `available` is false elsewhere")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_of(b: u16) -> f32 {
        f32::from_bits((b as u32) << 16)
    }

    /// What the tiles compute, read back from the packed layout: checks the packing on any CPU.
    fn emulate(p: &Packed, x: &[f32], m: usize) -> Vec<f32> {
        let steps = p.k / STEP;
        let mut c = vec![0f32; m * p.n];
        for i in 0..m {
            for col in 0..p.n {
                let (block, j) = (col / ROWS, col % ROWS);
                let mut sum = 0f32;
                for kk in 0..p.k {
                    let (s, r, e) = (kk / STEP, (kk % STEP) / 2, kk % 2);
                    let w = p.data[(block * steps + s) * TILE + r * STEP + 2 * j + e];
                    sum += f32_of(bf16(x[i * p.k + kk])) * f32_of(w);
                }
                c[i * p.n + col] = sum;
            }
        }
        c
    }

    fn plain(w: &[f32], x: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for kk in 0..k {
                for col in 0..n {
                    c[i * n + col] += x[i * k + kk] * w[kk * n + col];
                }
            }
        }
        c
    }

    fn close(a: &[f32], b: &[f32], tolerance: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tolerance * (1.0 + y.abs()), "at {i}: {x} vs {y}");
        }
    }

    fn numbers(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3f80);
        assert_eq!(f32_of(bf16(1.0 + 1.0 / 256.0)), 1.0); // a tie goes to the even side
        assert_eq!(f32_of(bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert_eq!(f32_of(bf16(-2.5)), -2.5);
    }

    #[test]
    fn packing_keeps_every_weight_in_its_place() {
        let (k, n) = (64, 96);
        let w = numbers(k * n, 1);
        let p = Packed::new(&w, k, n).unwrap();
        for m in [1, 16, 17, 40] {
            let x = numbers(m * k, m as u32);
            // bf16 keeps 8 bits: each product is off by up to 2^-8 relative.
            close(&emulate(&p, &x, m), &plain(&w, &x, m, k, n), 0.02);
        }
        assert!(Packed::new(&w, 48, 128).is_none());
    }

    #[test]
    fn tiles_compute_what_the_packing_says() {
        if !available() {
            eprintln!("no AMX on this CPU: the tile kernel is not exercised");
            return;
        }
        for (k, n) in [(64, 96), (384, 1152), (1536, 384)] {
            let w = numbers(k * n, 7);
            let p = Packed::new(&w, k, n).unwrap();
            for m in [1, 15, 16, 33, 230] {
                let x = numbers(m * k, m as u32 + 3);
                close(&p.matmul(&x, m), &emulate(&p, &x, m), 1e-4);
            }
        }
    }
}
