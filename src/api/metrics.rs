//! The metrics: every name the daemon records, and the Prometheus
//! recorder that `GET /metrics` renders.
//!
//! Record them with the `metrics` macros and these constants, so that a
//! name is written once:
//!
//! ```ignore
//! metrics::counter!(LINES_READ, "source" => name.clone()).increment(lines);
//! metrics::gauge!(QUEUE_DEPTH, "queue" => "chunks").set(rx.len() as f64);
//! metrics::histogram!(DETECTION_LATENCY).record(latency.as_secs_f64());
//! ```
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `authwatch_lines_read_total` | counter | `source` | lines read |
//! | `authwatch_bytes_read_total` | counter | `source` | bytes read |
//! | `authwatch_rule_matches_total` | counter | `rule` | failures counted (a line standing for N failures adds N) |
//! | `authwatch_lines_skipped_total` | counter | `reason` | lines a rule selected but could not count: `malformed_json`, `ambiguous_json` (the IP, time or chain field twice), `proxied_without_client` |
//! | `authwatch_unreadable_times_total` | counter | — | failures counted at their read time: their time field or capture held no time authwatch reads |
//! | `authwatch_blocks_written_total` | counter | `rule`, `outcome` | blocks written to Redis; `outcome` = `new`, `extended`, `unchanged`, `expired` (the API records `rule="manual"` itself) |
//! | `authwatch_blocks_lifted_total` | counter | — | blocks removed by hand (the API records it) |
//! | `authwatch_blocks_expired_total` | counter | — | blocks whose time ran out |
//! | `authwatch_alerts_sent_total` | counter | `kind` | alerts delivered (`webhook`, `slack`) |
//! | `authwatch_alerts_retried_total` | counter | `kind` | failed attempts that were retried |
//! | `authwatch_alerts_given_up_total` | counter | `kind` | alerts dropped after the last attempt or a full queue |
//! | `authwatch_redis_errors_total` | counter | `op` | failed Redis commands (`write`, `list`, …) |
//! | `authwatch_queue_depth` | gauge | `queue` | items waiting: `chunks`, `decisions`, `alerts_webhook`, `alerts_slack` |
//! | `authwatch_tracked_keys` | gauge | — | windows (rule and address) the detector holds |
//! | `authwatch_evictions_total` | counter | — | windows dropped before they expired, to bound memory |
//! | `authwatch_detection_latency_seconds` | histogram | — | from reading the line that crossed a threshold to its block written in Redis |
//!
//! Label values must come from the configuration and rule files (source
//! names, rule ids, alert kinds), never from log lines: an attacker must
//! not be able to mint series.

use std::sync::OnceLock;

use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const LINES_READ: &str = "authwatch_lines_read_total";
pub const BYTES_READ: &str = "authwatch_bytes_read_total";
pub const RULE_MATCHES: &str = "authwatch_rule_matches_total";
pub const LINES_SKIPPED: &str = "authwatch_lines_skipped_total";
pub const UNREADABLE_TIMES: &str = "authwatch_unreadable_times_total";
pub const BLOCKS_WRITTEN: &str = "authwatch_blocks_written_total";
pub const BLOCKS_LIFTED: &str = "authwatch_blocks_lifted_total";
pub const BLOCKS_EXPIRED: &str = "authwatch_blocks_expired_total";
pub const ALERTS_SENT: &str = "authwatch_alerts_sent_total";
pub const ALERTS_RETRIED: &str = "authwatch_alerts_retried_total";
pub const ALERTS_GIVEN_UP: &str = "authwatch_alerts_given_up_total";
pub const REDIS_ERRORS: &str = "authwatch_redis_errors_total";
pub const QUEUE_DEPTH: &str = "authwatch_queue_depth";
pub const TRACKED_KEYS: &str = "authwatch_tracked_keys";
pub const EVICTIONS: &str = "authwatch_evictions_total";
pub const DETECTION_LATENCY: &str = "authwatch_detection_latency_seconds";

/// Bucket bounds of [`DETECTION_LATENCY`], in seconds: from a millisecond
/// (the common case) to the minute a Redis outage can add.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the global Prometheus recorder, once per process, and returns
/// its handle (the same handle on every call). `None` if another recorder
/// was installed first: metrics then go there and `/metrics` answers 404.
pub fn install_metrics() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(DETECTION_LATENCY.to_owned()),
                    LATENCY_BUCKETS,
                )
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics is off");
                    None
                }
            }
        })
        .clone()
}

/// The `# HELP` lines.
fn describe() {
    describe_counter!(LINES_READ, Unit::Count, "Lines read, per source.");
    describe_counter!(BYTES_READ, Unit::Bytes, "Bytes read, per source.");
    describe_counter!(RULE_MATCHES, Unit::Count, "Failures counted, per rule.");
    describe_counter!(
        LINES_SKIPPED,
        Unit::Count,
        "Lines a rule selected but could not count, per reason."
    );
    describe_counter!(
        UNREADABLE_TIMES,
        Unit::Count,
        "Failures counted at their read time: their time field or capture was unreadable."
    );
    describe_counter!(
        BLOCKS_WRITTEN,
        Unit::Count,
        "Blocks written to Redis, per rule and outcome."
    );
    describe_counter!(BLOCKS_LIFTED, Unit::Count, "Blocks removed by hand.");
    describe_counter!(BLOCKS_EXPIRED, Unit::Count, "Blocks whose time ran out.");
    describe_counter!(ALERTS_SENT, Unit::Count, "Alerts delivered, per kind.");
    describe_counter!(
        ALERTS_RETRIED,
        Unit::Count,
        "Alert attempts that failed and were retried, per kind."
    );
    describe_counter!(
        ALERTS_GIVEN_UP,
        Unit::Count,
        "Alerts dropped after their last attempt, per kind."
    );
    describe_counter!(
        REDIS_ERRORS,
        Unit::Count,
        "Failed Redis commands, per operation."
    );
    describe_gauge!(QUEUE_DEPTH, Unit::Count, "Items waiting, per queue.");
    describe_gauge!(
        TRACKED_KEYS,
        Unit::Count,
        "Windows (rule and address) the detector holds."
    );
    describe_counter!(
        EVICTIONS,
        Unit::Count,
        "Windows dropped before they expired, to bound memory."
    );
    describe_histogram!(
        DETECTION_LATENCY,
        Unit::Seconds,
        "From reading the line that crossed a threshold to its block written in Redis."
    );
}
