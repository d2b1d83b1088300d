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
//! * `P offenses:{ip}` — a hash holding the address's offence history:
//!   `count`, the offences counted, and `last`, the identity
//!   (`rule|last_seen_ms`) of the decision that counted the latest one. It
//!   expires [`OFFENSE_HISTORY`] after the latest offence (or with the
//!   block, if that is later), so an address that behaves for that long
//!   starts again at the first step of the ladder.
//!
//! Every write goes through one Lua script, so that concurrent writers (two
//! daemons on two hosts, or a daemon and an operator) can never shorten a
//! block, and the key, the index, the event and the offence count always
//! agree.
//!
//! # Repeat offenders
//!
//! [`Blocklist::write_offense`] writes a detected block. An offence is
//! counted when the address is not blocked at that moment: a decision
//! arriving while a block stands (the same attack seen by a second host,
//! or by a second rule) extends that block at most, at the step it is at.
//! The Nth offence gets the Nth duration of the rule's ladder (the last one
//! repeats). Both the count and the choice of duration happen in the
//! script, so two hosts sharing one Redis share one history, and a
//! restart forgets nothing.

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

/// How long an address's offence history outlives its latest offence.
pub const OFFENSE_HISTORY: Duration = Duration::from_secs(30 * 24 * 3600);

/// The write script. Keys and arguments:
///
/// * `KEYS[1]` the block key, `KEYS[2]` the index key, `KEYS[3]` the
///   offence history key;
/// * `ARGV[1]` the IP (index member), `ARGV[2]` now in Unix seconds
///   (rounded down), `ARGV[3]` the events channel, `ARGV[4]`
///   [`EXTEND_SLACK_MS`], `ARGV[5]` the decision's identity, or empty for a
///   write that counts no offence, `ARGV[6]` [`OFFENSE_HISTORY`] in
///   milliseconds;
/// * then one triple per step of the ladder: the record JSON, the TTL in
///   milliseconds, the expiry in Unix seconds (rounded up). When counting,
///   the JSON stops just before the value of `offense`, its last field:
///   the script appends the number and the closing brace.
///
/// Returns `{status, offence, step}`: status 0 = expired, 1 = new,
/// 2 = extended, 3 = unchanged; the offence number the record carries
/// (0 when not counting); the 1-based step used.
///
/// An offence is counted only when no block stands and the decision is
/// not the one that counted the latest offence: a decision written again
/// (a retry after a lost reply, the outbox replayed after a crash, even
/// after an operator lifted the block) counts once.
///
/// The index update compares `ZSCORE` by hand instead of `ZADD GT`: the
/// effect is the same (add if absent, otherwise only ever raise the score),
/// and it also runs on Redis before 6.2 (Debian 11 ships 6.0), which lacks
/// `GT`.
const WRITE_SCRIPT: &str = r#"
-- PTTL: -2 = no such key, -1 = a key without expiry (a permanent block an
-- operator set by hand), otherwise the milliseconds left.
local pttl = redis.call('PTTL', KEYS[1])
local counting = ARGV[5] ~= ''
local n = 0
local counted = false
if counting then
  local history = redis.call('HMGET', KEYS[3], 'count', 'last')
  n = tonumber(history[1]) or 0
  if pttl == -2 and history[2] ~= ARGV[5] then
    n = n + 1
    counted = true
  end
