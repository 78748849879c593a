//! `engram serve`: the local web page and its API, on 127.0.0.1 only.
//!
//! Only the user who started it is answered: a connection from another local user is closed
//! unread (see [`peer`]). Every request must carry the random token printed at start: as
//! `?token=` on the first visit (answered with a session cookie of its own, not the token, and
//! a redirect that takes the token out of the address bar), then as the cookie, or as
//! `Authorization: Bearer` for programs. Browsers send a 127.0.0.1 cookie to every port there,
//! so the cookie is useless to another user's server: their connections are refused. A request
//! naming another Host, or sent from another Origin, is refused before the token is even looked
//! at: a web page elsewhere cannot reach this server through the user's browser (DNS
//! rebinding, cross-site requests). Nothing decrypted is cached: every response says
//! `Cache-Control: no-store`.

mod api;
mod peer;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt as _;

use engram::query::{Mode, SearchRequest};
use engram::service::contract::{Filters, Request as Call, Response as Reply};
use engram::service::worker::{self, Client};
use engram::store::Kind;
use engram::{AskRequest, Engram, Error, ErrorKind};
use api::ApiError;

const COOKIE: &str = "engram_session";

struct Shared {
    token: String,
    /// The browser session's cookie value: another random secret, so the token itself is never
    /// stored by a browser.
    session: String,
    /// Host headers this server answers to.
    hosts: Vec<String>,
    /// Origins its own page sends.
    origins: Vec<String>,
    store: Client,
    dir: std::path::PathBuf,
    ask: engram::config::AskConfig,
    /// What the page shows of the privacy settings.
    exclusions: Value,
}

/// Serves until the process is stopped. `open` unlocks the store (on the thread that will own
/// it); `on_ready` gets the address to open, with the token.
pub fn run(open: impl FnOnce() -> Result<Engram, Error> + Send + 'static, port: u16, on_ready: impl FnOnce(&str)) -> Result<(), Error> {
    let token = random_hex()?;
    let session = random_hex()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("could not start the server runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on 127.0.0.1:{port}: {e} (pick another with --port)")))?;
        let port = listener.local_addr().map_err(|e| Error::Other(e.to_string()))?.port();
        let (store, (dir, ask, exclusions)) = worker::spawn(open, |e| {
            let p = &e.config().privacy;
            let exclusions = json!({ "apps": p.exclude_apps, "private_window_markers": p.private_window_markers,
                                     "titles": p.exclude_titles, "paths": e.config().files.exclude });
            (e.dir().to_path_buf(), e.config().ask.clone(), exclusions)
        }, worker::readers())?;
        let shared = Arc::new(Shared {
            token: token.clone(),
            session,
            hosts: vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            origins: vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")],
            store,
            dir,
            ask,
            exclusions,
        });
        on_ready(&format!("http://127.0.0.1:{port}/?token={token}"));
        axum::serve(peer::SameUser(listener), router(shared)).await.map_err(|e| Error::Other(format!("the server stopped: {e}")))
    })
}

