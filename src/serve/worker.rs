//! The one thread that holds the unlocked store for the web server. `Engram` keeps models and
//! caches in single-threaded cells, so requests come to it as jobs and leave as replies.

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::query::time::rfc3339;
use crate::query::{Mode, SearchRequest};
use crate::store::Kind;
use crate::{AskRequest, Engram, Error, ErrorKind};

pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A failed request: what to tell the user and its kind, from which the HTTP status comes.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    pub error: String,
    pub kind: ErrorKind,
}

impl ApiError {
    pub fn new(kind: ErrorKind, error: impl Into<String>) -> ApiError {
        ApiError { error: error.into(), kind }
    }

    pub fn status(&self) -> u16 {
        self.kind.http_status()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError { error: e.to_string(), kind: e.kind() }
    }
}

/// What the page and the API ask of the store.
pub enum Job {
    Search { req: SearchRequest, offset: usize, content_type: String, window: Option<String>, reply: Reply<Value> },
    Memory { id: i64, reply: Reply<Value> },
    Frame { id: i64, thumb: bool, reply: Reply<Option<Vec<u8>>> },
    Timeline { since: i64, until: i64, limit: usize, reply: Reply<Value> },
    Ask { req: AskRequest, events: mpsc::UnboundedSender<AskEvent> },
    Status { reply: Reply<Value> },
}

pub enum AskEvent {
    Text(String),
    Done(Value),
    Failed(ApiError),
}

/// Runs jobs until every sender is gone. A job that panics is dropped with its reply (the
/// caller answers 500) and the next one is served.
pub fn run(engram: Engram, mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.blocking_recv() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(&engram, job)));
    }
}

fn serve(engram: &Engram, job: Job) {
    match job {
        Job::Search { req, offset, content_type, window, reply } => {
            let _ = reply.send(search(engram, req, offset, &content_type, window.as_deref()));
        }
        Job::Memory { id, reply } => {
            let _ = reply.send(memory(engram, id));
        }
        Job::Frame { id, thumb, reply } => {
            let _ = reply.send(engram.frame_picture(id, thumb).map_err(ApiError::from));
        }
        Job::Timeline { since, until, limit, reply } => {
            let _ = reply.send(timeline(engram, since, until, limit));
        }
        Job::Ask { req, events } => {
            let tx = events.clone();
            // Caught here too, so the stream still ends with an error event.
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engram.ask(&req, &|_| {}, &mut |piece| {
                    let _ = tx.send(AskEvent::Text(piece.to_string()));
                })
            }));
            let _ = events.send(match answer {
                Ok(Ok(a)) => AskEvent::Done(a.to_json()),
                Ok(Err(e)) => AskEvent::Failed(e.into()),
                Err(_) => AskEvent::Failed(ApiError::new(ErrorKind::Failed, crate::INTERNAL_ERROR)),
            });
        }
        Job::Status { reply } => {
            let _ = reply.send(status(engram));
        }
    }
}

