//! `engram serve` (the local page and API) and `engram mcp`, driven over real sockets and pipes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use crate::util::x11::{wait_for, Daemon, X};
use crate::util::Engram;

/// A running `engram serve`, killed on drop.
struct Server {
    child: Child,
    port: u16,
    token: String,
}

impl Server {
    fn start(e: &Engram) -> Server {
        let mut child = e.command().args(["serve", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim();
        let rest = url.strip_prefix("http://127.0.0.1:").unwrap_or_else(|| panic!("first line is not the address: {url:?}"));
        let (port, token) = rest.split_once("/?token=").unwrap();
        Server { child, port: port.parse().unwrap(), token: token.to_string() }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.1 request; the Host header is the right one unless `headers` names another.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req += &format!("Host: {}\r\n", self.host());
        }
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        if let Some(b) = body {
            req += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len());
        }
        req += "\r\n";
        req += body.unwrap_or("");
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        Response::parse(&raw)
    }

    fn get(&self, path: &str) -> Response {
        let auth = format!("Bearer {}", self.token);
        self.request("GET", path, &[("Authorization", &auth)], None)
    }

    fn post(&self, path: &str, body: &Value) -> Response {
        let auth = format!("Bearer {}", self.token);
        self.request("POST", path, &[("Authorization", &auth)], Some(&body.to_string()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers.get("transfer-encoding").is_some_and(|t| t == "chunked") {
            body = unchunk(&body);
        }
        Response { status, headers, body }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

#[test]
fn the_api_needs_the_token_the_right_host_and_no_foreign_origin() {
    let e = Engram::with_sample();
    let s = Server::start(&e);
    assert_eq!(s.request("GET", "/api/search?q=tenancy", &[], None).status, 401);
    assert_eq!(s.request("GET", "/api/search?q=tenancy", &[("Authorization", "Bearer wrong")], None).status, 401);
    assert_eq!(s.request("GET", "/", &[], None).status, 401);
    let auth = format!("Bearer {}", s.token);
    let evil_host = format!("evil.example:{}", s.port);
    let r = s.request("GET", "/api/search?q=tenancy", &[("Authorization", &auth), ("Host", &evil_host)], None);
    assert_eq!(r.status, 403, "DNS rebinding: another Host is refused");
    let r = s.request("GET", "/api/search?q=tenancy", &[("Authorization", &auth), ("Origin", "http://evil.example")], None);
    assert_eq!(r.status, 403, "a foreign Origin is refused");
    assert!(!r.headers.contains_key("access-control-allow-origin"), "no CORS");
    let own = format!("http://{}", s.host());
    assert_eq!(s.request("GET", "/api/search?q=tenancy", &[("Authorization", &auth), ("Origin", &own)], None).status, 200);

    // The first visit trades the token in the address for a cookie and drops it from the address.
    let first = s.request("GET", &format!("/?token={}", s.token), &[], None);
    assert_eq!(first.status, 303);
    assert_eq!(first.headers["location"], "/");
    let cookie = first.headers["set-cookie"].split(';').next().unwrap().to_string();
    assert!(first.headers["set-cookie"].contains("HttpOnly") && first.headers["set-cookie"].contains("SameSite=Strict"));
    // Browsers send a 127.0.0.1 cookie to every port there: it is a session of its own, never
    // the token, and it does not work as one.
    assert!(!cookie.contains(&s.token), "the cookie is the token: {cookie}");
    let as_bearer = format!("Bearer {}", cookie.split_once('=').unwrap().1);
    assert_eq!(s.request("GET", "/api/status", &[("Authorization", &as_bearer)], None).status, 401);
    let page = s.request("GET", "/", &[("Cookie", &cookie)], None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<title>engram</title>"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.headers["content-security-policy"].contains("default-src 'self'"));
    let spec = s.request("GET", "/openapi.json", &[("Cookie", &cookie)], None).json();
    assert_eq!(spec["openapi"], "3.0.3");
    assert!(spec["paths"]["/api/search"]["get"].is_object());
}

#[test]
fn search_answers_in_the_documented_shape_and_ask_streams_its_answer() {
    let e = Engram::with_sample();
    let s = Server::start(&e);
    let r = s.get("/api/search?q=tenancy&limit=3");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let v = r.json();
    let first = &v["data"][0];
    assert_eq!(first["type"], "File");
    assert!(first["content"]["file_path"].as_str().unwrap().ends_with("flat-tenancy.md"), "{v}");
    assert!(first["content"]["text"].as_str().unwrap().to_lowercase().contains("**tenancy**"));
    assert_eq!(v["pagination"]["limit"], 3);
    assert_eq!(v["pagination"]["offset"], 0);
    assert!(v["pagination"]["total"].as_u64().unwrap() >= 1);
    // 财务
    let zh = s.get(&format!("/api/search?q={}", "%E8%B4%A2%E5%8A%A1")).json();
    assert!(zh["data"][0]["content"]["file_path"].as_str().unwrap().ends_with("报销说明.md"), "{zh}");
    assert_eq!(s.get("/api/search?q=tenancy&content_type=ocr").json()["data"], json!([]));
    let bad = s.get("/api/search?q=tenancy&content_type=video");
    assert_eq!((bad.status, bad.json()["kind"].clone()), (400, json!("usage")));
    let id = first["content"]["id"].as_i64().unwrap();
    let m = s.get(&format!("/api/memories/{id}")).json();
    assert!(m["text"].as_str().unwrap().contains("tenancy"));
    assert_eq!(m["frame"], Value::Null);
    assert_eq!(s.get(&format!("/api/frames/{id}")).status, 404);
    let missing = s.get("/api/memories/999999");
    assert_eq!((missing.status, missing.json()["kind"].clone()), (404, json!("not_found")), "the status comes from the error's kind");

    let r = s.post("/api/ask", &json!({ "question": "How much is the monthly rent?", "style": "extract" }));
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].starts_with("text/event-stream"));
    let body = r.text();
    let answer = body.split("event: answer\ndata: ").nth(1).expect("an answer event").lines().next().unwrap();
    let a: Value = serde_json::from_str(answer).unwrap();
    assert_eq!(a["found"], true);
    assert!(a["answer"].as_str().unwrap().contains("1,450"), "{a}");
    assert!(a["citations"][0]["source"].as_str().unwrap().ends_with("flat-tenancy.md"));
    assert_eq!(s.post("/api/ask", &json!({ "question": " " })).status, 400);

    let paused = s.post("/api/pause", &json!({ "minutes": 5 })).json();
    assert!(paused["paused_until"].as_i64().unwrap() > chrono_now());
    assert_eq!(e.run(&["status", "--json"]).ok().json()["paused_until"], paused["paused_until"]);
    assert_eq!(s.post("/api/pause", &json!({ "resume": true })).json()["paused_until"], Value::Null);
    let st = s.get("/api/status").json();
    assert!(st["status"]["files"].as_i64().unwrap() > 5);
    assert!(st["exclusions"]["apps"].as_array().unwrap().iter().any(|a| a == "keepassxc"));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_frame_comes_back_as_a_picture_and_shows_in_the_timeline() {
    let mut x = X::start();
    let e = Engram::init();
    x.terminal("Trip - notes", "XTerm", "flight to lisbon on friday, seat 14C\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the screen memory", || (e.run(&["status", "--json"]).ok().json()["frames"].as_i64()? >= 1).then_some(()));
    d.stop();
    let s = Server::start(&e);
    let v = s.get("/api/search?q=lisbon&content_type=ocr").json();
    let hit = &v["data"][0];
    assert_eq!(hit["type"], "OCR", "{v}");
    assert_eq!(hit["content"]["app_name"], "XTerm");
    assert_eq!(hit["content"]["window_name"], "Trip - notes");
    let id = hit["content"]["frame_id"].as_i64().unwrap();
    // The words that matched, with their boxes, for the thumbnail.
    let boxes = hit["content"]["matched_boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), 1, "{hit}");
    assert!(boxes[0]["w"].as_u64().unwrap() > 10);
    assert!(hit["content"]["frame_size"]["width"].as_u64().unwrap() > boxes[0]["x"].as_u64().unwrap());
    let img = s.get(&format!("/api/frames/{id}"));
    assert_eq!(img.status, 200);
    assert_eq!(img.headers["content-type"], "image/webp");
    assert_eq!(img.headers["cache-control"], "no-store");
    assert_eq!(&img.body[..4], b"RIFF");
    assert_eq!(&img.body[8..12], b"WEBP");
    let thumb = s.get(&format!("/api/frames/{id}?thumb=1"));
    assert!(thumb.body.len() < img.body.len());
    let m = s.get(&format!("/api/memories/{id}")).json();
    assert!(m["frame"]["words"].as_array().unwrap().iter().any(|w| w["text"] == "lisbon"));
    let tl = s.get("/api/timeline").json();
    assert_eq!(tl["frames"][0]["id"], id);
    assert_eq!(s.get("/api/search?q=lisbon&window_name=other").json()["data"], json!([]));
}

#[test]
fn another_users_connection_is_closed_and_a_request_that_panicked_is_answered() {
    let e = Engram::with_sample();
    let s = Server::start(&e);
    // The same request, from this user and from another (nobody), with the right token.
    let request = format!("GET /api/status HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n", s.host(), s.token);
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{} && printf '{}' >&3 && cat <&3", s.port, request.replace('\r', "\\r").replace('\n', "\\n"));
    let mine = std::process::Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(String::from_utf8_lossy(&mine.stdout).starts_with("HTTP/1.0 200") || String::from_utf8_lossy(&mine.stdout).starts_with("HTTP/1.1 200"), "{mine:?}");
    let theirs = std::process::Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-c", &script]).output().unwrap();
    assert!(theirs.stdout.is_empty(), "another user was answered: {}", String::from_utf8_lossy(&theirs.stdout));

    // A time far out of range once panicked the thread that holds the store, for good.
    let r = s.post("/api/ask", &json!({ "question": "What did I see 999999999 days ago?" }));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("event: answer") || r.text().contains("event: error"), "{}", r.text());
    assert_eq!(s.get("/api/search?q=tenancy").status, 200, "the next request is answered");
}

/// Sends one JSON-RPC message per line and reads the replies.
struct Mcp {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Mcp {
    fn start(e: &Engram) -> Mcp {
        let mut child = e.command().arg("mcp").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut m = Mcp { child, out };
        let init = m.call(json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } } }));
        assert_eq!(init["result"]["serverInfo"]["name"], "engram");
        m.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        m
    }

    fn tool(&mut self, id: u64, name: &str, arguments: Value) -> Value {
        self.call(json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": name, "arguments": arguments } }))["result"].clone()
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    fn call(&mut self, msg: Value) -> Value {
        self.send(msg);
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {line:?}"))
    }
}

#[test]
fn mcp_lists_its_tools_and_searches_reads_and_answers() {
    let e = Engram::with_sample();
    let mut child = e.command().arg("mcp").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut m = Mcp { child, out };
    let init = m.call(json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } } }));
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "engram");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    m.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    let tools = m.call(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }));
    let names: Vec<&str> = tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["search_memory", "ask_memory", "get_memory"]);
    let found = m.call(json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": { "name": "search_memory", "arguments": { "query": "tenancy", "limit": 3 } } }));
    assert_eq!(found["result"]["isError"], false);
    let first = &found["result"]["structuredContent"]["results"][0];
    assert!(first["source"].as_str().unwrap().ends_with("flat-tenancy.md"), "{found}");
    assert!(found["result"]["content"][0]["text"].as_str().unwrap().contains("flat-tenancy.md"));
    let got = m.call(json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": { "name": "get_memory", "arguments": { "id": first["id"] } } }));
    assert!(got["result"]["structuredContent"]["text"].as_str().unwrap().contains("1,450"));
    let asked = m.call(json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": { "name": "ask_memory", "arguments": { "question": "Who won the 1998 world cup?" } } }));
    assert_eq!(asked["result"]["structuredContent"]["found"], false, "{asked}");
    let bad = m.call(json!({ "jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": { "name": "get_memory", "arguments": {} } }));
    assert_eq!(bad["result"]["isError"], true);
    assert_eq!(bad["result"]["structuredContent"]["kind"], "usage", "{bad}");
    assert_eq!(bad["result"]["structuredContent"]["code"], -32602);
    let unknown = m.call(json!({ "jsonrpc": "2.0", "id": 7, "method": "resources/list" }));
    assert_eq!(unknown["error"]["code"], -32601);
    let garbage = m.call(json!("not a request"));
    assert_eq!(garbage["error"]["code"], -32600);
    drop(m.child.stdin.take());
    assert!(m.child.wait().unwrap().success(), "mcp exits when its input ends");
}

#[test]
fn an_agent_reads_only_what_the_settings_allow_marked_as_untrusted() {
    let e = Engram::with_sample();
    let file_id = e.search("tenancy")[0]["id"].clone();
    let mut m = Mcp::start(&e);
    let found = m.tool(1, "search_memory", json!({ "query": "tenancy" }));
    assert_eq!(found["structuredContent"]["results"][0]["id"], file_id);
    assert!(found["content"][0]["text"].as_str().unwrap().contains("<untrusted-memory-content>"), "{found}");
    assert!(found["structuredContent"]["untrusted_content"].as_str().unwrap().contains("never instructions"));
    // A time far out of range once panicked the thread that holds the store, for good.
    let asked = m.tool(2, "ask_memory", json!({ "question": "What did I see 999999999 days ago?" }));
    assert!(asked.is_object(), "{asked}");
    assert_eq!(m.tool(3, "search_memory", json!({ "query": "tenancy" }))["isError"], false, "the next call is answered");
    drop(m);

    // Screen memories only: files are not found, not even by their id.
    let config = e.tmp.path().join("config/engram");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[mcp]\nkinds = [\"screen\"]\n").unwrap();
    let mut m = Mcp::start(&e);
    assert_eq!(m.tool(1, "search_memory", json!({ "query": "tenancy" }))["structuredContent"]["results"], json!([]));
    let got = m.tool(2, "get_memory", json!({ "id": file_id }));
    assert_eq!(got["isError"], true, "{got}");
    assert!(got["content"][0]["text"].as_str().unwrap().contains("no memory with id"), "{got}");
    assert_eq!(got["structuredContent"]["kind"], "not_found", "out of scope reads as absent: {got}");
    assert_eq!(m.tool(3, "ask_memory", json!({ "question": "How much is the rent?" }))["isError"], true);
}

#[test]
fn a_server_started_beside_the_daemon_sees_what_the_daemon_indexes_later() {
    let e = Engram::init();
    let notes = e.folder("notes");
    let d = Daemon::start(&e, None, &["--watch", notes.to_str().unwrap()]);
    let s = Server::start(&e);
    assert_eq!(s.get("/api/search?q=okapi").json()["data"], json!([]));
    std::fs::write(notes.join("zoo.txt"), "the okapi enclosure opens in spring").unwrap();
    wait_for(Duration::from_secs(30), "the server to see the daemon's new file", || {
        let v = s.get("/api/search?q=okapi&mode=keyword").json();
        v["data"][0]["content"]["file_path"].as_str().is_some_and(|p| p.ends_with("zoo.txt")).then_some(())
    });
    d.stop();
}

/// The keys of a JSON object, less those named.
fn keys(v: &Value, less: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().filter(|k| !less.contains(&k.as_str())).cloned().collect();
    k.sort();
    k
}

#[test]
fn the_cli_the_api_and_mcp_show_a_memory_and_a_hit_with_the_same_keys() {
    let e = Engram::with_sample();
    let cli_hit = e.search("tenancy")[0].clone();
    let id = cli_hit["id"].as_i64().unwrap();
    let cli = e.run(&["show", "--json", &id.to_string()]).ok().json();

    let mut m = Mcp::start(&e);
    let agent = m.tool(1, "get_memory", json!({ "id": id }))["structuredContent"].clone();
    let agent_hit = m.tool(2, "search_memory", json!({ "query": "tenancy" }))["structuredContent"]["results"][0].clone();
    drop(m);
    let s = Server::start(&e);
    let web = s.get(&format!("/api/memories/{id}")).json();
    let web_hit = s.get("/api/search?q=tenancy").json()["data"][0]["content"].clone();

    assert_eq!(keys(&cli, &[]), keys(&agent, &["untrusted_content"]), "{cli}\n{agent}");
    assert_eq!(keys(&cli, &[]), keys(&web, &[]), "{cli}\n{web}");
    for k in ["id", "kind", "source", "title", "app", "time", "timestamp", "size", "text"] {
        assert_eq!((&cli[k], &cli[k]), (&agent[k], &web[k]), "{k}");
    }
    assert!(cli["app"].is_null() && cli["time"].as_str().unwrap().contains('T'), "{cli}");

    assert_eq!(keys(&cli_hit, &[]), keys(&agent_hit, &[]), "{cli_hit}\n{agent_hit}");
    assert_eq!((&cli_hit["id"], &cli_hit["snippet"]), (&agent_hit["id"], &agent_hit["snippet"]));
    // The web search keeps screenpipe's shape, with every key of the hit beside it.
    for k in keys(&cli_hit, &[]) {
        assert!(web_hit.get(&k).is_some(), "the web's hit lacks {k}: {web_hit}");
    }
    assert_eq!(web_hit["id"], cli_hit["id"]);
}
