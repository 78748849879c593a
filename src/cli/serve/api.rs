//! The web API's shapes: the contract's replies as JSON for the page and for programs. Search
//! results keep the shape screenpipe's clients read (`data[].type/content`, `pagination`,
//! `app_name`, `window_name`), with every field of engram's own `Hit` beside them.

use serde::Serialize;
use serde_json::{json, Value};

use engram::service::contract::{Found, Hit};
use engram::store::Kind;
use engram::{Error, ErrorKind};

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

/// Which kind of memory screenpipe's `content_type` asks for.
pub fn content_kind(content_type: &str, asked: Option<Kind>) -> Result<Option<Kind>, ApiError> {
    match content_type {
        "ocr" | "screen" => Ok(Some(Kind::Screen)),
        "file" | "files" => Ok(Some(Kind::File)),
        "all" | "" => Ok(asked),
        other => Err(ApiError::new(ErrorKind::Usage, format!("content_type must be all, ocr or file, not {other:?}"))),
    }
}

/// One page of results (`offset`, `limit`) of a search that asked for more, so `total` says
/// whether there is more; `window` keeps hits whose title holds it, in any case.
pub fn search_page(found: Found, offset: usize, limit: usize, window: Option<&str>) -> Result<Value, ApiError> {
    if let Some(e) = found.damage() {
        return Err(e.into());
    }
    let window = window.map(str::to_lowercase);
    let hits: Vec<Hit> = found
        .results
        .into_iter()
        .filter(|h| window.as_ref().is_none_or(|w| h.about.title.as_deref().is_some_and(|t| t.to_lowercase().contains(w))))
        .collect();
    let total = hits.len();
    let data: Vec<Value> = hits.into_iter().skip(offset).take(limit).map(screenpipe).collect();
    Ok(json!({ "data": data, "pagination": { "limit": limit, "offset": offset, "total": total } }))
}

/// A hit in screenpipe's shape, with the hit's own fields added to its content.
fn screenpipe(hit: Hit) -> Value {
    let (a, screen) = (&hit.about, hit.about.kind == Kind::Screen);
    let mut extra = json!({
        "text": hit.snippet, "timestamp": a.time, "file_path": if screen { "" } else { a.source.as_str() },
        "app_name": a.app, "window_name": a.title.clone().unwrap_or_default(),
        "frame_id": screen.then_some(a.id), "frame_size": hit.frame.as_ref().map(|f| json!({ "width": f.width, "height": f.height })),
        "matched_boxes": hit.frame.as_ref().map(|f| f.boxes.clone()).unwrap_or_default(),
        "offset_index": 0, "tags": [],
    });
    let Value::Object(mut content) = json!(hit) else { unreachable!("a hit serialises as an object") };
    content.remove("frame");
    content.insert("snippet".into(), json!(hit.pieces));
    content.append(extra.as_object_mut().expect("an object"));
    json!({ "type": if screen { "OCR" } else { "File" }, "content": content })
}