/// 24 random bytes as hex.
fn random_hex() -> Result<String, Error> {
    let mut bytes = [0u8; 24];
    engram::crypto::random_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { page("text/html; charset=utf-8", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/index.html"))) }))
        .route("/app.js", get(|| async { page("text/javascript; charset=utf-8", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/app.js"))) }))
        .route("/style.css", get(|| async { page("text/css; charset=utf-8", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/style.css"))) }))
        .route("/favicon.svg", get(|| async { page("image/svg+xml", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/favicon.svg"))) }))
        .route("/favicon.ico", get(|| async { page("image/svg+xml", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/favicon.svg"))) }))
        .route("/openapi.json", get(|| async { page("application/json", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/openapi.json"))) }))
        .route("/api/search", get(search))
        .route("/api/ask", post(ask))
        .route("/api/frames/{id}", get(frame))
        .route("/api/memories/{id}", get(memory))
        .route("/api/timeline", get(timeline))
        .route("/api/status", get(status))
        .route("/api/pause", post(pause))
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Host and Origin first (403), then the token (401); then the response gets its headers.
async fn guard(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !s.hosts.iter().any(|h| h == host) {
        return refuse(StatusCode::FORBIDDEN, "this server answers only to 127.0.0.1 and localhost");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !s.origins.iter().any(|o| o.as_bytes() == origin.as_bytes()) {
            return refuse(StatusCode::FORBIDDEN, "requests from other sites are refused");
        }
    }
    let bearer = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_string))
        .collect::<Vec<_>>();
    let query_token = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    let good = |t: &str| same(t.as_bytes(), s.token.as_bytes());
    let mut response = if bearer.is_some_and(good) || cookie.iter().any(|c| same(c.as_bytes(), s.session.as_bytes())) {
        next.run(req).await
    } else if query_token.is_some_and(good) {
        if req.method() == Method::GET && !req.uri().path().starts_with("/api/") {
            // Take the token out of the address bar and the history; the cookie carries it now.
            let rest: Vec<&str> = req.uri().query().unwrap_or("").split('&').filter(|kv| !kv.starts_with("token=") && !kv.is_empty()).collect();
            let to = if rest.is_empty() { req.uri().path().to_string() } else { format!("{}?{}", req.uri().path(), rest.join("&")) };
            Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, to)
                .header(header::SET_COOKIE, format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", s.session))
                .body(Body::empty())
                .expect("a redirect builds")
        } else {
            next.run(req).await
        }
    } else {
        refuse(StatusCode::UNAUTHORIZED, "missing or wrong token: open the address `engram serve` printed")
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
    );
    response
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({ "error": why }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!(self))).into_response()
    }
}

/// The store's final reply; its error as the API's.
async fn call(s: &Shared, request: Call) -> Result<Reply, ApiError> {
    match s.store.ask(request).await {
        Reply::Error { message, kind } => Err(ApiError::new(kind, message)),
        reply => Ok(reply),
    }
}

fn bad(msg: String) -> ApiError {
    ApiError::new(ErrorKind::Usage, msg)
}

fn usize_param(v: Option<&String>, default: usize, max: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => s.parse::<usize>().map(|n| n.min(max)).map_err(|_| bad(format!("expected a number, got {s:?}"))),
    }
}

async fn search(State(s): State<Arc<Shared>>, Query(p): Query<HashMap<String, String>>) -> Result<Json<Value>, ApiError> {
    let q = p.get("q").cloned().unwrap_or_default();
    let limit = usize_param(p.get("limit"), 20, 200)?;
    let offset = usize_param(p.get("offset"), 0, 10_000)?;
    let mode = match p.get("mode").map(String::as_str) {
        None | Some("") => Mode::Hybrid,
        Some(m) => Mode::parse(m).ok_or_else(|| bad(format!("mode must be hybrid, keyword or semantic, not {m:?}")))?,
    };
    let filters = Filters::parse(param(&p, "start_time"), param(&p, "end_time"), param(&p, "kind"), param(&p, "app_name"))?;
    // A page more than needed, so `total` says whether there is more.
    let mut query = SearchRequest::new(q, offset + limit + limit.max(10)).with_filters(filters);
    query.mode = mode;
    query.kind = api::content_kind(param(&p, "content_type").unwrap_or("all"), query.kind)?;
    match call(&s, Call::Search { query, boxes: true }).await? {
        Reply::Found(found) => Ok(Json(api::search_page(found, offset, limit, param(&p, "window_name"))?)),
        other => Err(other.unexpected().into()),
    }
}

fn param<'a>(p: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    p.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

#[derive(Deserialize)]
struct AskBody {
    question: String,
    start_time: Option<String>,
    end_time: Option<String>,
    kind: Option<String>,
    app_name: Option<String>,
    style: Option<engram::answer::Style>,
    #[serde(default)]
    any_time: bool,
}

/// Server-sent events: `text` pieces as the answer is written, then `answer` (the JSON of
/// `engram ask --json`), or `error`.
async fn ask(State(s): State<Arc<Shared>>, Json(b): Json<AskBody>) -> Result<Response, ApiError> {
    if b.question.trim().is_empty() {
        return Err(bad("the question is empty".into()));
    }
    let filters = Filters::parse(b.start_time.as_deref(), b.end_time.as_deref(), b.kind.as_deref(), b.app_name.as_deref())?;
    let mut req = AskRequest::new(b.question, &s.ask).with_filters(filters);
    req.any_time = b.any_time;
    if let Some(style) = b.style {
        req.style = style;
    }
    // The store's thread drops its sender after the answer, which ends the stream.
    let stream = UnboundedReceiverStream::new(s.store.call(Call::Ask(req))).map(|reply| {
        Ok::<_, Infallible>(match reply {
            Reply::Text { text } => Event::default().event("text").data(text),
            Reply::Answer(a) => Event::default().event("answer").data(a.to_json().to_string()),
            other => Event::default().event("error").data(json!(ApiError::from(other.unexpected())).to_string()),
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

async fn frame(State(s): State<Arc<Shared>>, Path(id): Path<i64>, Query(p): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let thumb = p.get("thumb").is_some_and(|v| v == "1" || v == "true");
    match call(&s, Call::Picture { id, thumb }).await? {
        Reply::Picture { webp } => Ok(([(header::CONTENT_TYPE, "image/webp")], webp).into_response()),
        other => Err(other.unexpected().into()),
    }
}

/// One memory (the contract's `Memory`), its OCR words and the address of its picture.
async fn memory(State(s): State<Arc<Shared>>, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    match call(&s, Call::Show { id, words: true }).await? {
        Reply::Memory(m) => {
            let mut v = json!(m);
            if v["frame"].is_object() {
                v["frame"]["url"] = json!(format!("/api/frames/{id}"));
            }
            Ok(Json(v))
        }
        other => Err(other.unexpected().into()),
    }
}

/// Screen memories in time order, as the contract's `Entry`.
async fn timeline(State(s): State<Arc<Shared>>, Query(p): Query<HashMap<String, String>>) -> Result<Json<Value>, ApiError> {
    let mut filters = Filters::parse(param(&p, "start_time"), param(&p, "end_time"), None, None)?;
    filters.kind = Some(Kind::Screen);
    let limit = usize_param(p.get("limit"), 500, 5000)?;
    match call(&s, Call::Timeline { filters, limit }).await? {
        Reply::Timeline { memories } => Ok(Json(json!({ "frames": memories }))),
        other => Err(other.unexpected().into()),
    }
}

/// The contract's `Status`, with what the page shows of the privacy settings.
async fn status(State(s): State<Arc<Shared>>) -> Result<Json<Value>, ApiError> {
    match call(&s, Call::Status).await? {
        Reply::Status(st) => Ok(Json(json!({
            "daemon": st.daemon, "paused_until": st.paused_until, "exclusions": s.exclusions, "status": st,
        }))),
        other => Err(other.unexpected().into()),
    }
}

#[derive(Deserialize)]
struct PauseBody {
    /// Minutes to pause; absent pauses until resumed.
    minutes: Option<u64>,
    /// Resume instead.
    #[serde(default)]
    resume: bool,
}

async fn pause(State(s): State<Arc<Shared>>, Json(b): Json<PauseBody>) -> Result<Json<Value>, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let failed = |e: std::io::Error| ApiError::new(ErrorKind::Failed, format!("could not change the pause file: {e}"));
    if b.resume {
        engram::daemon::resume(&s.dir).map_err(failed)?;
    } else {
        // At most a year: a pause is not a way to turn capture off for good.
        let until = b.minutes.map(|m| now + m.min(366 * 24 * 60) as i64 * 60);
        engram::daemon::pause(&s.dir, until).map_err(failed)?;
    }
    Ok(Json(json!({ "paused_until": engram::daemon::paused(&s.dir, now) })))
}
