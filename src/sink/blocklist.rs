//! The Redis blocklist: the contract that API services consult.
//!
//! For a key prefix `P` (for example `authwatch:`):
//!
//! * `P block:{ip}` — a string holding the [`BlockRecord`] as JSON, expiring
//!   exactly when the block does. A service needs only `EXISTS` (or `GET`)
//!   on this key to decide whether to refuse a client.
//! * `P blocks` — a sorted set indexing the current blocks: member `{ip}`,
//!   score the block's expiry in Unix seconds, rounded up. It lets tools list
//!   blocks without `SCAN`; members whose score has passed are pruned on
//!   every write.
//! * `P events` — a pub/sub channel that carries the JSON of every *new*
//!   block, for services that keep a local cache.
//!
//! Every write goes through one Lua script, so that concurrent writers (two
//! daemons on two hosts, or a daemon and an operator) can never shorten a
//! block, and the key, the index and the event always agree.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, RedisError, Script, Value};

use super::BlockRecord;
use crate::time::Timestamp;

/// How long [`Blocklist::connect`] waits for Redis before giving up: long
/// enough for a loaded server, short enough that a wrong address fails the
/// start-up visibly instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one command may take once connected. The library default
/// (0.5 s) is tight for a busy 2-core host; a block written 2 s late is
/// still useful, while a hung server must not stall the writer forever.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The write script. Keys and arguments:
///
/// * `KEYS[1]` the block key, `KEYS[2]` the index key;
/// * `ARGV[1]` the IP (index member), `ARGV[2]` the record JSON,
///   `ARGV[3]` the TTL in milliseconds, `ARGV[4]` the expiry in Unix
///   seconds (rounded up), `ARGV[5]` now in Unix seconds (rounded down),
///   `ARGV[6]` the events channel, `ARGV[7]` [`EXTEND_SLACK_MS`].
///
/// Returns 0 = expired, 1 = new, 2 = extended, 3 = unchanged.
///
/// The index update compares `ZSCORE` by hand instead of `ZADD GT`: the
/// effect is the same (add if absent, otherwise only ever raise the score),
/// and it also runs on Redis before 6.2 (Debian 11 ships 6.0), which lacks
/// `GT`.
const WRITE_SCRIPT: &str = r#"
local ttl_ms = tonumber(ARGV[3])
if ttl_ms <= 0 then
  return 0
end
-- PTTL: -2 = no such key, -1 = a key without expiry (a permanent block an
-- operator set by hand), otherwise the milliseconds left.
local pttl = redis.call('PTTL', KEYS[1])
if pttl == -1 or pttl + tonumber(ARGV[7]) >= ttl_ms then
  return 3
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl_ms)
local expires = tonumber(ARGV[4])
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if (not score) or tonumber(score) < expires then
  redis.call('ZADD', KEYS[2], expires, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
if pttl == -2 then
  redis.call('PUBLISH', ARGV[6], ARGV[2])
  return 1
end
return 2
"#;

/// An existing block is extended only if the new expiry is later by at least
/// this much. The key's remaining time (Redis's clock, after the first
/// write's latency) and the new TTL (the caller's clock, before this write's
/// latency) differ by milliseconds even for the very same record; without
/// this slack, rewriting a record (a retry after a lost reply, a second
/// daemon deciding the same block) would count as `Extended` by chance.
const EXTEND_SLACK_MS: i64 = 1000;

/// Removes index members whose block key is gone. `KEYS[1]` is the index,
/// `KEYS[i+1]` the block key of member `ARGV[i]`. Checking `EXISTS` inside
/// the script (rather than trusting an earlier `GET`) keeps a block that was
/// re-written in between from losing its index entry.
const PRUNE_SCRIPT: &str = r#"
local removed = 0
for i, ip in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ip)
  end
end
return removed
"#;

/// What [`Blocklist::write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// There was no block for the IP: written, indexed and announced on the
    /// events channel.
    New,
    /// A block ending at least a second sooner existed: its expiry was
    /// pushed out (no event).
    Extended,
    /// A block at least as long existed (give or take a second, see
    /// [`Blocklist::write`]), or one without expiry: nothing written, because
    /// a block is never shortened.
    Unchanged,
    /// The record had already expired at `now`: nothing written.
    Expired,
}

