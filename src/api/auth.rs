//! Who is calling, and whether they may.
//!
//! On the unix socket the caller is whoever the kernel says connected
//! (`SO_PEERCRED`): the socket's mode and group already decided that they
//! may. Over TCP the caller proves itself with a bearer token read from
//! `[api] token_file`.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::routes::error_response;
use super::ApiError;

/// Tokens shorter than this are refused: a bearer token is the whole
/// defence of a TCP listener.
pub const MIN_TOKEN_LEN: usize = 16;

/// Who made a request; logged with every mutation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A process on this host, through the unix socket. `None` when the
    /// kernel did not say (it always does on Linux).
    Unix { uid: Option<u32>, pid: Option<i32> },
    /// A TCP client that presented the token.
    Token { peer: SocketAddr },
    /// A TCP client without a token: reads only.
    Anonymous { peer: SocketAddr },
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Unix { uid, pid } => {
                f.write_str("unix socket")?;
                if let Some(uid) = uid {
                    write!(f, " uid {uid}")?;
                }
                if let Some(pid) = pid {
                    write!(f, " pid {pid}")?;
                }
                Ok(())
            }
            Caller::Token { peer } => write!(f, "token from {peer}"),
            Caller::Anonymous { peer } => write!(f, "anonymous from {peer}"),
        }
    }
}

/// The peer of a unix-socket connection, taken when it is accepted.
#[derive(Clone, Copy, Debug)]
pub struct UnixPeer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for UnixPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> UnixPeer {
        match stream.io().peer_cred() {
            Ok(cred) => UnixPeer {
                uid: Some(cred.uid()),
                pid: cred.pid(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the API caller's credentials");
                UnixPeer {
                    uid: None,
                    pid: None,
                }
            }
        }
    }
}

/// The bearer token. Kept as its SHA-256 only, so that comparing takes the
/// same time whatever the length of the guess, and the secret itself is
/// neither kept nor printable.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    pub fn new(secret: &str) -> Token {
        Token {
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// Constant-time comparison of `presented` with the token.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(self.digest.ct_eq(&digest))
    }

    /// Reads the token from `path`, refusing a file that others may read.
    /// Surrounding whitespace (a trailing newline) is not part of it.
    pub fn read(path: &Path) -> Result<Token, ApiError> {
        let fail = |message: String| ApiError::TokenFile {
            path: path.to_owned(),
            message,
        };
        check_token_file(path).map_err(fail)?;
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let secret = text.trim();
        if secret.len() < MIN_TOKEN_LEN {
            return Err(fail(format!(
                "the token must be at least {MIN_TOKEN_LEN} characters"
            )));
        }
        if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("the token must be one word".into()));
        }
        Ok(Token::new(secret))
    }
}

/// Checks that `path` is a regular file that only its owner may read or
/// write (mode 0600 or stricter). The message says how to fix it.
pub fn check_token_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {mode:04o} lets others read the token; it must be 0600 or stricter (chmod 600 {})",
            path.display()
        ));
    }
    // Owned by someone else (but readable by us) would let that user
    // change the token: refuse unless it is root's.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(format!(
            "is owned by uid {}, neither this user ({euid}) nor root",
            meta.uid()
        ));
    }
    Ok(())
}

/// How a TCP listener authorises.
#[derive(Clone, Debug)]
pub struct TcpPolicy {
    pub token: Option<Token>,
    /// Every route but `/healthz` needs the token (a non-loopback address).
    pub reads_need_token: bool,
}

/// Middleware of the unix listener: names the caller.
pub async fn unix_caller(mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<UnixPeer>>()
        .map(|ConnectInfo(p)| *p)
        .unwrap_or(UnixPeer {
            uid: None,
            pid: None,
        });
    req.extensions_mut().insert(Caller::Unix {
        uid: peer.uid,
        pid: peer.pid,
    });
    next.run(req).await
}

/// Middleware of the TCP listener: checks the bearer token where the
/// policy needs it, and names the caller.
pub async fn tcp_caller(
    axum::extract::State(policy): axum::extract::State<Arc<TcpPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
    else {
        // Served without connect info: a wiring mistake, never a client's.
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "no peer address");
    };
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
    let needs_token = mutating || (policy.reads_need_token && req.uri().path() != "/healthz");

    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let caller = match (&policy.token, presented) {
        (Some(token), Some(p)) if token.matches(p) => Caller::Token { peer },
        (Some(_), Some(_)) => {
            tracing::warn!(%peer, path = %req.uri().path(), "API call with a wrong token");
            return unauthorized("wrong token");
        }
        (None, _) if mutating => {
            return error_response(
                StatusCode::FORBIDDEN,
                "changes over TCP need [api] token_file; use the unix socket",
            );
        }
        _ if needs_token => return unauthorized("this call needs Authorization: Bearer <token>"),
        _ => Caller::Anonymous { peer },
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

fn unauthorized(message: &str) -> Response {
    let mut resp = error_response(StatusCode::UNAUTHORIZED, message).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_compares_whole_values_only() {
        let t = Token::new("correct-horse-battery-staple");
        assert!(t.matches("correct-horse-battery-staple"));
        assert!(!t.matches("correct-horse-battery-stapl"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "Token(***)");
    }

    #[test]
    fn token_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_token_file(&path).unwrap_err();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = Token::read(&path).unwrap();
        assert!(t.matches("0123456789abcdef0123"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(check_token_file(&path).is_ok());

        std::fs::write(dir.path().join("short"), "abc").unwrap();
        let short = dir.path().join("short");
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Token::read(&short).is_err());
        assert!(check_token_file(&dir.path().join("absent")).is_err());
    }
}
