//! The injection corpus: for every shipped rule, a log in that rule's
//! format in which a victim's address is planted wherever a client can
//! write (`tests/data/injection/<rule>.log`; each case is listed, with the
//! reason it is there, in `tests/data/injection/README.md`).
//!
//! Each file is replayed through the shipped rules at threshold 1, so a
//! single hit is a block. Two things must hold:
//!
//! * no decision names a victim (10.66.0.0/16, fd66::/16) or a form of one
//!   (IPv4-mapped, the octal reading of `010.066.066.066`, the link-local
//!   address of a zone-id form);
//! * the decided addresses are exactly the attackers that the file expects
//!   to be counted, so the test cannot pass by matching nothing, and an
//!   address that only appears in client text (an `X-Forwarded-For` list,
//!   a line cut before its real address) is never decided.
//!
//! `http-401-proxied.log` is replayed behind trusted proxies (192.0.2.0/24
//! and fc00::/16, as a configuration file says them): there the client is
//! the right-most untrusted `X-Forwarded-For` entry, and every other place
//! in the list is the client's to write.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use authwatch::config::Config;
use authwatch::replay::{self, ReplayOptions};
use authwatch::rules::RuleSet;
use ipnet::IpNet;

/// The daemon's default `max_line_bytes`; the corpus's long lines are
/// built around it.
const MAX_LINE_BYTES: usize = 65_536;

/// One decision as `replay --json` prints it (the fields this test reads).
#[derive(serde::Deserialize, Debug)]
struct Decision {
    ip: String,
    rule: String,
    count: u32,
}

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn corpus(rule: &str) -> PathBuf {
    manifest_path(&format!("tests/data/injection/{rule}.log"))
}

/// Replays `file` through the shipped rules with every threshold at 1, no
/// allowlist, no trusted proxy, JSON output; returns the decisions.
fn replay_at_threshold_one(file: &Path) -> Vec<Decision> {
    replay_behind(file, "allowlist = []")
}

/// The same, with the allowlist and trusted proxies of the configuration
/// `config` (TOML), as `authwatch replay --config` takes them.
fn replay_behind(file: &Path, config: &str) -> Vec<Decision> {
    let config = Config::parse(Path::new("/etc/authwatch/authwatch.toml"), config)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rules = RuleSet::load_dir(&manifest_path("rules"))
        .unwrap_or_else(|e| panic!("shipped rules must load:\n{e}"));
    rules.override_all(Some(1), None);
    rules.trust_proxies(config.trusted_proxies.clone(), config.proxies_by_source());
    let opts = ReplayOptions {
        inputs: vec![file.to_owned()],
        json: true,
        max_line_bytes: MAX_LINE_BYTES,
        source: None,
    };
    let mut out = Vec::new();
    replay::run(Arc::new(rules), config.allowlist, &opts, &mut out)
        .unwrap_or_else(|e| panic!("replay of {}: {e}", file.display()));
    String::from_utf8(out)
        .expect("replay output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// What a decision blocks, from its `ip` field: an address, or (for rules
/// that also count IPv6 clients per network) a network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Subject {
    Addr(IpAddr),
    Net(IpNet),
}

/// Reads a decision's subject; `None` unless it is in canonical form
/// (`203.0.113.7`, `2001:db8::7`, `2001:db8::/64`), never a mapped,
/// zero-padded or zoned form.
fn subject(printed: &str) -> Option<Subject> {
    let parsed = if printed.contains('/') {
        let net: IpNet = printed.parse().ok()?;
        (net == net.trunc()).then_some(Subject::Net(net))?
    } else {
        let addr: IpAddr = printed.parse().ok()?;
        if matches!(addr, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()) {
            return None;
        }
        Subject::Addr(addr)
    };
    let canonical = match parsed {
        Subject::Addr(a) => a.to_string(),
        Subject::Net(n) => n.to_string(),
    };
    (canonical == printed).then_some(parsed)
}

/// Why a decision's subject (as printed) names a victim, if it does.
fn victim_reason(printed: &str) -> Option<&'static str> {
    let Some(subject) = subject(printed) else {
        return Some("not an address or network in canonical form");
    };
    let net = |s: &str| s.parse::<IpNet>().expect("literal CIDR");
    let victims = [
        (net("10.66.0.0/16"), "the IPv4 victim range"),
        (net("::ffff:10.66.0.0/112"), "the IPv4 victim range, mapped"),
        (
            net("::10.66.0.0/112"),
            "the IPv4 victim range, IPv4-compatible",
        ),
        (net("fd66::/16"), "the IPv6 victim range"),
        // `fe80::66%eth0` with its zone id dropped.
        (net("fe80::/10"), "link-local: a zone-id form"),
        // `010.066.066.066` as C's inet_aton reads it: octal.
        (net("8.54.54.54/32"), "the octal reading of 010.066.066.066"),
    ];
    victims
        .iter()
        .find(|(v, _)| match subject {
            Subject::Addr(a) => v.contains(&a),
            // A network blocks a victim if it holds one, or lies within
            // a victim range.
            Subject::Net(n) => v.contains(&n) || n.contains(v),
        })
        .map(|(_, why)| *why)
}

