//! Configuration: the TOML file parsed into raw structs, then validated
//! into typed [`Config`] once.
//!
//! Every error names the file, the line and the key, so an operator can go
//! straight to the mistake. Unknown keys are errors too: a misspelt
//! `treshold` silently ignored is how a host ends up unprotected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::ip::Allowlist;
use crate::proxy::TrustedProxies;
use crate::sink::alert::{AlertKind, AlertTarget};
use crate::source::tailer::StartAt;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/authwatch/authwatch.toml";
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// A configuration or rule-file mistake, located.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {key}: {message}", file.display())]
    At {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// 1-based line number of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    // memchr: called for every rule and example of a rule file, so a byte
    // loop here was a tenth of loading a hundred rules.
    memchr::memchr_iter(b'\n', &text.as_bytes()[..end]).count() + 1
}

/// Turns a TOML syntax or type error into a located [`ConfigError`].
pub(crate) fn toml_error(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(1);
    // toml's message names the offending key when it knows it ("unknown
    // field `treshold`, expected one of …"); keep it whole, on one line.
    let message = e.message().replace('\n', " ");
    let key = e
        .span()
        .and_then(|s| text.get(s.clone()))
        .map(|k| k.trim().chars().take(60).collect::<String>())
        .unwrap_or_default();
    ConfigError::At {
        file: file.to_owned(),
        line,
        key,
        message,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules_dir: Option<Spanned<PathBuf>>,
    state_dir: Option<Spanned<PathBuf>>,
    allowlist: Option<Vec<Spanned<String>>>,
    /// Files of networks, one a line, added to `allowlist`.
    allowlist_files: Option<Vec<Spanned<PathBuf>>>,
    /// Proxies whose `X-Forwarded-For` entries are believed.
    trusted_proxies: Option<Vec<Spanned<String>>>,
    host: Option<Spanned<String>>,
    max_line_bytes: Option<Spanned<i64>>,
    /// The most (rule, address) windows held at once.
    max_tracked_keys: Option<Spanned<i64>>,
    redis: Option<RawRedis>,
    #[serde(default)]
    source: Vec<RawSource>,
    #[serde(default)]
    alert: Vec<RawAlert>,
    api: Option<RawApi>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    url: Option<Spanned<String>>,
    key_prefix: Option<Spanned<String>>,
    /// The password, from a file (or a systemd credential) rather than the
    /// URL; `AUTHWATCH_REDIS_PASSWORD` in the environment also works.
    password_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    path: Option<Spanned<String>>,
    start_at: Option<Spanned<String>>,
    journal: Option<Spanned<RawJournal>>,
    /// This source's own proxies, instead of the top-level list.
    trusted_proxies: Option<Vec<Spanned<String>>>,
}

/// `journal = { units = ["ssh.service"], identifiers = ["sshd"] }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    #[serde(default)]
    units: Vec<String>,
    #[serde(default)]
    identifiers: Vec<String>,
    /// Read journal files in this directory instead of the system journal.
    directory: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    socket: Option<Spanned<PathBuf>>,
    listen: Option<Spanned<String>>,
    allow_remote: Option<Spanned<bool>>,
    token_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    kind: Spanned<String>,
    url: Spanned<String>,
    timeout: Option<Spanned<String>>,
    attempts: Option<Spanned<i64>>,
    /// `"<count>/<period>"`, e.g. `"1/s"`.
    rate: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
    /// Webhooks only: the HMAC key's file, or a systemd credential's name.
    secret_file: Option<Spanned<PathBuf>>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub file: PathBuf,
    pub rules_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The `allowlist`, and every trusted proxy: blocking the load
    /// balancer would block everyone behind it.
    pub allowlist: Allowlist,
    /// Whose `X-Forwarded-For` entries are believed, in the lines of every
    /// source without its own list. Empty by default: the peer is the
    /// client.
    pub trusted_proxies: TrustedProxies,
    /// This host's name, written into every block.
    pub host: String,
    pub max_line_bytes: usize,
    /// The most (rule, address or network) windows the detector holds;
    /// beyond, the least recently seen are evicted (see `detector`).
    pub max_tracked_keys: usize,
    pub redis: RedisConfig,
    pub sources: Vec<SourceConfig>,
    pub alerts: Vec<AlertTarget>,
    pub api: crate::api::ApiConfig,
}

