//! What became of the last reload (SIGHUP), for `authwatch status`.
//!
//! A reload is checked in the signal task and, when valid, carried out by
//! the process exec'ing itself; a refused one leaves the daemon running
//! with its old rules. Either way the operator who ran `systemctl reload`
//! wants to see the outcome without reading the journal, so it is kept
//! here, process-wide as signals are, and crosses the exec in an
//! environment variable.

use std::sync::Mutex;

use serde::Serialize;

use crate::time::Timestamp;

/// The environment variable that tells a re-exec'd daemon when the reload
/// that started it was accepted (milliseconds since the epoch).
const RELOADED_AT_ENV: &str = "AUTHWATCH_RELOADED_AT_MS";

/// The outcome of the last reload, as `/v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LastReload {
    /// The new configuration and rules were valid and are running.
    Applied { at: Timestamp },
    /// They were not; the rules running before stay in place.
    Refused { at: Timestamp, error: String },
}

static LAST: Mutex<Option<LastReload>> = Mutex::new(None);

fn set(outcome: LastReload) {
    // A poisoned lock only means a panic elsewhere while it was held; the
    // value is a plain overwrite, so carry on with it.
    *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
}

/// The outcome of the last reload of this daemon, if it was ever reloaded.
pub fn last() -> Option<LastReload> {
    LAST.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Records a refused reload and its error (the rule file, line and field).
pub fn refused(error: &str) {
    set(LastReload::Refused {
        at: Timestamp::now(),
        error: error.to_owned(),
    });
}

/// Marks `command` (the exec of ourselves) as the result of an accepted
/// reload, so that the new process reports it.
pub fn mark_applied(command: &mut std::process::Command) {
    command.env(RELOADED_AT_ENV, Timestamp::now().as_millis().to_string());
}

/// At start: takes the mark [`mark_applied`] left, if this process is a
/// reload. The variable stays in the environment (removing it is unsafe
/// while other threads may read the environment); it is harmless there,
/// since only a re-exec reads it and a re-exec sets it anew.
pub fn take_applied_mark() {
    if let Some(ms) = std::env::var(RELOADED_AT_ENV)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        set(LastReload::Applied {
            at: Timestamp::from_millis(ms),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_serialises_with_its_tag() {
        let at = Timestamp::from_millis(1_800_000_000_000);
        let refused = LastReload::Refused {
            at,
            error: "rules/x.toml:3: rule \"x\": threshold: must be at least 1".into(),
        };
        let v = serde_json::to_value(&refused).unwrap();
        assert_eq!(v["outcome"], "refused");
        assert_eq!(v["at"], serde_json::to_value(at).unwrap());
        assert!(v["error"].as_str().unwrap().contains("rules/x.toml:3"));
        let v = serde_json::to_value(LastReload::Applied { at }).unwrap();
        assert_eq!(v["outcome"], "applied");
    }
}