end
local steps = (#ARGV - 6) / 3
local step = math.min(math.max(n, 1), steps)
local at = 6 + (step - 1) * 3
local ttl_ms = tonumber(ARGV[at + 2])
if ttl_ms <= 0 then
  return {0, n, step}
end
if pttl == -1 or pttl + tonumber(ARGV[4]) >= ttl_ms then
  return {3, n, step}
end
local json = ARGV[at + 1]
if counting then
  json = json .. string.format('%d', n) .. '}'
end
redis.call('SET', KEYS[1], json, 'PX', ttl_ms)
local expires = tonumber(ARGV[at + 3])
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if (not score) or tonumber(score) < expires then
  redis.call('ZADD', KEYS[2], expires, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if counted then
  redis.call('HSET', KEYS[3], 'count', n, 'last', ARGV[5])
  redis.call('PEXPIRE', KEYS[3], math.max(tonumber(ARGV[6]), ttl_ms))
elseif n > 0 and redis.call('PTTL', KEYS[3]) < ttl_ms then
  -- An extended block: the history must not be forgotten before it ends.
  redis.call('PEXPIRE', KEYS[3], ttl_ms)
end
if pttl == -2 then
  redis.call('PUBLISH', ARGV[3], json)
  return {1, n, step}
end
return {2, n, step}
"#;

/// How a counted record's JSON ends before the script fills in `offense`:
/// serialized with `offense: 0`, the last field, it ends with this plus
/// `0}`.
const OFFENSE_FIELD: &str = r#","offense":"#;

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

/// What [`Blocklist::write`] or [`Blocklist::write_offense`] did.
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

/// What [`Blocklist::write_offense`] did, and with which record.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub outcome: WriteOutcome,
    /// The record with the offence number, duration (`block_for_secs`) and
    /// `expires_at` the script chose: what was stored and published for
    /// [`WriteOutcome::New`] and [`WriteOutcome::Extended`], what would
    /// have been otherwise. Alert with this one, not the decision's.
    pub record: BlockRecord,
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
        // `rediss://` goes through rustls, which needs the process-wide
        // crypto provider (ring) installed first; cheap when already done.
        crate::sink::alert::install_tls_provider();
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

    /// `{prefix}offenses:{ip}`
    pub fn offenses_key(&self, ip: &str) -> String {
        format!("{}offenses:{}", self.prefix, ip)
    }

    /// Writes a block as given, atomically, never shortening an existing
    /// one, and counts no offence: what an operator's block does. An
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
        if rec.ttl_secs(now) == 0 {
            // No round trip for what the script would refuse anyway.
            return Ok(WriteOutcome::Expired);
        }
        let step = Step::new(serde_json::to_string(rec)?, rec, now);
        let (outcome, _, _) = self.run_write(&rec.ip, "", &[step], now).await?;
        Ok(outcome)
    }

    /// Writes a detected block and counts it as an offence of `rec.ip`,
    /// atomically: the Nth offence blocks for `ladder[N-1]` from
    /// `rec.last_seen` (the last step repeats; an empty ladder means the
    /// record's own `expires_at` every time). The returned record carries
    /// the offence number, the duration and the expiry used.
    ///
    /// An offence is counted only if the address is not blocked, so a
    /// decision arriving during a block (a second host, a second rule)
    /// extends it at most, at its current step; and only once per decision
    /// (`rec.rule` and `rec.last_seen`), so writing the same decision again
    /// — a retry, the outbox after a crash — counts nothing more. Otherwise
    /// as [`Blocklist::write`]: never shortened, published only when new.
    pub async fn write_offense(
        &self,
        rec: &BlockRecord,
        ladder: &[Duration],
        now: Timestamp,
    ) -> Result<Written, BlocklistError> {
        let mut records: Vec<BlockRecord> = if ladder.is_empty() {
            vec![rec.clone()]
        } else {
            ladder
                .iter()
                .map(|&d| BlockRecord {
                    expires_at: rec.last_seen.saturating_add(d),
                    block_for_secs: d.as_secs(),
                    ..rec.clone()
                })
                .collect()
        };
        let mut steps = Vec::with_capacity(records.len());
        for r in &mut records {
            r.offense = 0;
            let json = serde_json::to_string(r)?;
            // `offense` is the last field: cut its value off for the script
            // to fill in. The cut falls on ASCII, so on a char boundary.
            let Some(head) = json
                .strip_suffix("0}")
                .filter(|h| h.ends_with(OFFENSE_FIELD))
            else {
                return Err(BlocklistError::Encode(serde::ser::Error::custom(
                    "`offense` is not the last field of the block record",
                )));
            };
            steps.push(Step::new(head.to_owned(), r, now));
        }
        let id = format!("{}|{}", rec.rule, rec.last_seen.as_millis());
        let (outcome, offense, step) = self.run_write(&rec.ip, &id, &steps, now).await?;
        let mut record = records.swap_remove(step);
        record.offense = offense;
        Ok(Written { outcome, record })
    }

    /// The offences counted for `ip` (0 once its history has expired).
    pub async fn offenses(&self, ip: &str) -> Result<u32, BlocklistError> {
        let mut conn = self.conn.clone();
        let count: Option<u32> = redis::cmd("HGET")
            .arg(self.offenses_key(ip))
            .arg("count")
            .query_async(&mut conn)
            .await
            .map_err(BlocklistError::command("HGET"))?;
        Ok(count.unwrap_or(0))
    }

    /// Runs [`WRITE_SCRIPT`]: returns the outcome, the offence number and
    /// the 0-based index of the step used.
    async fn run_write(
        &self,
        ip: &str,
        decision: &str,
        steps: &[Step],
        now: Timestamp,
    ) -> Result<(WriteOutcome, u32, usize), BlocklistError> {
        let mut invocation = self.write_script.prepare_invoke();
        invocation
            .key(self.block_key(ip))
            .key(self.index_key())
            .key(self.offenses_key(ip))
            .arg(ip)
            .arg(now.as_secs())
            .arg(self.events_channel())
            .arg(EXTEND_SLACK_MS)
            .arg(decision)
            .arg(OFFENSE_HISTORY.as_millis() as u64);
        for step in steps {
            invocation
                .arg(&step.json)
                .arg(step.ttl_ms)
                .arg(step.expires_unix);
        }
        let mut conn = self.conn.clone();
        let (code, offense, step): (i64, u32, usize) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(BlocklistError::command("write script"))?;
        let outcome = match code {
            0 => WriteOutcome::Expired,
            1 => WriteOutcome::New,
            2 => WriteOutcome::Extended,
            3 => WriteOutcome::Unchanged,
            other => {
                return Err(BlocklistError::UnexpectedReply {
                    op: "write script",
                    detail: format!("status {other}"),
                })
            }
        };
        if !(1..=steps.len()).contains(&step) {
            return Err(BlocklistError::UnexpectedReply {
                op: "write script",
                detail: format!("step {step} of {}", steps.len()),
            });
        }
        Ok((outcome, offense, step - 1))
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

/// One step of a write's ladder, as the script takes it.
struct Step {
    json: String,
    ttl_ms: i64,
    /// The expiry in Unix seconds, rounded up: the index score.
    expires_unix: i64,
}

impl Step {
    fn new(json: String, rec: &BlockRecord, now: Timestamp) -> Step {
        let expires = rec.expires_at.as_millis();
        Step {
            json,
            ttl_ms: expires.saturating_sub(now.as_millis()),
            expires_unix: expires.div_euclid(1000) + i64::from(expires.rem_euclid(1000) != 0),
        }
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

    #[test]
    fn offense_is_the_last_field_of_the_record() {
        let at = Timestamp::from_secs(1_800_000_000);
        let rec = BlockRecord {
            ip: "203.0.113.7".into(),
            rule: "sshd".into(),
            count: 50,
            window_secs: 60,
            first_seen: at,
            last_seen: at,
            blocked_at: at,
            expires_at: at,
            host: "web-1".into(),
            reason: "offense\":0}".into(),
            block_for_secs: 900,
            offense: 0,
            shadow: false,
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.ends_with(&format!("{OFFENSE_FIELD}0}}")), "{json}");
    }

    #[tokio::test]
    async fn invalid_url_is_reported_without_password() {
        let err = Blocklist::connect("redis://:hunter2@", "t:")
            .await
            .expect_err("must fail");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
