//! Rule files as written: serde structs with spans, before validation.
//!
//! Every field that can be wrong is `Spanned`, so that validation in
//! [`super::compile`] can name the line it came from.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuleFile {
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub sources: Option<Spanned<Vec<String>>>,
    pub threshold: Option<Spanned<i64>>,
    pub window: Option<Spanned<String>>,
    pub block_for: Option<Spanned<String>>,
    /// Block durations for an address's 1st, 2nd, … offence.
    pub escalate: Option<Spanned<Vec<Spanned<String>>>>,
    /// IPv6 failures also count per network of this prefix length (1..=128).
    pub ipv6_prefix: Option<Spanned<i64>>,
    pub format: Option<Spanned<String>>,
    /// "enforce" (default) or "shadow": count and alert, never block.
    pub mode: Option<Spanned<String>>,
    /// syslog: the program names whose lines the rule reads.
    pub programs: Option<Spanned<Vec<String>>>,
    /// syslog: what makes lines one session ("pid").
    pub session: Option<Spanned<String>>,
    #[serde(default)]
    pub pattern: Vec<Spanned<RawPattern>>,
    /// json: the field, or candidate fields in order, holding the client IP.
    pub ip: Option<Spanned<toml::Value>>,
    /// json: the field, or candidate fields in order, holding the time.
    pub time: Option<Spanned<toml::Value>>,
    /// json: the field, or candidate fields in order, holding the logged
    /// `X-Forwarded-For` chain (then `ip` names the peer's field).
    pub xff: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub when: Vec<Spanned<RawPredicate>>,
    #[serde(default)]
    pub example: Vec<Spanned<RawExample>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPattern {
    pub regex: Spanned<String>,
    pub tally: Option<Spanned<String>>,
    /// Overrides the prefilter literals derived from the regex.
    pub literals: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPredicate {
    /// A dotted path, a list of candidate paths, or "*" for any string.
    pub field: Spanned<toml::Value>,
    pub equals: Option<Spanned<String>>,
    pub contains: Option<Spanned<toml::Value>>,
    pub one_of: Option<Spanned<Vec<String>>>,
    pub regex: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExample {
    pub line: Spanned<String>,
    /// The IP the line must yield.
    pub ip: Option<Spanned<String>>,
    /// `false`: the line must not match this rule.
    pub matches: Option<Spanned<bool>>,
    /// The event time the line must yield, RFC 3339.
    pub time: Option<Spanned<String>>,
    /// The failures the line stands for (rsyslog's "message repeated").
    pub weight: Option<Spanned<i64>>,
    /// The proxies trusted while this example runs (none by default).
    pub trusted_proxies: Option<Spanned<Vec<String>>>,
}