#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// May hold the password (from `password_file`): print it only through
    /// [`redact_url`](crate::sink::blocklist::redact_url).
    pub url: String,
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &crate::sink::blocklist::redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    /// A path, or a glob in its last component; empty for a journal source.
    pub path: PathBuf,
    pub start_at: StartAt,
    /// Set for a journald source: which entries to read.
    pub journal: Option<JournalConfig>,
    /// Its own trusted proxies, replacing the top-level `trusted_proxies`
    /// in its lines (`Some(empty)`: none).
    pub trusted_proxies: Option<TrustedProxies>,
}

/// A journald source: entries of these units or syslog identifiers (any of
/// them), read through `journalctl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalConfig {
    pub units: Vec<String>,
    pub identifiers: Vec<String>,
    pub directory: Option<PathBuf>,
}

impl Config {
    /// Each source's own trusted proxies, for
    /// [`RuleSet::trust_proxies`](crate::rules::RuleSet::trust_proxies).
    pub fn proxies_by_source(&self) -> Vec<(String, TrustedProxies)> {
        self.sources
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.trusted_proxies.clone()?)))
            .collect()
    }

    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// Validates `text` as if read from `file`. Relative paths in it are
    /// taken relative to the file's directory.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let at = |span: std::ops::Range<usize>, key: &str, message: String| ConfigError::At {
            file: file.to_owned(),
            line: line_at(text, span.start),
            key: key.to_owned(),
            message,
        };
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let rules_dir = raw
            .rules_dir
            .map(|p| resolve(p.get_ref()))
            .unwrap_or_else(|| PathBuf::from("/etc/authwatch/rules"));
        let state_dir = raw
            .state_dir
            .map(|p| resolve(p.get_ref()))
            .unwrap_or_else(|| PathBuf::from("/var/lib/authwatch"));

        let allowlist = {
            let mut nets = match raw.allowlist {
                None => Allowlist::loopback().nets().to_vec(),
                Some(list) => {
                    let mut nets = Vec::with_capacity(list.len());
                    for entry in list {
                        nets.push(
                            parse_cidr(entry.get_ref())
                                .map_err(|m| at(entry.span(), "allowlist", m))?,
                        );
                    }
                    nets
                }
            };
            for entry in raw.allowlist_files.iter().flatten() {
                let path = resolve(entry.get_ref());
                let listed_at = format!("{}:{}", file.display(), line_at(text, entry.span().start));
                let content = std::fs::read_to_string(&path).map_err(|e| {
                    at(
                        entry.span(),
                        "allowlist_files",
                        format!("{}: cannot read: {e}", path.display()),
                    )
                })?;
                nets.extend(parse_allowlist_file(&path, &content, &listed_at)?);
            }
            Allowlist::new(nets)
        };

        let trusted =
            |list: &[Spanned<String>], key: &str| -> Result<TrustedProxies, ConfigError> {
                let mut nets = Vec::with_capacity(list.len());
                for entry in list {
                    nets.push(
                        crate::proxy::parse_trusted(entry.get_ref())
                            .map_err(|m| at(entry.span(), key, m))?,
                    );
                }
                Ok(TrustedProxies::new(nets))
            };
        let trusted_proxies = match &raw.trusted_proxies {
            None => TrustedProxies::default(),
            Some(list) => trusted(list, "trusted_proxies")?,
        };

        let host = match raw.host {
            Some(h) => {
                let name = h.get_ref().trim();
                if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(at(
                        h.span(),
                        "host",
                        "must be a non-empty name without spaces".into(),
                    ));
                }
                name.to_owned()
            }
            None => hostname(),
        };

        let max_line_bytes = match raw.max_line_bytes {
            None => DEFAULT_MAX_LINE_BYTES,
            Some(v) => {
                let n = *v.get_ref();
                if !(256..=16 * 1024 * 1024).contains(&n) {
                    return Err(at(
                        v.span(),
                        "max_line_bytes",
                        "must be between 256 and 16777216".into(),
                    ));
                }
                n as usize
            }
        };

        let max_tracked_keys = match raw.max_tracked_keys {
            None => crate::detector::DEFAULT_MAX_KEYS,
            Some(v) => {
                let n = *v.get_ref();
                if !(1_000..=100_000_000).contains(&n) {
                    return Err(at(
                        v.span(),
                        "max_tracked_keys",
                        "must be between 1000 and 100000000".into(),
                    ));
                }
                n as usize
            }
        };

        let redis = {
            let (url, prefix, password_file) = match raw.redis {
                Some(r) => (r.url, r.key_prefix, r.password_file),
                None => (None, None, None),
            };
            let url = match url {
                None => "redis://127.0.0.1:6379/0".to_owned(),
                Some(u) => {
                    let s = u.get_ref().trim();
                    if !["redis://", "rediss://", "unix://", "redis+unix://"]
                        .iter()
                        .any(|p| s.starts_with(p))
                    {
                        return Err(at(
                            u.span(),
                            "redis.url",
                            "must start with redis://, rediss:// or unix://".into(),
                        ));
                    }
                    s.to_owned()
                }
            };
            let key_prefix = match prefix {
                None => "authwatch:".to_owned(),
                Some(p) => {
                    let s = p.get_ref();
                    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
                        return Err(at(
                            p.span(),
                            "redis.key_prefix",
                            "must not contain spaces or control characters".into(),
                        ));
                    }
                    s.clone()
                }
            };
            let password = match &password_file {
                Some(f) => {
                    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
                    let path = crate::sink::alert::secret_path(f.get_ref(), base, creds.as_deref());
                    let secret = crate::sink::alert::Secret::from_file(&path)
                        .map_err(|e| at(f.span(), "redis.password_file", e.to_string()))?;
                    Some(String::from_utf8(secret.expose().to_vec()).map_err(|_| {
                        at(
                            f.span(),
                            "redis.password_file",
                            "the password is not UTF-8".into(),
                        )
                    })?)
                }
                None => std::env::var("AUTHWATCH_REDIS_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty()),
            };
            let url = match password {
                None => url,
                Some(pw) => {
                    let mut parsed = reqwest::Url::parse(&url).map_err(|_| ConfigError::At {
                        file: file.to_owned(),
                        line: 1,
                        key: "redis.url".into(),
                        message: "cannot add a password to this URL".into(),
                    })?;
                    if parsed.set_password(Some(&pw)).is_err() {
                        return Err(ConfigError::At {
                            file: file.to_owned(),
                            line: 1,
                            key: "redis.password_file".into(),
                            message: "a password needs a redis:// or rediss:// URL".into(),
                        });
                    }
                    parsed.to_string()
                }
            };
            RedisConfig { url, key_prefix }
        };

        let mut sources: Vec<SourceConfig> = Vec::with_capacity(raw.source.len());
        for s in raw.source {
            let name = s.name.get_ref().trim().to_owned();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(at(
                    s.name.span(),
                    "source.name",
                    "must be non-empty and use only letters, digits, '-', '_' and '.'".into(),
                ));
            }
            if sources.iter().any(|o| o.name == name) {
                return Err(at(
                    s.name.span(),
                    "source.name",
                    format!("source {name:?} is defined twice"),
                ));
            }
            let journal = match (&s.path, s.journal) {
                (Some(_), Some(j)) => {
                    return Err(at(
                        j.span(),
                        "source.journal",
                        "a source has either `path` or `journal`, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(at(
                        s.name.span(),
                        "source.path",
                        "a source needs `path` (a file or glob) or `journal = { … }`".into(),
                    ));
                }
                (None, Some(j)) => {
                    let span = j.span();
                    let j = j.into_inner();
                    if j.units
                        .iter()
                        .chain(&j.identifiers)
                        .any(|u| u.is_empty() || u.contains(['*', '?', '[', '+', '=']))
                    {
                        return Err(at(
                            span,
                            "source.journal",
                            "units and identifiers are plain names (no globs, `+` or `=`)".into(),
                        ));
                    }
                    Some(JournalConfig {
                        units: j.units,
                        identifiers: j.identifiers,
                        directory: j.directory.map(|d| resolve(&d)),
                    })
                }
                (Some(_), None) => None,
            };
            let path = s
                .path
                .as_ref()
                .map(|p| p.get_ref().trim().to_owned())
                .unwrap_or_default();
            if let Some(p) = &s.path {
                if path.is_empty() {
                    return Err(at(p.span(), "source.path", "must not be empty".into()));
                }
                if let Some(dir) = Path::new(&path).parent() {
                    if dir.to_string_lossy().contains(['*', '?', '[']) {
                        return Err(at(
                            p.span(),
                            "source.path",
                            "a glob may only appear in the file name, not in directories".into(),
                        ));
                    }
                }
            }
            let start_at = match s.start_at {
                None => StartAt::End,
                Some(v) => match v.get_ref().as_str() {
                    "end" => StartAt::End,
                    "beginning" => StartAt::Beginning,
                    other => {
                        return Err(at(
                            v.span(),
                            "source.start_at",
                            format!("{other:?} is neither \"end\" nor \"beginning\""),
                        ))
                    }
                },
            };
            let source_proxies = match &s.trusted_proxies {
                None => None,
                Some(list) => Some(trusted(list, "source.trusted_proxies")?),
            };
            sources.push(SourceConfig {
                name,
                path: if journal.is_some() {
                    PathBuf::new()
                } else {
                    resolve(Path::new(&path))
                },
                start_at,
                journal,
                trusted_proxies: source_proxies,
            });
        }

        let mut alerts = Vec::with_capacity(raw.alert.len());
        for a in raw.alert {
            let kind = match a.kind.get_ref().as_str() {
                "webhook" => AlertKind::Webhook,
                "slack" => AlertKind::Slack,
                other => {
                    return Err(at(
                        a.kind.span(),
                        "alert.kind",
                        format!("{other:?} is neither \"webhook\" nor \"slack\""),
                    ))
                }
            };
            let url = a.url.get_ref().trim();
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err()
            {
                return Err(at(
                    a.url.span(),
                    "alert.url",
                    "must be an http:// or https:// URL".into(),
                ));
            }
            let timeout = match a.timeout {
                None => Duration::from_secs(5),
                Some(t) => crate::duration::parse(t.get_ref())
                    .map_err(|e| at(t.span(), "alert.timeout", e.to_string()))?,
            };
            let attempts = match a.attempts {
                None => 4,
                Some(n) => {
                    let v = *n.get_ref();
                    if !(1..=20).contains(&v) {
                        return Err(at(
                            n.span(),
                            "alert.attempts",
                            "must be between 1 and 20".into(),
                        ));
                    }
                    v as u32
                }
            };
            let rate = crate::sink::alert::RateLimit {
                interval: match &a.rate {
                    None => crate::sink::alert::RateLimit::SLACK.interval,
                    Some(r) => crate::sink::alert::RateLimit::parse_rate(r.get_ref())
                        .map_err(|m| at(r.span(), "alert.rate", m))?,
                },
                burst: match &a.burst {
                    None => crate::sink::alert::RateLimit::SLACK.burst,
                    Some(b) => u32::try_from(*b.get_ref())
                        .ok()
                        .filter(|n| *n <= 1000)
                        .and_then(std::num::NonZeroU32::new)
                        .ok_or_else(|| {
                            at(b.span(), "alert.burst", "must be between 1 and 1000".into())
                        })?,
                },
            };
            let secret = match &a.secret_file {
                None => None,
                Some(p) if kind != AlertKind::Webhook => {
                    return Err(at(
                        p.span(),
                        "alert.secret_file",
                        "only a webhook is signed: Slack does not check signatures".into(),
                    ))
                }
                Some(p) => {
                    // Under systemd's LoadCredential=, a relative name is a
                    // credential; see secret_path.
                    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY")
                        .filter(|d| !d.is_empty())
                        .map(PathBuf::from);
                    let path =
                        crate::sink::alert::secret_path(p.get_ref(), base, credentials.as_deref());
                    let secret = crate::sink::alert::Secret::from_file(&path)
                        .map_err(|e| at(p.span(), "alert.secret_file", e.to_string()))?;
                    Some(secret)
                }
            };
            alerts.push(AlertTarget {
                kind,
                url: url.to_owned(),
                timeout,
                attempts,
                rate,
                secret,
            });
        }

        // [api]: the unix socket always; TCP only on loopback unless
        // allow_remote, and then only with a token file nobody else reads.
        let api = match raw.api {
            None => crate::api::ApiConfig::default(),
            Some(a) => {
                let socket = match a.socket {
                    None => PathBuf::from(crate::api::DEFAULT_SOCKET),
                    Some(p) => {
                        let path = resolve(p.get_ref());
                        // sun_path holds 108 bytes, the final NUL included.
                        if p.get_ref().as_os_str().is_empty() || path.as_os_str().len() > 107 {
                            return Err(at(
                                p.span(),
                                "api.socket",
                                "must be a path of at most 107 bytes".into(),
                            ));
                        }
                        path
                    }
                };
                let allow_remote = a.allow_remote.as_ref().is_some_and(|b| *b.get_ref());
                let token_file = match a.token_file {
                    None => None,
                    Some(p) => {
                        let path = resolve(p.get_ref());
                        crate::api::auth::check_token_file(&path).map_err(|m| {
                            at(
                                p.span(),
                                "api.token_file",
                                format!("{}: {m}", path.display()),
                            )
                        })?;
                        Some(path)
                    }
                };
                let listen = match a.listen {
                    None => None,
                    Some(l) => {
                        let addr: std::net::SocketAddr =
                            l.get_ref().trim().parse().map_err(|_| {
                                at(
                                    l.span(),
                                    "api.listen",
                                    format!(
                                        "{:?} is not an address and port like \"127.0.0.1:9470\"",
                                        l.get_ref()
                                    ),
                                )
                            })?;
                        if !crate::ip::normalize(addr.ip()).is_loopback() {
                            if !allow_remote {
                                return Err(at(
                                    l.span(),
                                    "api.listen",
                                    format!("{addr} is not a loopback address; set allow_remote = true (with a token_file) to serve other hosts"),
                                ));
                            }
                            if token_file.is_none() {
                                return Err(at(
                                    l.span(),
                                    "api.listen",
                                    format!("{addr} serves other hosts and so needs a token_file"),
                                ));
                            }
                        }
                        Some(addr)
                    }
                };
                crate::api::ApiConfig {
                    socket,
                    listen,
                    allow_remote,
                    token_file,
                }
            }
        };

        let allowlist = Allowlist::new(
            allowlist
                .nets()
                .iter()
                .chain(trusted_proxies.nets())
                .chain(
                    sources
                        .iter()
                        .filter_map(|s| s.trusted_proxies.as_ref())
                        .flat_map(|p| p.nets()),
                )
                .copied()
                .collect(),
        );

        Ok(Config {
            file: file.to_owned(),
            rules_dir,
            state_dir,
            allowlist,
            trusted_proxies,
            host,
            max_line_bytes,
            max_tracked_keys,
            redis,
            sources,
            alerts,
            api,
        })
    }
}

