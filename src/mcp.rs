//! `engram mcp`: a Model Context Protocol server over stdio, so local agents can use engram as
//! their memory: tools `search_memory`, `ask_memory` and `get_memory`.
//!
//! Messages are JSON-RPC 2.0, one per line (the MCP stdio transport). Only stdout carries
//! protocol; anything for people goes to stderr.

use std::io::{BufRead, Write};

use serde_json::{json, Value};

use crate::query::time::parse_time;
use crate::query::SearchRequest;
use crate::store::Kind;
use crate::{AskRequest, Engram, Error};

/// Protocol revisions this server speaks, newest first.
const VERSIONS: &[&str] = &["2025-06-18", "2025-03-26", "2024-11-05"];

pub fn run(engram: Engram, input: impl BufRead, mut output: impl Write) -> Result<(), Error> {
    for line in input.lines() {
        let line = line.map_err(|e| Error::Other(format!("could not read stdin: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(msg) => handle(&engram, &msg),
            Err(e) => Some(error(Value::Null, -32700, &format!("parse error: {e}"))),
        };
        if let Some(reply) = reply {
            writeln!(output, "{reply}").and_then(|_| output.flush()).map_err(|e| Error::Other(format!("could not write stdout: {e}")))?;
        }
    }
    Ok(())
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// The reply to one message; `None` for notifications.
fn handle(engram: &Engram, msg: &Value) -> Option<Value> {
    if !msg.is_object() || msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(error(msg.get("id").cloned().unwrap_or(Value::Null), -32600, "invalid request: expected a JSON-RPC 2.0 object"));
    }
    // No id: a notification (notifications/initialized, notifications/cancelled, …), no reply.
    let id = msg.get("id").cloned()?;
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    let params = msg.get("params").cloned().unwrap_or(json!({}));
    let result = match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or(VERSIONS[0]);
            let version = VERSIONS.iter().find(|v| **v == asked).copied().unwrap_or(VERSIONS[0]);
            Ok(json!({
                "protocolVersion": version,
                "capabilities": { "tools": { "listChanged": false } },
                "serverInfo": { "name": "engram", "title": "engram: your private memory", "version": env!("CARGO_PKG_VERSION") },
                "instructions": "engram holds what the user saw on screen and wrote in files on this computer. \
                    Use search_memory to find things, get_memory to read one in full, ask_memory for a cited answer.",
            }))
        }
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({ "tools": tools() })),
        "tools/call" => Ok(call(engram, &params)),
        _ => Err((-32601, format!("method not found: {method}"))),
    };
    Some(match result {
        Ok(r) => json!({ "jsonrpc": "2.0", "id": id, "result": r }),
        Err((code, m)) => error(id, code, &m),
    })
}

fn tools() -> Value {
    let filters = json!({
        "since": { "type": "string", "description": "only memories from this time: 2026-03-01, 3d, '2 weeks ago', yesterday" },
        "until": { "type": "string", "description": "only memories before this time" },
        "kind": { "type": "string", "enum": ["file", "screen"], "description": "files the user wrote or screens they saw" },
        "app": { "type": "string", "description": "screen memories of this app (part of its name)" },
    });
    let with = |extra: Value| {
        let mut props = filters.clone();
        props.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        props
    };
    json!([
        {
            "name": "search_memory",
            "title": "Search memories",
            "description": "Search the user's memories (files and screen text, English and Chinese) by keywords and meaning. Returns ids, sources, times and snippets.",
            "inputSchema": { "type": "object", "required": ["query"], "properties": with(json!({
                "query": { "type": "string", "description": "words to find; \"quoted phrase\"; -exclude" },
                "limit": { "type": "integer", "minimum": 1, "maximum": 50, "default": 10 },
            })) },
        },
        {
            "name": "ask_memory",
            "title": "Ask memories",
            "description": "Answer a question from the user's memories with a local model; the answer quotes and cites the memories it came from, or says it is not found.",
            "inputSchema": { "type": "object", "required": ["question"], "properties": with(json!({
                "question": { "type": "string" },
            })) },
        },
        {
            "name": "get_memory",
            "title": "Read one memory",
            "description": "The full text and details of one memory, by the id a search returned.",
            "inputSchema": { "type": "object", "required": ["id"], "properties": { "id": { "type": "integer" } } },
        },
    ])
}

/// A tool result; failures are results with `isError`, so the agent sees why.
fn call(engram: &Engram, params: &Value) -> Value {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let out = match name {
        "search_memory" => search(engram, &args),
        "ask_memory" => ask(engram, &args),
        "get_memory" => get(engram, &args),
        other => Err(format!("unknown tool {other:?}")),
    };
    match out {
        Ok(v) => json!({ "content": [{ "type": "text", "text": serde_json::to_string_pretty(&v).unwrap_or_default() }], "structuredContent": v, "isError": false }),
        Err(e) => json!({ "content": [{ "type": "text", "text": e }], "isError": true }),
    }
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

type Filters = (Option<i64>, Option<i64>, Option<Kind>, Option<String>);

fn filters(args: &Value) -> Result<Filters, String> {
    let now = chrono::Local::now();
    let time = |k| str_arg(args, k).map(|t| parse_time(t, now).map_err(|e| e.to_string())).transpose();
    let kind = str_arg(args, "kind").map(|k| Kind::parse(k).ok_or_else(|| format!("kind must be file or screen, not {k:?}"))).transpose()?;
    Ok((time("since")?, time("until")?, kind, str_arg(args, "app").map(String::from)))
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339()).unwrap_or_default()
}

fn search(engram: &Engram, args: &Value) -> Result<Value, String> {
    let query = str_arg(args, "query").ok_or("query is required")?;
    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(10).clamp(1, 50) as usize;
    let mut req = SearchRequest::new(query, limit);
    (req.since, req.until, req.kind, req.app) = filters(args)?;
    let found = engram.search(&req).map_err(|e| e.to_string())?;
    let results: Vec<Value> = found
        .results
        .iter()
        .map(|r| json!({ "id": r.id, "kind": r.kind, "source": r.source, "title": r.title, "time": rfc3339(r.time), "snippet": r.snippet.render("**", "**") }))
        .collect();
    Ok(json!({ "results": results }))
}

fn ask(engram: &Engram, args: &Value) -> Result<Value, String> {
    let question = str_arg(args, "question").ok_or("question is required")?;
    let mut req = AskRequest::new(question, &engram.config().ask);
    (req.since, req.until, req.kind, req.app) = filters(args)?;
    let answer = engram.ask(&req, &|_| {}, &mut |_| {}).map_err(|e| e.to_string())?;
    Ok(answer.to_json())
}

fn get(engram: &Engram, args: &Value) -> Result<Value, String> {
    let id = args.get("id").and_then(Value::as_i64).ok_or("id is required (an integer from search_memory)")?;
    let (item, text) = engram.show(id).map_err(|e| e.to_string())?;
    Ok(json!({ "id": item.id, "kind": item.kind, "source": item.source, "title": item.title, "app": item.meta.app, "time": rfc3339(item.time), "text": text }))
}
