//! The one contract every front end speaks: the CLI (in process or over the daemon's socket),
//! the web API and MCP each translate their input into a [`Request`] and show the
//! [`Response`]s it gets back. The views (`Hit`, `Memory`, `Entry`) are the shapes a memory
//! takes on the way out, with the same keys everywhere.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answer::Answer;
use crate::query::snippet::Piece;
use crate::query::time::{parse_time, rfc3339};
use crate::query::{SearchRequest, SearchResult};
use crate::store::{Item, Kind};
use crate::{AskRequest, Engram, Error, ErrorKind, Result, Status};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `boxes`: give each screen hit the boxes of its matching words (the web page draws them).
    Search {
        query: SearchRequest,
        #[serde(default)]
        boxes: bool,
    },
    /// Answered by `Text` pieces as the answer is written, then the `Answer`.
    Ask(AskRequest),
    /// One memory in full; `words`: with its screen's OCR words and their boxes.
    Show {
        id: i64,
        #[serde(default)]
        words: bool,
    },
    /// Memories in time order, newest first.
    Timeline {
        #[serde(default)]
        filters: Filters,
        limit: usize,
    },
    Status,
    /// A screen memory's picture (WebP), or its thumbnail.
    Picture {
        id: i64,
        #[serde(default)]
        thumb: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Found(Found),
    Memory(Box<Memory>),
    Timeline { memories: Vec<Entry> },
    Status(Box<Status>),
    /// A piece of an answer as it is written; the `Answer` follows.
    Text { text: String },
    Answer(Box<Answer>),
    Picture { webp: Vec<u8> },
    Error { message: String, kind: ErrorKind },
}

impl Response {
    fn failed(e: Error) -> Response {
        Response::Error { message: e.to_string(), kind: e.kind() }
    }

    /// A reply that is not the one its request asks for (a bug, or a daemon of another version).
    pub fn unexpected(self) -> Error {
        match self {
            Response::Error { message, kind } => Error::Relayed { message, kind },
            _ => Error::Other("the store answered with a reply of the wrong kind (is the daemon another version of engram?)".into()),
        }
    }
}

/// Which memories a request looks at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub kind: Option<Kind>,
    /// Screen memories of an app whose name contains this, in any case.
    pub app: Option<String>,
}

impl Filters {
    /// From what a person typed, in any front end: times as `parse_time` reads them ("3d",
    /// "yesterday", "2026-03-01"), a kind's name, part of an app's name. Blank is absent.
    pub fn parse(since: Option<&str>, until: Option<&str>, kind: Option<&str>, app: Option<&str>) -> Result<Filters> {
        fn given(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let now = chrono::Local::now();
        let time = |v| given(v).map(|t| parse_time(t, now).map_err(|e| Error::Usage(e.to_string()))).transpose();
        let kind = given(kind)
            .map(|k| Kind::parse(k).ok_or_else(|| Error::Usage(format!("kind must be file, screen or doc, not {k:?}"))))
            .transpose()?;
        Ok(Filters { since: time(since)?, until: time(until)?, kind, app: given(app).map(String::from) })
    }
}

impl SearchRequest {
    pub fn with_filters(mut self, f: Filters) -> SearchRequest {
        (self.since, self.until, self.kind, self.app) = (f.since, f.until, f.kind, f.app);
        self
    }
}

impl AskRequest {
    pub fn with_filters(mut self, f: Filters) -> AskRequest {
        (self.since, self.until, self.kind, self.app) = (f.since, f.until, f.kind, f.app);
        self
    }
}

/// What a search found; results whose sealed rows failed their check are named in `damaged`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Found {
    pub results: Vec<Hit>,
    pub damaged: Vec<String>,
}

impl Found {
    /// The tampering error when something was left out, after the rest was shown.
    pub fn damage(&self) -> Option<Error> {
        let n = self.damaged.len();
        (n > 0).then(|| {
            Error::Tamper(format!(
                "{} failed {} integrity check and {} left out; the data was modified or damaged on disk",
                self.damaged.join(", "),
                if n == 1 { "its" } else { "their" },
                if n == 1 { "was" } else { "were" },
            ))
        })
    }
}

/// What every view says of a memory: which one, what kind, where from, when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct About {
    pub id: i64,
    pub kind: Kind,
    /// A file's path, or the app a screen memory was seen in.
    pub source: String,
    pub title: Option<String>,
    /// The app, for a screen memory.
    pub app: Option<String>,
    /// RFC 3339, and the same as Unix seconds in `timestamp`.
    pub time: String,
    pub timestamp: i64,
}

impl About {
    fn of(i: Item) -> About {
        About { id: i.id, kind: i.kind, source: i.source, title: i.title, app: i.meta.app, time: rfc3339(i.time), timestamp: i.time }
    }
}

/// One search result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    #[serde(flatten)]
    pub about: About,
    pub score: f32,
    /// The matching passage with matches between `**`; `pieces` says the same for a renderer.
    pub snippet: String,
    pub pieces: Vec<Piece>,
    pub caption: Option<String>,
    /// Where in the document: "page 12", "sheet Budget", "slide 3".
    pub location: Option<String>,
    /// The screen and the boxes of the words that match, when the request asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameBoxes>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameBoxes {
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<Value>,
}

impl Hit {
    fn new(r: SearchResult) -> Hit {
        let about = About {
            id: r.id,
            kind: r.kind,
            app: (r.kind == Kind::Screen).then(|| r.source.clone()),
            source: r.source,
            title: r.title,
            time: rfc3339(r.time),
            timestamp: r.time,
        };
        Hit { about, score: r.score, snippet: r.snippet.render("**", "**"), pieces: r.snippet.pieces, caption: r.caption, location: r.location, frame: None }
    }
}

