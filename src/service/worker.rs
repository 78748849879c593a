//! The threads that own an unlocked store in a long-lived process (`engram serve`,
//! `engram mcp`). `Engram` keeps its models and caches in single-threaded cells, so requests
//! come to it as [`Call`]s and leave as [`Response`]s; the daemon's main thread takes the same
//! calls from its socket. Besides the thread that opened the store, reader threads with
//! handles of their own ([`Engram::reader`]) answer every request but questions, which stay
//! with the first thread and its one language model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

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

/// Sends calls to the store's threads; cheap to clone, one per handler.
#[derive(Clone)]
pub struct Client {
    calls: mpsc::Sender<Call>,
    /// The readers' queue, when there are readers.
    reads: Option<mpsc::Sender<Call>>,
}

impl Client {
    /// Every reply to `request`, the last one final.
    pub fn call(&self, request: Request) -> UnboundedReceiver<Response> {
        let (reply, replies) = unbounded_channel();
        let to = match (&request, &self.reads) {
            (Request::Ask(_), _) | (_, None) => &self.calls,
            (_, Some(reads)) => reads,
        };
        // If the thread is gone, `reply` is dropped with the call and the receiver ends empty.
        let _ = to.send(Call { request, reply });
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
/// dropped, with `readers` more threads answering all but questions (none if the store cannot
/// be opened twice). Returns the client and what `ready` read from the open store, or the error
/// that kept it closed.
pub fn spawn<T: Send + 'static>(
    open: impl FnOnce() -> Result<Engram> + Send + 'static,
    ready: impl FnOnce(&Engram) -> T + Send + 'static,
    readers: usize,
) -> Result<(Client, T)> {
    let (calls, inbox) = mpsc::channel::<Call>();
    let (reads, read_inbox) = mpsc::channel::<Call>();
    let (opened, is_open) = mpsc::channel();
    std::thread::spawn(move || match open() {
        Ok(engram) => {
            let parts: Vec<_> = (0..readers).map_while(|_| engram.reader_parts().ok()).collect();
            let _ = opened.send(Ok((ready(&engram), !parts.is_empty())));
            let read_inbox = Arc::new(Mutex::new(read_inbox));
            let busy = Arc::new(AtomicUsize::new(0));
            for p in parts {
                let (inbox, busy) = (read_inbox.clone(), busy.clone());
                std::thread::spawn(move || {
                    let engram = Engram::reader(p);
                    while let Some(call) = next(&inbox) {
                        // A request alone may spread its embedding over every core; beside
                        // others, each keeps to one, and the cores serve the requests.
                        crate::embed::spread_over_cores(busy.fetch_add(1, Ordering::SeqCst) == 0);
                        call.answer(&engram, |_| {});
                        busy.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
            for call in inbox {
                call.answer(&engram, |_| {});
            }
        }
        Err(e) => {
            let _ = opened.send(Err(e));
        }
    });
    let (info, has_readers) = is_open.recv().map_err(|_| Error::Other("the store thread ended before opening the store".into()))??;
    Ok((Client { calls, reads: has_readers.then_some(reads) }, info))
}

/// The next call of the readers' queue, or `None` once every client is gone. The queue is held
/// while waiting, never while answering (a guard kept to the end of a `while let` would make
/// the readers take turns).
fn next(queue: &Mutex<mpsc::Receiver<Call>>) -> Option<Call> {
    let inbox = queue.lock().unwrap_or_else(|e| e.into_inner());
    inbox.recv().ok()
}

/// As many readers as the machine has cores: a search uses one.
pub fn readers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn calls_are_answered_on_the_stores_thread_and_a_store_that_cannot_open_is_an_error() {
        let refused = spawn(|| Err(Error::Locked("no passphrase".into())), |_| (), 0).err().expect("an error");
        assert_eq!(refused.kind(), ErrorKind::Locked);

        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("store");
        let opened = at.clone();
        let (client, seen) = spawn(move || Engram::init(&opened, b"a passphrase", Config::default()), |e| e.dir().to_path_buf(), 0).unwrap();
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

    #[test]
    fn a_reader_lets_go_of_the_queue_before_it_answers() {
        let (send, queue) = mpsc::channel();
        let queue = Mutex::new(queue);
        let (reply, _) = unbounded_channel();
        send.send(Call { request: Request::Status, reply }).unwrap();
        let call = next(&queue).expect("a call");
        assert!(queue.try_lock().is_ok(), "the queue is held while the call is answered");
        drop((call, send));
        assert!(next(&queue).is_none(), "no end once the clients are gone");
    }

    fn note(source: &str, text: &str) -> crate::store::NewItem {
        crate::store::NewItem {
            kind: crate::store::Kind::File,
            source: source.into(),
            title: None,
            meta: Default::default(),
            time: 100,
            mtime: 100,
            size: text.len() as i64,
            text: text.into(),
            chunks: vec![crate::store::Span { start: 0, end: text.len() }],
        }
    }

    fn found(reply: Response) -> Vec<String> {
        let Response::Found(f) = reply else { panic!("not found: {reply:?}") };
        f.results.into_iter().map(|h| h.about.source).collect()
    }

    #[test]
    fn readers_answer_searches_at_once_and_see_what_another_process_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("store");
        let opened = at.clone();
        let (client, ()) = spawn(move || Engram::init(&opened, b"a passphrase", Config::default()), |_| (), 2).unwrap();
        assert!(client.reads.is_some(), "no readers started");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let search = |q: &str| {
            let mut query = crate::query::SearchRequest::new(q, 5);
            query.mode = crate::query::Mode::Keyword;
            Request::Search { query, boxes: false }
        };
        // Another process (the daemon) writes while the readers are open.
        let mut writer = Engram::open(&at, b"a passphrase", Config::default()).unwrap();
        writer.add_items(&[note("/notes/okapi.md", "the okapi census is on Friday")]).unwrap();
        // Ten searches at once: every reader sees the write, each answers its share.
        let replies = runtime.block_on(async {
            let asks: Vec<_> = (0..10).map(|_| tokio::spawn({
                let c = client.clone();
                let r = search("okapi");
                async move { c.ask(r).await }
            })).collect();
            let mut out = Vec::new();
            for a in asks {
                out.push(a.await.unwrap());
            }
            out
        });
        for r in replies {
            assert_eq!(found(r), ["/notes/okapi.md"]);
        }
        // A later write is seen too: the readers catch up, not only at their start.
        writer.add_items(&[note("/notes/quokka.md", "a quokka smiled")]).unwrap();
        for _ in 0..4 {
            assert_eq!(found(runtime.block_on(client.ask(search("quokka")))), ["/notes/quokka.md"]);
        }
    }
}
