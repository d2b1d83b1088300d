//! The shipped rules (`rules/*.toml`, loaded once) on any bytes as a log
//! line: prefilter, syslog header, regexes, the JSON matcher and IP
//! extraction must never panic, whatever the line holds.
//!
//! One property is checked as well: a text rule only yields an address
//! that is written in the line, as one run of address characters (or the
//! head of one, before a `:port`) that `ip::parse_client_ip` reads as that
//! address — `::ffff:1986:13` is 25.134.0.19. No host name, no arithmetic,
//! no pieces glued together. JSON rules are exempt, since `\u0031`
//! escapes may spell an address.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use authwatch::ip::parse_client_ip;
use authwatch::proxy::TrustedProxies;
use authwatch::rules::{RuleFilter, RuleSet};
use authwatch::time::Timestamp;
use libfuzzer_sys::fuzz_target;

/// 2025-11-24T16:00:00Z: a fixed reference, so a crash reproduces.
const REFERENCE: Timestamp = Timestamp::from_secs(1_764_000_000);

fn shipped() -> &'static (RuleSet, RuleFilter) {
    static RULES: OnceLock<(RuleSet, RuleFilter)> = OnceLock::new();
    RULES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules");
        let mut set = RuleSet::load_dir(dir.as_ref()).expect("the shipped rules compile");
        // Trusted proxies, so that lines from them take the
        // X-Forwarded-For path, whose client must be written in the line
        // too.
        set.trust_proxies(
            TrustedProxies::new(vec![
                "10.0.0.0/8".parse().expect("literal CIDR"),
                "fd00::/8".parse().expect("literal CIDR"),
            ]),
            Vec::new(),
        );
        let filter = set.filter_all();
        (set, filter)
    })
}

fuzz_target!(|line: &[u8]| {
    let (set, filter) = shipped();
    // A fresh state per input: the syslog clock caches, and a crash must
    // not depend on the inputs before it.
    let mut state = set.new_state(REFERENCE);
    set.match_line(&mut state, filter, line, &mut |hit| {
        let rule = set.get(hit.rule).expect("a hit names a rule of the set");
        if !rule.is_json() {
            assert!(
                written_in(line, hit.ip),
                "rule {} yielded {}, which is not written in the line",
                rule.id,
                hit.ip
            );
        }
    });
});

/// Whether a run of address characters in `line`, or its head up to a
/// `:`, reads as `ip`.
fn written_in(line: &[u8], ip: IpAddr) -> bool {
    let is_addr_byte = |b: &u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.');
    line.split(|b| !is_addr_byte(b)).any(|run| {
        let heads = run
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b':')
            .map(|(i, _)| &run[..i])
            .chain(std::iter::once(run));
        heads
            .into_iter()
            .any(|head| parse_client_ip(head) == Some(ip))
    })
}
