//! What the benches share: generated text and vectors (deterministic, so every run sees the
//! same) and the timing and memory readings.

// Each bench uses some of these.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Zipf-like: small ranks are much more common, as in real text.
    pub fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

/// `n` made-up words of two to four syllables.
pub fn vocabulary(rng: &mut Rng, n: usize) -> Vec<String> {
    const SYL: &[&str] = &["ka", "lo", "mi", "ter", "san", "dor", "vel", "qui", "ro", "nex", "pa", "sum", "tri", "gal", "ben", "shu"];
    (0..n)
        .map(|_| {
            let len = 2 + rng.next() % 3;
            (0..len).map(|_| SYL[(rng.next() % SYL.len() as u64) as usize]).collect()
        })
        .collect()
}

/// Sentences of twelve words drawn by Zipf from `vocab`, `min..min + spread` words in all.
pub fn text(rng: &mut Rng, vocab: &[String], min: u64, spread: u64) -> String {
    let words = min + rng.next() % spread;
    let mut s = String::new();
    for i in 0..words {
        s.push_str(&vocab[rng.zipf(vocab.len())]);
        s.push(if i % 12 == 11 { '.' } else { ' ' });
        if i % 12 == 11 {
            s.push(' ');
        }
    }
    s
}

/// A document of 60 to 140 words.
pub fn document(rng: &mut Rng, vocab: &[String]) -> String {
    text(rng, vocab, 60, 80)
}

/// A random unit vector: the hard case, whose neighbours are all about equally far.
pub fn unit(rng: &mut Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| (rng.next() % 2000) as f32 / 1000.0 - 1.0).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// How long `f` takes.
pub fn timed(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// `f` timed `n` times, sorted.
pub fn timings(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut lat: Vec<Duration> = (0..n).map(|_| timed(&mut f)).collect();
    lat.sort();
    lat
}

/// The process's resident memory now and at its peak, in MB.
pub fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> f64 {
        let kb: f64 = status.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        kb / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The `p` quantile of sorted durations, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}
