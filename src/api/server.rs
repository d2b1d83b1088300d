//! Binding the listeners and serving until shutdown.
//!
//! Binding is apart from serving ([`ApiServer::bind`], then
//! [`ApiServer::run`]) so that a caller learns the address actually bound
//! (tests listen on `127.0.0.1:0`) and a bad configuration fails before
//! anything is served.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

use super::auth::{self, TcpPolicy, Token, UnixPeer};
use super::{routes, ApiConfig, ApiContext, ApiError};

/// Mode of the socket: the daemon's user and group may connect.
const SOCKET_MODE: u32 = 0o660;
/// Mode of the socket's directory when we create it.
const SOCKET_DIR_MODE: u32 = 0o750;
/// How often the Prometheus recorder drains its histogram buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Binds the listeners of `config` and serves `ctx` until `shutdown` is
/// cancelled; removes the socket file on the way out.
pub async fn serve(
    config: &ApiConfig,
    ctx: ApiContext,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    ApiServer::bind(config, ctx).await?.run(shutdown).await
}

/// Bound listeners, ready to serve.
pub struct ApiServer {
    unix: UnixListener,
    socket: SocketFile,
    tcp: Option<(TcpListener, TcpPolicy)>,
    ctx: ApiContext,
}

impl ApiServer {
    /// Checks the TCP policy, reads the token, then binds the unix socket
    /// and the TCP address.
    pub async fn bind(config: &ApiConfig, ctx: ApiContext) -> Result<ApiServer, ApiError> {
        // The TCP policy is checked here too, not only when the
        // configuration is read: `ApiConfig`'s fields are public.
        let tcp_policy = match config.listen {
            None => None,
            Some(addr) => {
                let remote = !crate::ip::normalize(addr.ip()).is_loopback();
                if remote && !config.allow_remote {
                    return Err(ApiError::RemoteRefused { addr });
                }
                let token = config.token_file.as_deref().map(Token::read).transpose()?;
                if remote && token.is_none() {
                    return Err(ApiError::TokenRequired { addr });
                }
                Some((
                    addr,
                    TcpPolicy {
                        token,
                        reads_need_token: remote,
                    },
                ))
            }
        };

        let (unix, socket) = bind_socket(&config.socket)?;
        let tcp = match tcp_policy {
            None => None,
            Some((addr, policy)) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ApiError::BindTcp { addr, source })?;
                Some((listener, policy))
            }
        };
        Ok(ApiServer {
            unix,
            socket,
            tcp,
            ctx,
        })
    }

    /// The TCP address bound, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket.path
    }

    /// Serves until `shutdown` is cancelled, then lets requests in flight
    /// finish.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ApiError> {
        let ApiServer {
            unix,
            socket,
            tcp,
            ctx,
        } = self;
        let tcp_addr = tcp.as_ref().and_then(|(l, _)| l.local_addr().ok());
        tracing::info!(socket = %socket.path.display(), tcp = ?tcp_addr, "API listening");

        let metrics = ctx.metrics.clone();
        let router = routes::router(ctx);

        let unix_app = router
            .clone()
            .layer(middleware::from_fn(auth::unix_caller))
            .into_make_service_with_connect_info::<UnixPeer>();
        let unix_server = axum::serve(unix, unix_app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future();

        let tcp_server = async {
            let Some((listener, policy)) = tcp else {
                return Ok(());
            };
            let app = router
                .layer(middleware::from_fn_with_state(
                    Arc::new(policy),
                    auth::tcp_caller,
                ))
                .into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .await
        };

        // The recorder keeps histogram samples until upkeep folds them in;
        // run it beside the servers, and drop it with them.
        let upkeep = async {
            let Some(handle) = metrics else {
                return std::future::pending().await;
            };
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        };

        let result = tokio::select! {
            r = async { tokio::try_join!(unix_server, tcp_server) } => r.map(|_| ()),
            () = upkeep => Ok(()),
        };
        drop(socket);
        tracing::info!("API stopped");
        result.map_err(ApiError::Serve)
    }
}

/// The socket file we created; removed when dropped, unless another
/// process has replaced it meanwhile.
struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == self.identity {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove the API socket");
            }
        }
    }
}

/// Creates the directory (0750) if missing, removes a stale socket left by
/// a crash, binds, and sets the socket's mode to 0660.
fn bind_socket(path: &Path) -> Result<(UnixListener, SocketFile), ApiError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(SOCKET_DIR_MODE)
                .create(dir)
                .map_err(|source| ApiError::SocketDir {
                    dir: dir.to_owned(),
                    source,
                })?;
        }
    }

    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // A socket is left behind when a daemon is killed. If something
            // still answers on it, that is a running daemon: never steal
            // its socket. Only "refused" proves it stale.
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(ApiError::SocketInUse {
                        path: path.to_owned(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tracing::info!(socket = %path.display(), "removing a stale API socket");
                    std::fs::remove_file(path).map_err(|source| ApiError::BindSocket {
                        path: path.to_owned(),
                        source,
                    })?;
                }
                Err(source) => {
                    return Err(ApiError::BindSocket {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        }
        Ok(_) => {
            return Err(ApiError::NotASocket {
                path: path.to_owned(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ApiError::BindSocket {
                path: path.to_owned(),
                source,
            })
        }
    }

    let listener = UnixListener::bind(path).map_err(|source| ApiError::BindSocket {
        path: path.to_owned(),
        source,
    })?;
    // Until this chmod the socket has the umask's mode. Connecting needs
    // write permission, which a usual umask (022, 027, 002) never grants to
    // others, and the directory is 0750 anyway.
    let file = SocketFile {
        path: path.to_owned(),
        identity: std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino())),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(
        |source| ApiError::Permissions {
            path: path.to_owned(),
            source,
        },
    )?;
    Ok((listener, file))
}