/// Replays the corpus of `rule` and checks it against `expected`, the
/// attacker addresses that must be decided.
fn check_corpus(rule: &str, expected: &[&str]) {
    check_corpus_behind(rule, rule, "allowlist = []", expected);
}

/// Replays corpus `name` (of rule `rule`) with configuration `config` and
/// checks it against `expected`.
fn check_corpus_behind(name: &str, rule: &str, config: &str, expected: &[&str]) {
    let file = corpus(name);
    let decisions = replay_behind(&file, config);
    let victims: Vec<String> = decisions
        .iter()
        .filter_map(|d| victim_reason(&d.ip).map(|why| format!("{} ({why})", d.ip)))
        .collect();
    assert!(
        victims.is_empty(),
        "{}: victims blocked: {victims:?}",
        file.display()
    );
    for d in &decisions {
        assert_eq!(
            d.rule,
            rule,
            "{}: decision by another rule: {d:?}",
            file.display()
        );
        // At threshold 1 the first hit decides; `message repeated N times`
        // is N failures at once.
        assert!(d.count >= 1, "{d:?}");
    }
    let expected: BTreeSet<IpAddr> = expected.iter().map(|a| a.parse().unwrap()).collect();
    let mut decided = BTreeSet::new();
    for d in &decisions {
        match subject(&d.ip).expect("checked above") {
            Subject::Addr(a) => assert!(decided.insert(a), "{a} was decided twice"),
            // A network decision must come from an attacker's failures.
            Subject::Net(n) => assert!(
                expected.iter().any(|a| n.contains(a)),
                "{}: network {n} holds no attacker",
                file.display()
            ),
        }
    }
    let missing: Vec<_> = expected.difference(&decided).collect();
    let unexpected: Vec<_> = decided.difference(&expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{}: attackers not counted: {missing:?}; addresses decided that should not be: {unexpected:?}",
        file.display()
    );
}

#[test]
fn sshd_corpus_blocks_only_the_attackers() {
    check_corpus(
        "sshd",
        &[
            "203.0.113.1",
            "203.0.113.2",
            "203.0.113.3",
            "203.0.113.4",
            "203.0.113.5",
            "203.0.113.6",
            "203.0.113.7",
            "203.0.113.8",
            "203.0.113.9",
            "203.0.113.10",
            "2001:db8::11",
            "2001:db8::12",
            "203.0.113.13",
            "203.0.113.14",
            "203.0.113.15",
            "203.0.113.16",
            "203.0.113.17",
            "203.0.113.18",
            "203.0.113.19",
            "203.0.113.20",
            "203.0.113.21",
            "203.0.113.22",
            // 23-31: other programs; no attacker.
            "203.0.113.32",
            // 33: zone id in the address slot; not an address.
            "203.0.113.34",
            "203.0.113.35",
            "203.0.113.36",
            // 37: leading zeros in the address slot.
            "203.0.113.38",
            // 39: host name in the address slot.
            "203.0.113.40",
            // 41: address with a port in the address slot.
            "203.0.113.42",
            "203.0.113.43",
            // 44-47: client text in lines that are not failures.
            "2001:db8::48",
            "2001:db8::49",
            "203.0.113.50",
            // 51: cut at max_line_bytes before its real address.
            "203.0.113.52",
        ],
    );
}

