//! A real HTTP/1.1 receiver for alert tests: it listens on a free loopback
//! port, records every request, and answers each one as the test scripted.
//!
//! Deliberately small: one request per connection (answers say
//! `Connection: close`), bodies framed by `Content-Length` only (a chunked
//! request is answered 501 and not recorded).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How to answer one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Answer nothing for this long (or until the receiver is dropped),
    /// then close the connection.
    Hang(Duration),
    /// Close the connection without answering.
    Close,
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// In arrival order; names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Request>>,
    /// The number of requests recorded, for waiting without polling.
    count: watch::Sender<usize>,
}

/// The receiver; it stops (and releases hanging connections) when dropped.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Receiver {
    /// Starts listening on 127.0.0.1 at a free port. Needs a tokio runtime.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State {
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, Arc::clone(&state), stop.clone()));
        Receiver { addr, state, stop }
    }

    /// `http://127.0.0.1:{port}{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Queues answers for the next requests, in order; once they are used
    /// up, requests are answered 200.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.script).extend(replies);
    }

    /// The requests recorded so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state.requests).clone()
    }

    /// Waits until at least `n` requests are recorded and returns all of
    /// them; panics after `deadline`. A request is recorded as soon as it
    /// is read, before it is answered (or left hanging).
    pub async fn wait_for_requests(&self, n: usize, deadline: Duration) -> Vec<Request> {
        let mut count = self.state.count.subscribe();
        if tokio::time::timeout(deadline, count.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            panic!(
                "receiver got {} of {n} requests within {deadline:?}: {:?}",
                *count.borrow(),
                self.requests()
            );
        }
        self.requests()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock has already failed.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue, // e.g. too many open files: try again
            },
        };
        let state = Arc::clone(&state);
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = serve(stream, &state, &stop) => {}
            }
        });
    }
}

async fn serve(mut stream: TcpStream, state: &State, stop: &CancellationToken) {
    let request = match read_request(&mut stream).await {
        Ok(Some(request)) => request,
        Ok(None) => return, // closed before sending anything
        Err(status) => {
            let _ = respond(&mut stream, status).await;
            return;
        }
    };
    let reply = lock(&state.script)
        .pop_front()
        .unwrap_or(Reply::Status(200));
    lock(&state.requests).push(request);
    state.count.send_modify(|c| *c += 1);

    match reply {
        Reply::Status(status) => {
            let _ = respond(&mut stream, status).await;
        }
        Reply::Hang(d) => {
            tokio::select! {
                () = tokio::time::sleep(d) => {}
                () = stop.cancelled() => {}
            }
        }
        Reply::Close => {}
    }
}

/// Reads one request; `Ok(None)` if the peer closed first, `Err(status)`
/// for a request this receiver does not handle.
async fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, u16> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };

    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| 400u16)?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(path), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(505);
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(400u16)?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(501);
    }
    let length = match request.header("content-length") {
        Some(v) => v.parse::<usize>().map_err(|_| 400u16)?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(413);
    }

    let mut body = buf.split_off(head_end + 4);
    if body.len() > length {
        return Err(400); // pipelining is not supported
    }
    let already = body.len();
    body.resize(length, 0);
    stream
        .read_exact(&mut body[already..])
        .await
        .map_err(|_| 400u16)?;
    request.body = body;
    Ok(Some(request))
}

async fn respond(stream: &mut TcpStream, status: u16) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    };
    let head =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.shutdown().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
