//! A real `engram serve` on a bench's store, loaded by client threads over keep-alive HTTP:
//! throughput and latency at 1 and N clients, and the server process's memory.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::corpus::percentile;

/// The release binary beside the bench's own (`cargo bench` builds it), or `$ENGRAM_BIN`.
pub fn binary() -> Option<PathBuf> {
    let bin = std::env::var_os("ENGRAM_BIN").map(PathBuf::from).or_else(|| {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.join("engram"))
    })?;
    bin.exists().then_some(bin)
}

pub struct Server {
    child: Child,
    port: u16,
    token: String,
}

/// What the clients saw.
pub struct Load {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub errors: usize,
    /// The server's CPU time over the load, in cores (2.0: both cores of this machine busy).
    pub cores: f64,
}

impl Server {
    /// `engram --config CONFIG serve --port 0` on the store in `data`, unlocked with `passphrase`.
    pub fn start(bin: &Path, data: &Path, config: &Path, passphrase: &str) -> io::Result<Server> {
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .args(["serve", "--port", "0"])
            .env("ENGRAM_DATA_DIR", data)
            .env("ENGRAM_PASSPHRASE", passphrase)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        // http://127.0.0.1:PORT/?token=TOKEN
        let parsed = line.trim().strip_prefix("http://127.0.0.1:").and_then(|rest| {
            let (port, token) = rest.split_once("/?token=")?;
            Some((port.parse().ok()?, token.to_string()))
        });
        match parsed {
            Some((port, token)) => Ok(Server { child, port, token }),
            None => {
                let _ = child.kill();
                Err(io::Error::other(format!("engram serve said {line:?}")))
            }
        }
    }

    /// One search on a new connection.
    pub fn search(&self, query: &str) -> io::Result<()> {
        let mut conn = BufReader::new(TcpStream::connect(("127.0.0.1", self.port))?);
        match get(&mut conn, &format!("/api/search?q={}&limit=10", encode(query)), &self.token)? {
            200 => Ok(()),
            status => Err(io::Error::other(format!("status {status}"))),
        }
    }

    /// The server's resident memory, in MB.
    pub fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }

    /// The server's CPU time so far (user and system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
        // SAFETY: sysconf only reads a system constant.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    /// `clients` connections, each sending one search after another for `secs` seconds.
    pub fn load(&self, queries: &[String], clients: usize, secs: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let cpu = self.cpu_seconds();
        let start = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                let (stop, port, token) = (stop.clone(), self.port, self.token.clone());
                let queries: Vec<String> = queries.to_vec();
                std::thread::spawn(move || {
                    let (mut times, mut errors) = (Vec::new(), 0);
                    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else { return (times, 1) };
                    let mut conn = BufReader::new(stream);
                    let mut i = c * 7;
                    while !stop.load(Ordering::Relaxed) {
                        let path = format!("/api/search?q={}&limit=10", encode(&queries[i % queries.len()]));
                        i += 1;
                        let t = Instant::now();
                        match get(&mut conn, &path, &token) {
                            Ok(200) => times.push(t.elapsed()),
                            _ => {
                                errors += 1;
                                match TcpStream::connect(("127.0.0.1", port)) {
                                    Ok(s) => conn = BufReader::new(s),
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                    (times, errors)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let (mut times, mut errors) = (Vec::new(), 0);
        for t in threads {
            let (t, e) = t.join().expect("client thread");
            times.extend(t);
            errors += e;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cores = (self.cpu_seconds() - cpu) / elapsed;
        times.sort();
        let (p50_ms, p95_ms) = if times.is_empty() { (0.0, 0.0) } else { (percentile(&times, 0.5), percentile(&times, 0.95)) };
        Load { per_second: times.len() as f64 / elapsed, p50_ms, p95_ms, errors, cores }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET on a kept-alive connection; the status. The body is read (by its length) and dropped.
fn get(conn: &mut BufReader<TcpStream>, path: &str, token: &str) -> io::Result<u16> {
    let port = conn.get_ref().peer_addr()?.port();
    // One write, without Nagle's delay: pieces of a request would wait for the server's ACK.
    conn.get_ref().set_nodelay(true)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes())?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| io::Error::other("no status"))?;
    let mut length = None;
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<u64>().ok();
            }
        }
    }
    let length = length.ok_or_else(|| io::Error::other("no content-length"))?;
    io::copy(&mut conn.by_ref().take(length), &mut io::sink())?;
    Ok(status)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