#[test]
fn jwt_corpus_blocks_only_the_attackers() {
    check_corpus(
        "jwt-signature",
        &[
            "203.0.113.101",
            "203.0.113.102",
            // 103-105: the IP field twice.
            "203.0.113.106",
            // 107: nested only.
            "203.0.113.108",
            "203.0.113.109",
            "203.0.113.110",
            // 111-113: cut or two objects on a line.
            // 114: an X-Forwarded-For list in the IP field.
            "203.0.113.115",
            // 116-121: victim forms in the IP field.
            "203.0.113.122",
            "203.0.113.123",
            "203.0.113.124",
            "2001:db8::125",
            // 126: the time field twice.
            "203.0.113.127",
            // 128: cut at max_line_bytes.
            "203.0.113.129",
            "203.0.113.130",
            // 131: a raw CR and ESC inside a string: not JSON.
            // 132: the IP field's parent object twice.
        ],
    );
}

#[test]
fn http_corpus_blocks_only_the_attackers() {
    check_corpus(
        "http-401",
        &[
            "203.0.113.201",
            "203.0.113.202",
            "203.0.113.203",
            "203.0.113.204",
            "203.0.113.205",
            "2001:db8::206",
            "203.0.113.207",
            "203.0.113.208",
            "203.0.113.209",
            "203.0.113.210",
            "203.0.113.211",
            "203.0.113.212",
            "2001:db8::213",
            "203.0.113.214",
            "203.0.113.215",
            "203.0.113.216",
            // 217-221: victim forms in the address field.
            "203.0.113.222",
            "203.0.113.223",
            // 224: a 200; 225: cut at max_line_bytes.
            "203.0.113.226",
        ],
    );
}

/// The proxies of the proxied corpus: none of them a victim or an attacker.
const PROXIES: &str = "allowlist = []\ntrusted_proxies = [\"192.0.2.0/24\", \"fc00::/16\"]\n";

#[test]
fn http_corpus_behind_trusted_proxies_blocks_only_the_attackers() {
    check_corpus_behind(
        "http-401-proxied",
        "http-401",
        PROXIES,
        &[
            "203.0.113.151",
            // 152-153: an untrusted peer's forged list: the peer counts.
            "203.0.113.152",
            "203.0.113.153",
            // 154-157: the right-most untrusted entry is not an address,
            // or more than 32 trusted hops.
            "203.0.113.158",
            "2001:db8::159",
            // 160: a zone id at the right.
            "203.0.113.161",
            "203.0.113.162",
            "203.0.113.163",
            "203.0.113.164",
            "203.0.113.165",
            // 166-167: no list, every hop trusted: the proxy, allowlisted.
            "203.0.113.168",
            // 169: two extra fields; 171: uvicorn: the proxy, allowlisted.
            "203.0.113.170",
            "203.0.113.172",
            "203.0.113.173",
            "203.0.113.174",
            "2001:db8::175",
            "203.0.113.176",
            // 177-180: 32 trusted hops, and victim forms at the right.
            "203.0.113.181",
            "2001:db8::182",
        ],
    );
}

/// With no proxy trusted (the default), the same lines count their peers:
/// the proxies (no allowlist here) and the attackers that talk directly,
/// never an address from a list. (`fc00::5` is alone in its /64, so the
/// address is blocked, not the /64.)
#[test]
fn http_corpus_with_no_proxy_trusted_counts_only_peers() {
    let decided: BTreeSet<String> = replay_at_threshold_one(&corpus("http-401-proxied"))
        .into_iter()
        .map(|d| d.ip)
        .collect();
    let expected: BTreeSet<String> = [
        "192.0.2.5",
        "fc00::5",
        "203.0.113.152",
        "203.0.113.153",
        "203.0.113.181",
    ]
    .map(String::from)
    .into();
    assert_eq!(decided, expected);
}

