//! The command line's side of the unix socket: one HTTP request per
//! connection.
//!
//! reqwest cannot speak over a unix socket and hyper's client is not among
//! our dependencies, and the exchange is tiny, so it is done by hand. The
//! request is HTTP/1.0: the server then answers without chunked encoding
//! and closes the connection, so the body is simply everything after the
//! headers.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long one exchange may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A response larger than this is not one of ours.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon listens: the socket is absent, or stale.
    #[error("no daemon answers on {} ({source})", path.display())]
    NotRunning {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot talk to the daemon on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the daemon did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the daemon's answer is not HTTP: {0}")]
    Malformed(String),
}

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ClientError::Malformed(format!("body is not JSON: {e}")))
    }

    /// The `error` of a JSON error body, or the body as text.
    pub fn error_message(&self) -> String {
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v) if v["error"].is_string() => v["error"].as_str().unwrap_or_default().to_owned(),
            _ => String::from_utf8_lossy(&self.body).trim().to_owned(),
        }
    }
}

/// A client of the API socket at `path`.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
}

impl Client {
    pub fn new(path: &Path) -> Client {
        Client {
            path: path.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request; `body` is sent as JSON.
    pub async fn request(
        &self,
        method: &str,
        target: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, ClientError> {
        tokio::time::timeout(TIMEOUT, self.exchange(method, target, body))
            .await
            .map_err(|_| ClientError::Timeout(TIMEOUT))?
    }

    async fn exchange(
        &self,
        method: &str,
        target: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, ClientError> {
        let mut stream = UnixStream::connect(&self.path).await.map_err(|source| {
            if matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) {
                ClientError::NotRunning {
                    path: self.path.clone(),
                    source,
                }
            } else {
                ClientError::Io {
                    path: self.path.clone(),
                    source,
                }
            }
        })?;
        let io_error = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };

        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = format!(
            "{method} {target} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: authwatch/{}\r\nAccept: application/json\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if body.is_some() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
        request.push_str(&payload);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(io_error)?;

        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .await
            .map_err(io_error)?;
        parse_response(&raw)
    }
}

/// Parses `HTTP/1.x NNN reason\r\nheaders\r\n\r\nbody`. A Content-Length,
/// when given, bounds the body.
fn parse_response(raw: &[u8]) -> Result<Response, ClientError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::Malformed("no end of headers".into()))?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|_| ClientError::Malformed("headers are not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(ClientError::Malformed(format!(
            "status line {status_line:?}"
        )));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ClientError::Malformed(format!(
            "status line {status_line:?}"
        )));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| ClientError::Malformed(format!("status line {status_line:?}")))?;
    let mut body = raw[end + 4..].to_vec();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                let len: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| ClientError::Malformed(format!("header {line:?}")))?;
                if len > body.len() {
                    return Err(ClientError::Malformed("the body was cut short".into()));
                }
                body.truncate(len);
            }
        }
    }
    Ok(Response { status, body })
}

/// Percent-encodes one path segment: everything but unreserved characters
/// and `:` (so `2001:db8::/64` becomes `2001:db8::%2F64`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_and_honours_content_length() {
        let r = parse_response(
            b"HTTP/1.0 404 Not Found\r\ncontent-length: 2\r\ncontent-type: x\r\n\r\n{}junk",
        )
        .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"{}");
        let r = parse_response(b"HTTP/1.1 200 OK\r\n\r\nok\n").unwrap();
        assert_eq!(r.body, b"ok\n");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SSH-2.0 x\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nab").is_err());
    }

    #[test]
    fn encodes_cidr_slashes() {
        assert_eq!(encode_segment("2001:db8::/64"), "2001:db8::%2F64");
        assert_eq!(encode_segment("203.0.113.7"), "203.0.113.7");
    }
}