/// One memory in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memory {
    #[serde(flatten)]
    pub about: About,
    /// Bytes (a file's size when read; a screen's text).
    pub size: i64,
    pub caption: Option<String>,
    pub text: String,
    /// A screen memory's picture size and, when asked, its OCR words with their boxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameWords>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameWords {
    pub width: u32,
    pub height: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<Value>,
}

/// A line of the timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub about: About,
    pub caption: Option<String>,
}

/// Answers one request: the pieces of an answer go to `on_text` as they are written, the
/// reply is returned. A panic while answering costs that request, never the caller.
pub fn handle(engram: &Engram, request: Request, on_text: &mut dyn FnMut(&str)) -> Response {
    let run = std::panic::AssertUnwindSafe(|| answer(engram, request, on_text));
    match std::panic::catch_unwind(run) {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => Response::failed(e),
        Err(_) => Response::Error { message: crate::INTERNAL_ERROR.into(), kind: ErrorKind::Failed },
    }
}

fn answer(engram: &Engram, request: Request, on_text: &mut dyn FnMut(&str)) -> Result<Response> {
    Ok(match request {
        Request::Search { query, boxes } => {
            let found = engram.search(&query)?;
            let mut results: Vec<Hit> = found.results.into_iter().map(Hit::new).collect();
            if boxes {
                for hit in results.iter_mut().filter(|h| h.about.kind == Kind::Screen) {
                    hit.frame = matched_boxes(engram, hit.about.id, &query.query)?;
                }
            }
            Response::Found(Found { results, damaged: found.damaged })
        }
        Request::Ask(req) => Response::Answer(Box::new(engram.ask(&req, &|_| {}, on_text)?)),
        Request::Show { id, words } => Response::Memory(Box::new(memory(engram, id, words)?)),
        Request::Timeline { filters: f, limit } => {
            let items = engram.timeline(f.since, f.until, f.kind, f.app.as_deref(), limit)?;
            let mut captions = engram.captions(&items.iter().map(|i| i.content_id).collect::<Vec<_>>())?;
            let memories = items.into_iter().map(|i| Entry { caption: captions.remove(&i.content_id), about: About::of(i) });
            Response::Timeline { memories: memories.collect() }
        }
        Request::Status => {
            let mut s = engram.status()?;
            s.daemon = crate::daemon::running(engram.dir());
            s.paused_until = crate::daemon::paused(engram.dir(), chrono::Utc::now().timestamp());
            Response::Status(Box::new(s))
        }
        Request::Picture { id, thumb } => match engram.frame_picture(id, thumb)? {
            Some(webp) => Response::Picture { webp },
            None => return Err(Error::NoPicture(id)),
        },
    })
}

fn memory(engram: &Engram, id: i64, with_words: bool) -> Result<Memory> {
    let (item, text) = engram.show(id)?;
    let frame = engram.frame_words(id)?.map(|f| FrameWords {
        width: f.width,
        height: f.height,
        words: if with_words { serde_json::from_slice(&f.words).ok() } else { None },
    });
    let caption = engram.captions(&[item.content_id])?.remove(&item.content_id);
    Ok(Memory { size: item.size, caption, text, frame, about: About::of(item) })
}

/// The frame size and the boxes of the OCR words that match the query.
fn matched_boxes(engram: &Engram, id: i64, query: &str) -> Result<Option<FrameBoxes>> {
    let Some(frame) = engram.frame_words(id)? else { return Ok(None) };
    let boxes = crate::extract::ocr::boxes_matching(&frame.words, query);
    let boxes = boxes.into_iter().map(|b| serde_json::to_value(b).expect("boxes serialise")).collect();
    Ok(Some(FrameBoxes { width: frame.width, height: frame.height, boxes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_front_end_reads_filters_alike() {
        let f = Filters::parse(Some("2026-03-01"), Some(" "), Some("screen"), Some("Firefox")).unwrap();
        assert!(f.since.is_some() && f.until.is_none());
        assert_eq!((f.kind, f.app.as_deref()), (Some(Kind::Screen), Some("Firefox")));
        assert_eq!(Filters::parse(None, None, Some(""), Some("")).unwrap(), Filters::default());
        for bad in [Filters::parse(Some("the day after never"), None, None, None), Filters::parse(None, None, Some("mail"), None)] {
            assert_eq!(bad.unwrap_err().kind(), ErrorKind::Usage);
        }
    }

    #[test]
    fn requests_and_replies_cross_a_socket_unchanged() {
        let req = Request::Search { query: SearchRequest::new("lisbon 里斯本", 7).with_filters(Filters { app: Some("xterm".into()), ..Filters::default() }), boxes: true };
        let line = serde_json::to_string(&req).unwrap();
        assert!(line.starts_with(r#"{"op":"search""#), "{line}");
        let Request::Search { query, boxes } = serde_json::from_str(&line).unwrap() else { panic!("{line}") };
        assert_eq!((query.query.as_str(), query.limit, query.app.as_deref(), boxes), ("lisbon 里斯本", 7, Some("xterm"), true));
        let reply = Response::Error { message: "no memory with id 9".into(), kind: ErrorKind::NotFound };
        let back: Response = serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap();
        assert_eq!(back.unexpected().kind(), ErrorKind::NotFound);
    }
}
