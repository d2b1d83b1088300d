//! [`Hit`]: what a rule makes of a matching line, and the detector's input.

use std::net::IpAddr;

use crate::time::Timestamp;

/// The index of a rule in its [`RuleSet`](super::RuleSet); the detector
/// keys its windows by it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleIdx(pub u16);

/// How a hit counts among the other lines of the same session (for sshd:
/// the same connection, i.e. host and pid), so that one failed attempt
/// that writes several lines counts once.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Tally {
    /// Counts its weight, unless an earlier [`Tally::Announce`] line of the
    /// session left a credit, which it then uses up instead.
    #[default]
    Each,
    /// Counts its weight and leaves one credit: the next `Each` line of the
    /// session is the same attempt. sshd's `Invalid user X` is followed by
    /// `Failed password for invalid user X` when the probe goes on.
    Announce,
    /// Counts only if nothing in the session has counted yet. sshd's
    /// `Connection closed by authenticating user … [preauth]` is the only
    /// trace of a rejected public key at LogLevel INFO.
    IfFirst,
    /// Not a failure but a success from this address (sshd's `Accepted
    /// password for …`): it forgets the failures the address has in this
    /// rule's window, counts nothing and never blocks. It leaves alone
    /// what it is not evidence about: the window of the address's IPv6
    /// network (one address logging in does not vouch for the rest of its
    /// /64, where an attacker may be rotating), the other rules' windows,
    /// a block that already stands, and the session's own tally.
    Reset,
}

/// One matched failure: which rule, which client, when, how much.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub rule: RuleIdx,
    /// The client address, already normalised (IPv4-mapped IPv6 is IPv4).
    pub ip: IpAddr,
    /// The line's own timestamp; `None` when it has none, and the engine
    /// then uses the time the line was read.
    pub time: Option<Timestamp>,
    /// How many failures the line stands for: 1, or N for rsyslog's
    /// `message repeated N times: [ … ]`.
    pub weight: u32,
    /// A hash of what identifies the session (e.g. host and pid), if the
    /// rule correlates lines.
    pub session: Option<u64>,
    pub tally: Tally,
}

#[cfg(test)]
mod tests {
    //! `tally = "reset"` and `ipv6_prefix` from the rule file through the
    //! engine: what an operator writes and what then counts.

    use std::path::PathBuf;
    use std::sync::Arc;

    use crate::detector::Decision;
    use crate::engine::Engine;
    use crate::ip::Allowlist;
    use crate::rules::RuleSet;
    use crate::time::Timestamp;

    const RULE: &str = r#"
[[rule]]
id = "sshd"
threshold = 3
window = "60s"
ipv6_prefix = 48
format = "plain"
  [[rule.pattern]]
  regex = '^Failed password for \S+ from (?P<ip>\S+)$'
  [[rule.pattern]]
  regex = '^Accepted password for \S+ from (?P<ip>\S+)$'
  tally = "reset"
"#;

    fn compile(text: &str) -> Result<RuleSet, String> {
        RuleSet::from_files(&[(
            PathBuf::from("/etc/authwatch/rules/t.toml"),
            text.to_owned(),
        )])
        .map_err(|e| e.to_string())
    }

    #[test]
    fn reset_and_ipv6_prefix_compile_into_the_policy() {
        let set = compile(RULE).unwrap();
        assert_eq!(set.policies()[0].ipv6_prefix, 48);
        let set = compile(&RULE.replace("ipv6_prefix = 48\n", "")).unwrap();
        assert_eq!(set.policies()[0].ipv6_prefix, 64, "the default");
        for bad in ["0", "129", "-1", "1000"] {
            let e = compile(&RULE.replace("= 48", &format!("= {bad}"))).unwrap_err();
            assert!(
                e.contains("t.toml:6: rule \"sshd\": ipv6_prefix: must be between 1 and 128"),
                "{e}"
            );
        }
        let e = compile(&RULE.replace("\"reset\"", "\"success\"")).unwrap_err();
        assert!(
            e.contains(r#""success" is not one of "each", "announce", "if_first", "reset""#),
            "{e}"
        );
    }

    #[test]
    fn a_success_resets_its_address_and_is_no_match() {
        let set = Arc::new(compile(RULE).unwrap());
        let filters = vec![set.filter_all()];
        let mut engine = Engine::new(set, filters, Allowlist::loopback(), 65_536);
        let t = Timestamp::from_millis(1_700_000_000_000);
        let mut feed = |lines: &[&str]| {
            let mut decisions: Vec<Decision> = Vec::new();
            for line in lines {
                engine.line(0, line.as_bytes(), t, &mut |d| decisions.push(d));
            }
            let subjects: Vec<String> = decisions.iter().map(|d| d.subject.to_string()).collect();
            (subjects, engine.stats().clone())
        };
        let fail = "Failed password for root from 203.0.113.7";
        let (got, _) = feed(&[fail, fail, "Accepted password for alice from 203.0.113.7"]);
        assert_eq!(got, Vec::<String>::new());
        let (got, _) = feed(&[fail, fail]);
        assert_eq!(got, Vec::<String>::new(), "two since the success");
        let (got, stats) = feed(&[fail]);
        assert_eq!(got, ["203.0.113.7"]);
        assert_eq!((stats.matched[0], stats.decisions), (5, 1), "five failures");
        // An allowlisted success is no allowlisted match either.
        let (_, stats) = feed(&["Accepted password for root from 127.0.0.1"]);
        assert_eq!((stats.matched[0], stats.allowlisted), (5, 0));
        // IPv6: one address's success leaves its /48 counting.
        let (got, _) = feed(&[
            "Failed password for root from 2001:db8:1:2::1",
            "Failed password for root from 2001:db8:1:3::1",
            "Accepted password for root from 2001:db8:1:2::1",
            "Failed password for root from 2001:db8:1:4::1",
        ]);
        assert_eq!(got, ["2001:db8:1::/48"]);
    }
}