/// Errors of the blocklist. None of them carries the password of the Redis
/// URL: URLs are shown through [`redact_url`].
#[derive(Debug, thiserror::Error)]
pub enum BlocklistError {
    #[error("invalid Redis URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: RedisError,
    },
    #[error("Redis at {url} did not answer within {timeout:?}")]
    ConnectTimeout { url: String, timeout: Duration },
    #[error("Redis {op} failed: {source}")]
    Command {
        op: &'static str,
        #[source]
        source: RedisError,
    },
    #[error("unexpected reply to Redis {op}: {detail}")]
    UnexpectedReply { op: &'static str, detail: String },
    #[error("cannot encode block record as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

impl BlocklistError {
    fn command(op: &'static str) -> impl FnOnce(RedisError) -> BlocklistError {
        move |source| BlocklistError::Command { op, source }
    }
}

/// A block as read back from Redis.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBlock {
    /// The stored JSON. A value that is not JSON (written by hand, say) is
    /// kept as a JSON string rather than failing the whole listing.
    pub record: serde_json::Value,
    pub ip: String,
    /// Seconds left as Redis reports them (`TTL`); -1 for a key without
    /// expiry.
    pub ttl_secs: i64,
}

/// The Redis blocklist. Cheap to clone: clones share one connection, which
/// reconnects by itself after Redis restarts (the command in flight during
/// an outage fails with [`BlocklistError::Command`]).
#[derive(Clone)]
pub struct Blocklist {
    conn: ConnectionManager,
    prefix: String,
    /// The URL with its password hidden, for messages.
    shown_url: String,
    write_script: Script,
    prune_script: Script,
}

impl fmt::Debug for Blocklist {
    // By hand: the connection's own Debug prints the whole client config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocklist")
            .field("url", &self.shown_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Blocklist {
    /// Connects to Redis and checks that it answers, failing within about
    /// three seconds if it does not.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Blocklist, BlocklistError> {
        let shown_url = redact_url(url);
        let client = redis::Client::open(url).map_err(|e| BlocklistError::InvalidUrl {
            url: shown_url.clone(),
            reason: e.to_string(),
        })?;

        // Probe with one plain connection first. The connection manager
        // retries a failed first connection with backoff for several
        // seconds and then reports only the last error; a single attempt
        // gives the operator the real reason ("connection refused", "wrong
        // password") right away.
        let probe_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let probe = async {
            let mut con = client
                .get_multiplexed_async_connection_with_config(&probe_config)
                .await?;
            redis::cmd("PING").query_async::<()>(&mut con).await
        };
        let timed_out = || BlocklistError::ConnectTimeout {
            url: shown_url.clone(),
            timeout: CONNECT_TIMEOUT,
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(source)) => {
                return Err(BlocklistError::Connect {
                    url: shown_url.clone(),
                    source,
                })
            }
            Ok(Ok(())) => {}
        }

        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| BlocklistError::Connect {
            url: shown_url.clone(),
            source,
        })?;

