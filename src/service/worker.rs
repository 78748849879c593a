//! The one thread that owns an unlocked store in a long-lived process (`engram serve`,
//! `engram mcp`). `Engram` keeps its models and caches in single-threaded cells, so requests
//! come to it as [`Call`]s and leave as [`Response`]s; the daemon's main thread takes the same
//! calls from its socket.

use std::sync::mpsc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::contract::{handle, Request, Response};
use crate::{Engram, Error, ErrorKind, Result};

/// A request and where its replies go: `Text` pieces of an answer, then one final reply, then
/// the sender is dropped.
pub struct Call {
    pub request: Request,
    pub reply: UnboundedSender<Response>,
}

impl Call {
    /// Answers the call on the thread that owns `engram`; `finish` may add to the final reply
    /// what only the caller knows (the daemon, its own state) before it is sent.
    pub fn answer(self, engram: &Engram, finish: impl FnOnce(&mut Response)) {
        let reply = self.reply;
        let mut last = handle(engram, self.request, &mut |text| {
            let _ = reply.send(Response::Text { text: text.to_string() });
        });
        finish(&mut last);
        let _ = reply.send(last);
    }
}

/// Sends calls to the store's thread; cheap to clone, one per handler.
#[derive(Clone)]
pub struct Client {
    calls: mpsc::Sender<Call>,
}

impl Client {
    /// Every reply to `request`, the last one final.
    pub fn call(&self, request: Request) -> UnboundedReceiver<Response> {
        let (reply, replies) = unbounded_channel();
        // If the thread is gone, `reply` is dropped with the call and the receiver ends empty.
        let _ = self.calls.send(Call { request, reply });
        replies
    }

    /// The final reply, skipping any pieces before it.
    pub async fn ask(&self, request: Request) -> Response {
        let mut replies = self.call(request);
        let mut last = None;
        while let Some(r) = replies.recv().await {
            last = Some(r);
        }
        last.unwrap_or_else(closed)
    }
}

/// What a caller gets when the store's thread is gone.
pub fn closed() -> Response {
    Response::Error { message: "the store is closed".into(), kind: ErrorKind::Unavailable }
}

/// Opens a store on a thread of its own and serves calls there until every [`Client`] is
/// dropped. Returns the client and what `ready` read from the open store, or the error that
/// kept it closed.
pub fn spawn<T: Send + 'static>(
    open: impl FnOnce() -> Result<Engram> + Send + 'static,
    ready: impl FnOnce(&Engram) -> T + Send + 'static,
) -> Result<(Client, T)> {
    let (calls, inbox) = mpsc::channel::<Call>();
    let (opened, is_open) = mpsc::channel();
    std::thread::spawn(move || match open() {
        Ok(engram) => {
            let _ = opened.send(Ok(ready(&engram)));
            for call in inbox {
                call.answer(&engram, |_| {});
            }
        }
        Err(e) => {
            let _ = opened.send(Err(e));
        }
    });
    let info = is_open.recv().map_err(|_| Error::Other("the store thread ended before opening the store".into()))??;
    Ok((Client { calls }, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn calls_are_answered_on_the_stores_thread_and_a_store_that_cannot_open_is_an_error() {
        let refused = spawn(|| Err(Error::Locked("no passphrase".into())), |_| ()).err().expect("an error");
        assert_eq!(refused.kind(), ErrorKind::Locked);

        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("store");
        let opened = at.clone();
        let (client, seen) = spawn(move || Engram::init(&opened, b"a passphrase", Config::default()), |e| e.dir().to_path_buf()).unwrap();
        assert_eq!(seen, at);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        match runtime.block_on(client.ask(Request::Show { id: 42, words: false })) {
            Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
        let Response::Status(status) = runtime.block_on(client.ask(Request::Status)) else { panic!("no status") };
        assert_eq!(status.store.items, 0);
        // A second client is the same thread: both are answered.
        let other = client.clone();
        assert!(matches!(runtime.block_on(other.ask(Request::Status)), Response::Status(_)));
    }
}