/// The corpus must keep its shape: a victim in every file, bare CRs and
/// escapes where the README says, and for each rule one line cut at
/// `max_line_bytes` right after a planted victim plus one line a byte
/// under the cap (which must still count).
#[test]
fn corpus_files_hold_the_cases_they_claim() {
    for rule in ["sshd", "jwt-signature", "http-401"] {
        let file = corpus(rule);
        let data = std::fs::read(&file).unwrap();
        let lines: Vec<&[u8]> = data
            .strip_suffix(b"\n")
            .unwrap()
            .split(|&b| b == b'\n')
            .collect();
        let has = |needle: &[u8]| {
            lines
                .iter()
                .any(|l| l.windows(needle.len()).any(|w| w == needle))
        };
        assert!(has(b"10.66.66.66"), "{rule}: no IPv4 victim");
        assert!(has(b"fd66::66"), "{rule}: no IPv6 victim");
        assert!(
            lines
                .iter()
                .any(|l| l.len() < MAX_LINE_BYTES && l[..l.len() - 1].contains(&b'\r')),
            "{rule}: no bare CR inside a line"
        );
        let cut: Vec<_> = lines.iter().filter(|l| l.len() > MAX_LINE_BYTES).collect();
        assert_eq!(cut.len(), 1, "{rule}: one over-long line");
        let head = &cut[0][..MAX_LINE_BYTES];
        let victim_at_cut = head.ends_with(b"10.66.66.66 port 22 ssh2")
            || head.ends_with(b"\\\"10.66.66.66\\\"}")
            || head.ends_with(b"\\x22GET / HTTP/1.1\\x22 401 45");
        assert!(
            victim_at_cut,
            "{rule}: the cut falls right after the planted victim"
        );
        assert!(
            lines.iter().any(|l| l.len() == MAX_LINE_BYTES - 1),
            "{rule}: one line a byte under the cap"
        );
    }
}

/// The victim check itself: a line in which the victim really is the
/// client is decided, and the check recognises it.
#[test]
fn victim_check_recognises_a_counted_victim() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "Mar  5 06:25:01 web1 sshd[1]: Failed password for root from ::ffff:10.66.66.66 port 22 ssh2\n\
         Mar  5 06:25:02 web1 sshd[2]: Failed password for root from fd66::66 port 22 ssh2\n",
    )
    .unwrap();
    let decided: Vec<String> = replay_at_threshold_one(&log)
        .into_iter()
        .map(|d| d.ip)
        .collect();
    // The two addresses, and the IPv6 one's network where the rules also
    // count per network.
    assert_eq!(decided[..2], ["10.66.66.66", "fd66::66"], "{decided:?}");
    assert!(
        decided[2..].iter().all(|s| s.starts_with("fd66::/")),
        "{decided:?}"
    );
    assert!(decided.iter().all(|ip| victim_reason(ip).is_some()));
    for form in [
        "::ffff:10.66.66.66",
        "::ffff:a42:4242",
        "8.54.54.54",
        "fe80::66",
        "010.066.066.066",
    ] {
        assert!(victim_reason(form).is_some(), "{form}");
    }
    for net in ["fd66::/64", "10.66.0.0/24", "::/0", "10.66.66.66/33"] {
        assert!(victim_reason(net).is_some(), "{net}");
    }
    for attacker in ["203.0.113.1", "2001:db8::11", "2001:db8::/64"] {
        assert_eq!(victim_reason(attacker), None, "{attacker}");
    }
}

/// `replay --rules … --trust-proxy …` (no configuration file) decides what
/// a configuration with the same `trusted_proxies` does.
#[test]
fn replay_on_the_command_line_trusts_the_proxies_it_is_given() {
    let file = corpus("http-401-proxied");
    let ips = |decisions: Vec<Decision>| -> BTreeSet<String> {
        decisions.into_iter().map(|d| d.ip).collect()
    };
    let run = |extra: &[&str]| -> BTreeSet<String> {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_authwatch"))
            .args(["replay", "--threshold", "1", "--json", "--rules"])
            .arg(manifest_path("rules"))
            .args(extra)
            .arg(&file)
            .env("TZ", "UTC")
            .output()
            .expect("run authwatch replay");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<Decision>(l)
                    .unwrap_or_else(|e| panic!("{e}: {l}"))
                    .ip
            })
            .collect()
    };
    let trusting = run(&[
        "--trust-proxy",
        "192.0.2.0/24",
        "--trust-proxy",
        "fc00::/16",
    ]);
    assert_eq!(trusting, ips(replay_behind(&file, PROXIES)));
    assert_eq!(run(&[]), ips(replay_at_threshold_one(&file)));
    assert_ne!(
        trusting,
        run(&[]),
        "trusting the proxies changes who is counted"
    );
}