/// Parses `10.0.0.0/8`, or a bare address as its /32 or /128.
pub fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    Err(format!("{s:?} is not an IP address or CIDR network"))
}

/// Parses an allowlist file read from `path`: a network (or a bare
/// address) per line; blank lines and `#` comments, whole-line or after an
/// entry, are skipped. `listed_at` is where the configuration names the
/// file, for messages.
fn parse_allowlist_file(
    path: &Path,
    content: &str,
    listed_at: &str,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let mut nets = Vec::new();
    for (i, line) in content.lines().enumerate() {
        // No network is written with a '#': whatever follows one is a
        // comment.
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let net = parse_cidr(entry).map_err(|m| ConfigError::At {
            file: path.to_owned(),
            line: i + 1,
            key: "allowlist_files".to_owned(),
            message: format!("{m} (file listed at {listed_at})"),
        })?;
        nets.push(net);
    }
    Ok(nets)
}

/// The machine's host name, as `gethostname(2)` reports it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
rules_dir = "/etc/authwatch/rules"
state_dir = "/var/lib/authwatch"
allowlist = ["127.0.0.0/8", "::1/128"]

[redis]
url = "redis://127.0.0.1:6379/0"
key_prefix = "authwatch:"

[[source]]
name = "sshd"
path = "/var/log/auth.log"