        Ok(Blocklist {
            conn,
            prefix: key_prefix.to_owned(),
            shown_url,
            write_script: Script::new(WRITE_SCRIPT),
            prune_script: Script::new(PRUNE_SCRIPT),
        })
    }

    /// `{prefix}block:{ip}`
    pub fn block_key(&self, ip: &str) -> String {
        format!("{}block:{}", self.prefix, ip)
    }

    /// `{prefix}blocks`
    pub fn index_key(&self) -> String {
        format!("{}blocks", self.prefix)
    }

    /// `{prefix}events`
    pub fn events_channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Writes a block, atomically, never shortening an existing one. An
    /// existing block is extended only when the new one ends at least a
    /// second later: sub-second differences are clock and latency noise.
    ///
    /// The key expires exactly at `rec.expires_at` (`SET … PX`, to the
    /// millisecond): with whole seconds, rewriting the same record a moment
    /// later would round up past the stored expiry and count as `Extended`.
    pub async fn write(
        &self,
        rec: &BlockRecord,
        now: Timestamp,
    ) -> Result<WriteOutcome, BlocklistError> {
        let ttl_ms = rec.expires_at.as_millis().saturating_sub(now.as_millis());
        if ttl_ms <= 0 {
            // `rec.ttl_secs(now) == 0`: no round trip for what the script
            // would refuse anyway.
            return Ok(WriteOutcome::Expired);
        }
        let json = serde_json::to_string(rec)?;
        let expires_unix = rec.expires_at.as_millis().div_euclid(1000)
            + i64::from(rec.expires_at.as_millis().rem_euclid(1000) != 0);

        let mut conn = self.conn.clone();
        let code: i64 = self
            .write_script
            .key(self.block_key(&rec.ip))
            .key(self.index_key())
            .arg(&rec.ip)
            .arg(json)
            .arg(ttl_ms)
            .arg(expires_unix)
            .arg(now.as_secs())
            .arg(self.events_channel())
            .arg(EXTEND_SLACK_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(BlocklistError::command("write script"))?;
        match code {
            0 => Ok(WriteOutcome::Expired),
            1 => Ok(WriteOutcome::New),
            2 => Ok(WriteOutcome::Extended),
            3 => Ok(WriteOutcome::Unchanged),
            other => Err(BlocklistError::UnexpectedReply {
                op: "write script",
                detail: format!("status {other}"),
            }),
        }
    }

    /// The current blocks, soonest expiry first: index members whose score
    /// is after `now`, with each key's JSON and TTL. Members whose key is
    /// gone are skipped and removed from the index.
    pub async fn list(&self, now: Timestamp) -> Result<Vec<StoredBlock>, BlocklistError> {
        let mut conn = self.conn.clone();
        let ips: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.index_key())
            .arg(format!("({}", now.as_secs()))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(BlocklistError::command("ZRANGEBYSCORE"))?;
        if ips.is_empty() {
            return Ok(Vec::new());
        }

        let mut pipe = redis::pipe();
        for ip in &ips {
            let key = self.block_key(ip);
            pipe.ttl(&key).get(&key);
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(BlocklistError::command("TTL/GET pipeline"))?;
        if replies.len() != ips.len() * 2 {
            return Err(BlocklistError::UnexpectedReply {
                op: "TTL/GET pipeline",
                detail: format!("{} replies for {} keys", replies.len(), ips.len()),
            });
        }

        let mut blocks = Vec::with_capacity(ips.len());
        let mut gone = Vec::new();
        let mut replies = replies.into_iter();
        for ip in ips {
            let (Some(ttl), Some(value)) = (replies.next(), replies.next()) else {
                break; // unreachable: the length was checked above
            };
            match stored(ip, ttl, value, "TTL/GET pipeline")? {
                Ok(block) => blocks.push(block),
                Err(ip) => gone.push(ip),
            }
        }
        if !gone.is_empty() {
            self.prune(&mut conn, &gone).await?;
        }
        Ok(blocks)
    }

    /// The block of one IP, if there is one.
    pub async fn get(&self, ip: &str) -> Result<Option<StoredBlock>, BlocklistError> {
        let mut conn = self.conn.clone();
        let key = self.block_key(ip);
        let (ttl, value): (Value, Value) = redis::pipe()
            .ttl(&key)
            .get(&key)
            .query_async(&mut conn)
            .await
            .map_err(BlocklistError::command("TTL/GET"))?;
        Ok(stored(ip.to_owned(), ttl, value, "TTL/GET")?.ok())
    }

    /// Lifts a block: deletes its key and index member in one transaction.
    /// Returns whether a block existed.
    pub async fn remove(&self, ip: &str) -> Result<bool, BlocklistError> {
        let mut conn = self.conn.clone();
        let (deleted, _unindexed): (i64, i64) = redis::pipe()
            .atomic()
            .del(self.block_key(ip))
            .zrem(self.index_key(), ip)
            .query_async(&mut conn)
            .await
            .map_err(BlocklistError::command("DEL/ZREM"))?;
        Ok(deleted > 0)
    }

    async fn prune(
        &self,
        conn: &mut ConnectionManager,
        ips: &[String],
    ) -> Result<(), BlocklistError> {
        let mut invocation = self.prune_script.key(self.index_key());
        for ip in ips {
            invocation.key(self.block_key(ip));
        }
        for ip in ips {
            invocation.arg(ip);
        }
        let removed: i64 = invocation
            .invoke_async(conn)
            .await
            .map_err(BlocklistError::command("prune script"))?;
        tracing::debug!(removed, "pruned index members whose block key is gone");
        Ok(())
    }
}