/// Search results in the shape screenpipe's clients read (`data[].type/content`,
/// `pagination`), with engram's own fields added to each content.
fn search(engram: &Engram, mut req: SearchRequest, offset: usize, content_type: &str, window: Option<&str>) -> Result<Value, ApiError> {
    let limit = req.limit;
    req.kind = match content_type {
        "ocr" | "screen" => Some(Kind::Screen),
        "file" | "files" => Some(Kind::File),
        "all" | "" => req.kind,
        other => return Err(ApiError::new(ErrorKind::Usage, format!("content_type must be all, ocr or file, not {other:?}"))),
    };
    // Ask for a page more than needed so `total` says whether there is more.
    req.limit = offset + limit + limit.max(10);
    let found = engram.search(&req)?;
    let window = window.map(str::to_lowercase);
    let hits: Vec<_> = found
        .results
        .into_iter()
        .filter(|r| window.as_ref().is_none_or(|w| r.title.as_deref().is_some_and(|t| t.to_lowercase().contains(w))))
        .collect();
    let total = hits.len();
    let query = req.query.clone();
    let data: Vec<Value> = hits
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| {
            let text = r.snippet.render("**", "**");
            if r.kind == Kind::Screen {
                let (size, boxes) = matched_boxes(engram, r.id, &query);
                json!({ "type": "OCR", "content": {
                    "frame_size": size, "matched_boxes": boxes,
                    "frame_id": r.id, "id": r.id, "text": text, "timestamp": rfc3339(r.time),
                    "app_name": r.source, "window_name": r.title.clone().unwrap_or_default(),
                    "file_path": "", "offset_index": 0, "tags": [], "score": r.score, "kind": "screen",
                    "snippet": r.snippet.pieces, "caption": r.caption, "location": r.location,
                }})
            } else {
                json!({ "type": "File", "content": {
                    "id": r.id, "text": text, "timestamp": rfc3339(r.time), "file_path": r.source,
                    "title": r.title.clone().unwrap_or_default(), "score": r.score, "kind": r.kind,
                    "snippet": r.snippet.pieces, "caption": r.caption, "location": r.location,
                }})
            }
        })
        .collect();
    if !found.damaged.is_empty() {
        return Err(ApiError::new(ErrorKind::Tampered, format!("tampering detected in {}", found.damaged.join(", "))));
    }
    Ok(json!({ "data": data, "pagination": { "limit": limit, "offset": offset, "total": total } }))
}

/// The frame size and the boxes of the OCR words that match the query, so a result's
/// thumbnail can show where the words are.
fn matched_boxes(engram: &Engram, id: i64, query: &str) -> (Value, Value) {
    let Ok(Some(frame)) = engram.frame_words(id) else { return (Value::Null, json!([])) };
    let boxes = crate::extract::ocr::boxes_matching(&frame.words, query);
    (json!({ "width": frame.width, "height": frame.height }), json!(boxes))
}

fn memory(engram: &Engram, id: i64) -> Result<Value, ApiError> {
    let (item, text) = engram.show(id)?;
    let frame = engram.frame_words(id)?;
    let words: Option<Value> = frame.as_ref().and_then(|f| serde_json::from_slice(&f.words).ok());
    let caption = engram.captions(&[item.content_id])?.remove(&item.content_id);
    Ok(json!({
        "id": item.id, "kind": item.kind, "source": item.source, "title": item.title, "caption": caption,
        "app_name": item.meta.app, "time": rfc3339(item.time), "timestamp": item.time, "size": item.size,
        "text": text,
        "frame": frame.map(|f| json!({ "width": f.width, "height": f.height, "words": words, "url": format!("/api/frames/{id}") })),
    }))
}

fn timeline(engram: &Engram, since: i64, until: i64, limit: usize) -> Result<Value, ApiError> {
    let items = engram.store().items_between(Some(Kind::Screen), since, until, limit).map_err(|e| ApiError::from(Error::from(e)))?;
    let captions = engram.captions(&items.iter().map(|i| i.content_id).collect::<Vec<_>>())?;
    let frames: Vec<Value> = items
        .iter()
        .map(|i| {
            json!({ "id": i.id, "time": rfc3339(i.time), "timestamp": i.time, "app_name": i.source, "window_name": i.title,
                    "caption": captions.get(&i.content_id) })
        })
        .collect();
    Ok(json!({ "frames": frames }))
}

fn status(engram: &Engram) -> Result<Value, ApiError> {
    let s = engram.status()?;
    let now = chrono::Utc::now().timestamp();
    let p = &engram.config().privacy;
    Ok(json!({
        "status": s,
        "daemon": crate::daemon::running(engram.dir()),
        "paused_until": crate::daemon::paused(engram.dir(), now),
        "exclusions": { "apps": p.exclude_apps, "private_window_markers": p.private_window_markers,
                        "titles": p.exclude_titles, "paths": engram.config().files.exclude },
    }))
}


/// A search request from API parameters.
pub fn search_request(q: &str, limit: usize, mode: Mode) -> SearchRequest {
    let mut req = SearchRequest::new(q, limit);
    req.mode = mode;
    req
}