[[source]]
name = "api"
path = "/var/log/myapi/*.log"

[[alert]]
kind = "webhook"
url = "http://127.0.0.1:9000/authwatch"

[[alert]]
kind = "slack"
url = "https://hooks.slack.com/services/T000/B000/XXXX"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/authwatch/authwatch.toml"), text)
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("must be refused").to_string()
    }

    #[test]
    fn the_documented_example_is_accepted_as_written() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.rules_dir, PathBuf::from("/etc/authwatch/rules"));
        assert_eq!(c.redis.key_prefix, "authwatch:");
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[1].path, PathBuf::from("/var/log/myapi/*.log"));
        assert_eq!(c.alerts.len(), 2);
        assert_eq!(c.alerts[1].kind, AlertKind::Slack);
        assert!(c.allowlist.contains(&"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn empty_allowlist_means_none_and_absent_means_loopback() {
        let c = parse("allowlist = []").unwrap();
        assert!(c.allowlist.is_empty());
        let c = parse("").unwrap();
        assert!(c.allowlist.contains(&"::1".parse().unwrap()));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = error("rules_dir = \"/r\"\n\n[redis]\nurl = \"http://x\"\n");
        assert_eq!(e, "/etc/authwatch/authwatch.toml:4: redis.url: must start with redis://, rediss:// or unix://");
        let e = error("allowlist = [\"10.0.0.0/8\",\n \"not-a-net\"]\n");
        assert!(
            e.starts_with("/etc/authwatch/authwatch.toml:2: allowlist:"),
            "{e}"
        );
        let e = error("treshold = 5\n");
        assert!(e.contains(":1:") && e.contains("treshold"), "{e}");
        let e = error("[[alert]]\nkind = \"pager\"\nurl = \"http://x\"\n");
        assert!(e.contains(":2: alert.kind:"), "{e}");
        let e = error("[[source]]\nname = \"a\"\npath = \"/x\"\nstart_at = \"middle\"\n");
        assert!(e.contains(":4: source.start_at:"), "{e}");
        let e = error(
            "[[source]]\nname = \"a\"\npath = \"/x\"\n[[source]]\nname = \"a\"\npath = \"/y\"\n",
        );
        assert!(e.contains(":5: source.name:"), "{e}");
        let e = error("rules_dir = \"/r\"\nmax_tracked_keys = 10\n");
        assert_eq!(
            e,
            "/etc/authwatch/authwatch.toml:2: max_tracked_keys: must be between 1000 and 100000000"
        );
        assert_eq!(
            parse("max_tracked_keys = 5000\n").unwrap().max_tracked_keys,
            5000
        );
        assert_eq!(
            parse("").unwrap().max_tracked_keys,
            crate::detector::DEFAULT_MAX_KEYS
        );
    }

    #[test]
    fn trusted_proxies_are_checked_named_by_line_and_allowlisted() {
        let c = parse("").unwrap();
        assert!(
            c.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        let c = parse(
            "allowlist = []\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.7\", \"fd00::/8\"]\n\
             [[source]]\nname = \"app\"\npath = \"/var/log/app.log\"\ntrusted_proxies = []\n\
             [[source]]\nname = \"edge\"\npath = \"/var/log/edge.log\"\ntrusted_proxies = [\"198.51.100.0/24\"]\n",
        )
        .unwrap();
        let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        assert!(c.trusted_proxies.contains(&ip("10.1.2.3")));
        assert!(c.trusted_proxies.contains(&ip("192.168.1.7")));
        assert!(!c.trusted_proxies.contains(&ip("192.168.1.8")));
        assert!(c.trusted_proxies.contains(&ip("fd00::5")));
        // Every trusted proxy is allowlisted, even with `allowlist = []`.
        for proxy in ["10.1.2.3", "192.168.1.7", "fd00::5", "198.51.100.9"] {
            assert!(c.allowlist.contains(&ip(proxy)), "{proxy}");
        }
        assert!(!c.allowlist.contains(&ip("203.0.113.7")));
        let by_source = c.proxies_by_source();
        assert_eq!(by_source.len(), 2);
        assert_eq!(by_source[0].0, "app");
        assert!(by_source[0].1.is_empty(), "the app's log trusts no proxy");
        assert!(by_source[1].1.contains(&ip("198.51.100.9")));

        let e =
            error("host = \"web1\"\ntrusted_proxies = [\"10.0.0.0/8\",\n  \"10.0.0.300/24\"]\n");
        assert_eq!(
            e,
            "/etc/authwatch/authwatch.toml:3: trusted_proxies: \"10.0.0.300/24\" is not an IP address or CIDR network"
        );
        let e = error("trusted_proxies = [\"10.0.0.5/8\"]\n");
        assert!(
            e.starts_with("/etc/authwatch/authwatch.toml:1: trusted_proxies: \"10.0.0.5/8\" has bits set after its prefix"),
            "{e}"
        );
        let e = error("trusted_proxies = [\"::/0\"]\n");
        assert!(
            e.contains(":1: trusted_proxies:") && e.contains("trusts every address"),
            "{e}"
        );
        let e =
            error("[[source]]\nname = \"a\"\npath = \"/x\"\ntrusted_proxies = [\"lb.example\"]\n");
        assert!(e.contains(":4: source.trusted_proxies:"), "{e}");
        let e = error("trusted_proxies = \"10.0.0.0/8\"\n");
        assert!(
            e.contains(":1:") && e.contains("expected a sequence"),
            "{e}"
        );
    }

    #[test]
    fn allowlist_files_are_merged_with_the_allowlist() {
        let dir = tempfile::tempdir().unwrap();
        let office = dir.path().join("office.txt");
        std::fs::write(
            &office,
            "# the office\n\n10.20.0.0/16\n  192.0.2.7   # the VPN gateway\r\n2001:db8:aa::/48\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("empty.txt"), "# nobody yet\n").unwrap();
        let config = dir.path().join("authwatch.toml");

        let c = Config::parse(
            &config,
            "allowlist = [\"198.51.100.0/24\"]\nallowlist_files = [\"office.txt\", \"empty.txt\"]\n",
        )
        .unwrap();
        for allowed in ["198.51.100.9", "10.20.3.4", "192.0.2.7", "2001:db8:aa::1"] {
            assert!(c.allowlist.contains(&allowed.parse().unwrap()), "{allowed}");
        }
        for blocked in ["192.0.2.8", "10.21.0.1", "127.0.0.1"] {
            assert!(
                !c.allowlist.contains(&blocked.parse().unwrap()),
                "{blocked}"
            );
        }

        // Without `allowlist`, the files add to the loopback default.
        let c = Config::parse(&config, "allowlist_files = [\"office.txt\"]\n").unwrap();
        assert!(c.allowlist.contains(&"127.0.0.1".parse().unwrap()));
        assert!(c.allowlist.contains(&"10.20.0.1".parse().unwrap()));
    }

    #[test]
    fn allowlist_file_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "10.0.0.0/8\n# fine so far\n10.0.0.300/8\n").unwrap();
        let config = dir.path().join("authwatch.toml");

        let e = Config::parse(&config, "host = \"h\"\nallowlist_files = [\"bad.txt\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "{}:3: allowlist_files: \"10.0.0.300/8\" is not",
                bad.display()
            )),
            "{e}"
        );
        assert!(
            e.contains(&format!("listed at {}:2", config.display())),
            "{e}"
        );

        let e = Config::parse(
            &config,
            "allowlist_files = [\n  \"bad.txt\",\n  \"missing.txt\",\n]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("bad.txt:3:"),
            "the first file is read first: {e}"
        );
        std::fs::write(&bad, "10.0.0.0/8\n").unwrap();
        let e = Config::parse(
            &config,
            "allowlist_files = [\n  \"bad.txt\",\n  \"missing.txt\",\n]\n",
        )
        .unwrap_err()
        .to_string();
        let missing = dir.path().join("missing.txt");
        assert!(
            e.starts_with(&format!(
                "{}:3: allowlist_files: {}: cannot read:",
                config.display(),
                missing.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn the_redis_password_comes_from_a_file_and_never_prints() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis.pass"), "s3cr3t-pass\n").unwrap();
        let c = Config::parse(
            &dir.path().join("a.toml"),
            "[redis]\nurl = \"redis://127.0.0.1:6379/0\"\npassword_file = \"redis.pass\"\n",
        )
        .unwrap();
        assert_eq!(c.redis.url, "redis://:s3cr3t-pass@127.0.0.1:6379/0");
        assert!(!format!("{c:?}").contains("s3cr3t-pass"));
        let e = Config::parse(
            &dir.path().join("a.toml"),
            "[redis]\npassword_file = \"missing\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(":2: redis.password_file:") && !e.contains("s3cr3t"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/authwatch.toml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.sources[0].name, "sshd");
    }

    #[test]
    fn a_journal_source_is_read_and_path_or_journal_is_required() {
        let c = parse("[[source]]\nname = \"sshd\"\njournal = { units = [\"ssh.service\"], identifiers = [\"sshd\"] }\n").unwrap();
        let j = c.sources[0].journal.as_ref().expect("a journal source");
        assert_eq!(j.units, ["ssh.service"]);
        let e = error("[[source]]\nname = \"x\"\n");
        assert!(e.contains(":2: source.path:"), "{e}");
        let e = error("[[source]]\nname = \"x\"\npath = \"/a\"\njournal = { units = [\"ssh\"] }\n");
        assert!(e.contains("source.journal"), "{e}");
    }

    #[test]
    fn relative_paths_are_taken_from_the_config_directory() {
        let c = Config::parse(Path::new("/opt/aw/authwatch.toml"), "rules_dir = \"rules\"\n[[source]]\nname = \"x\"\npath = \"log/a.log\"\nstart_at = \"beginning\"\n").unwrap();
        assert_eq!(c.rules_dir, PathBuf::from("/opt/aw/rules"));
        assert_eq!(c.sources[0].path, PathBuf::from("/opt/aw/log/a.log"));
        assert_eq!(c.sources[0].start_at, StartAt::Beginning);
    }
}