/// Builds a [`StoredBlock`] from the replies to `TTL` and `GET`; `Err(ip)`
/// when the key is gone (or expired between the two commands).
fn stored(
    ip: String,
    ttl: Value,
    value: Value,
    op: &'static str,
) -> Result<Result<StoredBlock, String>, BlocklistError> {
    let ttl_secs: i64 =
        redis::from_redis_value(ttl).map_err(|e| BlocklistError::UnexpectedReply {
            op,
            detail: format!("TTL: {e}"),
        })?;
    let text: Option<String> =
        redis::from_redis_value(value).map_err(|e| BlocklistError::UnexpectedReply {
            op,
            detail: format!("GET: {e}"),
        })?;
    let Some(text) = text.filter(|_| ttl_secs != -2) else {
        return Ok(Err(ip));
    };
    let record = serde_json::from_str(&text).unwrap_or_else(|e| {
        tracing::warn!(%ip, error = %e, "block value is not JSON; keeping it as a string");
        serde_json::Value::String(text)
    });
    Ok(Ok(StoredBlock {
        record,
        ip,
        ttl_secs,
    }))
}

/// A Redis URL fit for messages and logs: `scheme://[user:***@]host[:port][/path]`.
///
/// It is parsed with the `url` crate (through reqwest's re-export), the
/// parser redis itself uses, and rebuilt from the parts known to be safe:
/// the password becomes `***` and the query (where `redis+unix` URLs carry
/// `pass=`) is dropped. A URL that does not parse is not shown at all, since
/// nobody can say where its password is.
pub fn redact_url(url: &str) -> String {
    let parsed = match reqwest::Url::parse(url) {
        // `scheme:anything` parses with all of `anything` as the path.
        Ok(parsed) if !parsed.cannot_be_a_base() => parsed,
        _ => return "<unparsable URL>".to_owned(),
    };
    let mut shown = format!("{}://", parsed.scheme());
    if !parsed.username().is_empty() || parsed.password().is_some() {
        shown.push_str(parsed.username());
        if parsed.password().is_some() {
            shown.push_str(":***");
        }
        shown.push('@');
    }
    if let Some(host) = parsed.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = parsed.port() {
        shown.push_str(&format!(":{port}"));
    }
    if parsed.path() != "/" {
        shown.push_str(parsed.path());
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact_url("redis://:s3cret@127.0.0.1:6379/2"),
            "redis://:***@127.0.0.1:6379/2"
        );
        assert_eq!(
            redact_url("rediss://user:p%40ss@redis.example:6380"),
            "rediss://user:***@redis.example:6380"
        );
        assert_eq!(
            redact_url("redis://user@localhost"),
            "redis://user@localhost"
        );
        assert_eq!(redact_url("redis://localhost"), "redis://localhost");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock"
        );
        for raw in [
            "redis://:a/b?c@host/0",
            "redis://:p?ss@host",
            "no-scheme:s3cret@x",
        ] {
            let shown = redact_url(raw);
            assert!(
                !shown.contains("a/b") && !shown.contains("p?ss") && !shown.contains("s3cret"),
                "{raw} shown as {shown}"
            );
        }
    }

    #[test]
    fn errors_do_not_show_the_password() {
        let err = BlocklistError::InvalidUrl {
            url: redact_url("redis://:hunter2@[::1"),
            reason: "bad".into(),
        };
        assert!(!err.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn invalid_url_is_reported_without_password() {
        let err = Blocklist::connect("redis://:hunter2@", "t:")
            .await
            .expect_err("must fail");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
