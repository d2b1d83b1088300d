//! Which address is the client when a request came through proxies.
//!
//! Behind nginx or a load balancer, the server logs its TCP peer — the
//! proxy — and, if asked, the request's `X-Forwarded-For` header. That
//! header is a list the *client* starts: every proxy appends the address
//! it received the request from, so only the entries appended by proxies
//! the operator runs are facts, and everything left of them is whatever
//! the client wrote. [`TrustedProxies::resolve`] reads it the one way that
//! an attacker cannot steer:
//!
//! * a peer that is not a trusted proxy is the client, whatever the header
//!   says (a client that talks to the server directly writes the whole
//!   header);
//! * otherwise the header is read from the right, skipping the entries
//!   that are trusted proxies; the first that is not is the client — the
//!   address the outermost trusted proxy saw;
//! * if that entry is not exactly one address, nothing to its left can be
//!   believed either, so the line has no client ([`Unresolved`]) and counts
//!   for nobody.
//!
//! The trusted proxies are also allowlisted by the configuration, so a
//! line whose client comes out as a trusted proxy (no header, or a request
//! that began inside the trusted network) is never blocked: blocking the
//! load balancer would block everyone behind it.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ip::{parse_client_ip, parse_client_ip_or_socket, ParseSubjectError, Subject};

/// At most this many entries of a chain are examined, from the right. A
/// real request passes a handful of proxies; a chain with more trusted
/// entries than this is not believed ([`Unresolved::TooLong`]), so an
/// attacker-written header costs a bounded amount of work.
pub const MAX_HOPS: usize = 32;

/// The networks whose proxies' `X-Forwarded-For` entries are believed.
/// Empty (the default): every header is ignored and the peer is the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// Why a proxied line has no client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// The right-most entry that is not a trusted proxy is not exactly
    /// one IP address (a host name, `unknown`, garbage, an empty entry).
    #[error("the right-most untrusted X-Forwarded-For entry is not an IP address")]
    NotAnAddress,
    /// More than [`MAX_HOPS`] trusted entries in a row.
    #[error("more than {MAX_HOPS} trusted X-Forwarded-For entries")]
    TooLong,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        let nets: Vec<IpNet> = nets.into_iter().map(|n| n.trunc()).collect();
        TrustedProxies {
            nets: IpNet::aggregate(&nets),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` (already normalised, as [`parse_client_ip`] returns
    /// it) is a trusted proxy.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        // A few networks in practice, and only lines that matched a rule
        // with a chain get here: a linear scan.
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client of a request that `peer` sent and whose `X-Forwarded-For`
    /// header was logged as `chain` (raw bytes from the line; empty or `-`
    /// when the header was absent).
    pub fn resolve(&self, peer: IpAddr, chain: &[u8]) -> Result<IpAddr, Unresolved> {
        if !self.contains(&peer) {
            return Ok(peer);
        }
        let chain = trim(chain);
        if chain.is_empty() || chain == b"-" {
            // The proxy forwarded for nobody: it is the client (and, being
            // trusted, allowlisted).
            return Ok(peer);
        }
        let mut rest = chain;
        for _ in 0..MAX_HOPS {
            let (left, entry) = match memchr::memrchr(b',', rest) {
                Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
                None => (None, rest),
            };
            let ip = parse_hop(trim(entry)).ok_or(Unresolved::NotAnAddress)?;
            if !self.contains(&ip) {
                return Ok(ip);
            }
            match left {
                Some(l) => rest = l,
                // Every hop is trusted: the request began inside the
                // trusted network, at its left-most address (what nginx's
                // `real_ip_recursive` takes too).
                None => return Ok(ip),
            }
        }
        Err(Unresolved::TooLong)
    }
}

/// One entry of a `trusted_proxies` list: a network (`10.0.0.0/8`) or one
/// address (`192.168.1.7`). Stricter than the allowlist, because trusting
/// too much lets clients name any address: a network written with host
/// bits (`10.0.0.5/8`: the /8 or only 10.0.0.5?) and a network of every
/// address (`0.0.0.0/0`, `::/0`) are refused.
pub fn parse_trusted(s: &str) -> Result<IpNet, String> {
    match s.trim().parse::<Subject>() {
        Ok(Subject::Addr(ip)) => Ok(IpNet::from(ip)),
        Ok(Subject::Net(n)) if n.prefix_len() == 0 => Err(format!(
            "{s:?} trusts every address, so any client could name any address: list your proxies"
        )),
        // Addresses are compared in their canonical form, where an
        // IPv4-mapped client is IPv4: a mapped network would never match.
        Ok(Subject::Net(IpNet::V6(n)))
            if n.prefix_len() >= 96 && n.network().to_ipv4_mapped().is_some() =>
        {
            Err(format!(
                "{s:?} is IPv4-mapped: write the IPv4 network (addresses are compared as IPv4)"
            ))
        }
        Ok(Subject::Net(n)) => Ok(n),
        Err(ParseSubjectError::HostBits) => Err(format!(
            "{s:?} has bits set after its prefix: write the network, or the one address without a prefix"
        )),
        Err(ParseSubjectError::Invalid) => {
            Err(format!("{s:?} is not an IP address or CIDR network"))
        }
    }
}

/// Optional whitespace around list entries, as HTTP writes it.
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// One entry of a chain, without the spaces around it: an address, or the
/// unambiguous socket forms some proxies append (`203.0.113.7:51234`,
/// Azure's; `[2001:db8::1]:51234`; `[2001:db8::1]`, RFC 7239's
/// bracketing). Anything else — host names, `unknown`, obfuscated
/// identifiers, an IPv6 address with a port and no brackets (read as the
/// address it also is, never split) — is not an address.
pub fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = parse_client_ip_or_socket(entry) {
        return Some(ip);
    }
    let inner = entry.strip_prefix(b"[")?.strip_suffix(b"]")?;
    // Brackets are for IPv6 only.
    if !inner.contains(&b':') {
        return None;
    }
    parse_client_ip(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_entry_and_only_a_trusted_peer_has_one() {
        use Unresolved::*;
        let t = trusted(&["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]);
        let cases: &[(&str, &str, Result<&str, Unresolved>)] = &[
            // An untrusted peer's header is the client's own text.
            ("203.0.113.7", "10.66.66.66", Ok("203.0.113.7")),
            ("203.0.113.7", "garbage, 10.0.0.1", Ok("203.0.113.7")),
            ("203.0.113.7", "-", Ok("203.0.113.7")),
            // A trusted peer forwarding for nobody is the client itself.
            ("10.0.0.5", "", Ok("10.0.0.5")),
            ("10.0.0.5", "-", Ok("10.0.0.5")),
            ("10.0.0.5", "  ", Ok("10.0.0.5")),
            // The proxy appended the client; the client wrote the rest.
            ("10.0.0.5", "203.0.113.7", Ok("203.0.113.7")),
            ("10.0.0.5", "10.66.66.66, 203.0.113.7", Ok("203.0.113.7")),
            ("10.0.0.5", "10.66.66.66,203.0.113.7", Ok("203.0.113.7")),
            ("10.0.0.5", "\t203.0.113.7 ", Ok("203.0.113.7")),
            // Hops through more trusted proxies are skipped.
            (
                "10.0.0.5",
                "10.66.66.66, 203.0.113.7, 192.168.1.7, 10.1.2.3",
                Ok("203.0.113.7"),
            ),
            // Every hop trusted: the left-most, as nginx takes it.
            ("10.0.0.5", "10.1.1.1, 192.168.1.7", Ok("10.1.1.1")),
            // Forms of addresses.
            ("10.0.0.5", "203.0.113.7:51234", Ok("203.0.113.7")),
            ("10.0.0.5", "[2001:db8::7]:443", Ok("2001:db8::7")),
            ("10.0.0.5", "[2001:db8::7]", Ok("2001:db8::7")),
            ("10.0.0.5", "::ffff:203.0.113.7", Ok("203.0.113.7")),
            (
                "10.0.0.5",
                "2001:db8::7, ::ffff:10.0.0.9",
                Ok("2001:db8::7"),
            ),
            ("fd00::5", "fd66::66, 2001:db8::7", Ok("2001:db8::7")),
            // The right-most untrusted entry is not an address: nothing
            // to its left is believed.
            ("10.0.0.5", "10.66.66.66, unknown", Err(NotAnAddress)),
            ("10.0.0.5", "10.66.66.66, host.example", Err(NotAnAddress)),
            (
                "10.0.0.5",
                "10.66.66.66, 010.066.066.066",
                Err(NotAnAddress),
            ),
            ("10.0.0.5", "10.66.66.66, fe80::66%eth0", Err(NotAnAddress)),
            // An IPv6 address is never split at a colon: this is one.
            (
                "10.0.0.5",
                "10.66.66.66, 2001:db8::7:443",
                Ok("2001:db8::7:443"),
            ),
            ("10.0.0.5", "10.66.66.66, [203.0.113.7]", Err(NotAnAddress)),
            ("10.0.0.5", "10.66.66.66, , 10.0.0.6", Err(NotAnAddress)),
            ("10.0.0.5", "10.66.66.66,", Err(NotAnAddress)),
            ("10.0.0.5", "10.66.66.66, _hidden", Err(NotAnAddress)),
            ("10.0.0.5", "\"10.66.66.66\"", Err(NotAnAddress)),
            ("10.0.0.5", "10.66.66.66 203.0.113.7", Err(NotAnAddress)),
        ];
        for (peer, chain, want) in cases {
            let got = t.resolve(ip(peer), chain.as_bytes());
            let want = want.map(ip);
            assert_eq!(got, want, "peer {peer}, chain {chain:?}");
        }
    }

    #[test]
    fn trusted_entries_are_networks_or_addresses_and_never_everything() {
        let ok = |s: &str| parse_trusted(s).map(|n| n.to_string());
        assert_eq!(ok("10.0.0.0/8"), Ok("10.0.0.0/8".into()));
        assert_eq!(ok(" 192.168.1.7 "), Ok("192.168.1.7/32".into()));
        assert_eq!(ok("fd00::/8"), Ok("fd00::/8".into()));
        assert_eq!(ok("2001:db8::5"), Ok("2001:db8::5/128".into()));
        assert_eq!(ok("::ffff:10.0.0.5"), Ok("10.0.0.5/32".into()));
        for (bad, why) in [
            ("10.0.0.5/8", "bits set after its prefix"),
            ("0.0.0.0/0", "trusts every address"),
            ("::/0", "trusts every address"),
            ("010.0.0.0/8", "not an IP address"),
            ("lb.example", "not an IP address"),
            ("10.0.0.0/33", "not an IP address"),
            ("::ffff:10.0.0.0/104", "IPv4-mapped"),
            ("", "not an IP address"),
        ] {
            let e = parse_trusted(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        let t = TrustedProxies::default();
        assert!(t.is_empty());
        for peer in ["10.0.0.5", "127.0.0.1", "::1"] {
            assert_eq!(t.resolve(ip(peer), b"203.0.113.7"), Ok(ip(peer)));
        }
    }

    #[test]
    fn chains_are_examined_at_most_max_hops_deep() {
        let t = trusted(&["10.0.0.0/8"]);
        let hops = |n: usize| vec!["10.0.0.9"; n].join(", ");
        // The victim left of exactly MAX_HOPS trusted entries is still
        // one hop too far to be examined; one fewer and it is the client.
        let too_long = format!("203.0.113.7, {}", hops(MAX_HOPS));
        assert_eq!(
            t.resolve(ip("10.0.0.5"), too_long.as_bytes()),
            Err(Unresolved::TooLong)
        );
        let fits = format!("203.0.113.7, {}", hops(MAX_HOPS - 1));
        assert_eq!(
            t.resolve(ip("10.0.0.5"), fits.as_bytes()),
            Ok(ip("203.0.113.7"))
        );
        // A long client-written left part costs nothing: the walk stops at
        // the address the proxy appended.
        let long_left = format!("{}, 203.0.113.7", vec!["10.66.66.66"; 10_000].join(", "));
        assert_eq!(
            t.resolve(ip("10.0.0.5"), long_left.as_bytes()),
            Ok(ip("203.0.113.7"))
        );
    }

    /// The walk, written the obvious way: split the whole chain, then look
    /// from the right.
    fn reference(t: &TrustedProxies, peer: IpAddr, chain: &str) -> Result<IpAddr, Unresolved> {
        let chain = chain.trim_matches([' ', '\t']);
        if !t.contains(&peer) || chain.is_empty() || chain == "-" {
            return Ok(peer);
        }
        let entries: Vec<&str> = chain.split(',').collect();
        for (examined, entry) in entries.iter().rev().enumerate() {
            if examined == MAX_HOPS {
                return Err(Unresolved::TooLong);
            }
            let ip = parse_hop(entry.trim_matches([' ', '\t']).as_bytes())
                .ok_or(Unresolved::NotAnAddress)?;
            if !t.contains(&ip) || examined + 1 == entries.len() {
                return Ok(ip);
            }
        }
        unreachable!("a split has at least one entry")
    }

    proptest::proptest! {
        #[test]
        fn the_walk_agrees_with_the_obvious_one(
            entries in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("10.0.0.9"),
                    proptest::strategy::Just(" 10.1.2.3\t"),
                    proptest::strategy::Just("[fd00::9]:443"),
                    proptest::strategy::Just("203.0.113.7"),
                    proptest::strategy::Just(" 2001:db8::7"),
                    proptest::strategy::Just("10.66.66.66:22"),
                    proptest::strategy::Just("unknown"),
                    proptest::strategy::Just(""),
                    proptest::strategy::Just("-"),
                    proptest::strategy::Just("\"x"),
                ],
                0..40,
            ),
            peer in proptest::prop_oneof![
                proptest::strategy::Just("10.0.0.5"),
                proptest::strategy::Just("198.51.100.1"),
            ],
        ) {
            let t = trusted(&["10.0.0.0/8", "fd00::/8"]);
            let chain = entries.join(",");
            let got = t.resolve(ip(peer), chain.as_bytes());
            proptest::prop_assert_eq!(got, reference(&t, ip(peer), &chain), "{:?}", chain);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_name_a_left_part() {
        let t = trusted(&["10.0.0.0/8"]);
        for chain in [
            &b"\xff\xfe, 203.0.113.7"[..],
            b",,,,",
            b"[",
            b"[]",
            b"[:]",
            b"1.2.3.4, \xff",
            b"\x00",
        ] {
            let got = t.resolve(ip("10.0.0.5"), chain);
            assert!(
                got == Ok(ip("203.0.113.7")) || got == Err(Unresolved::NotAnAddress),
                "{chain:?}: {got:?}"
            );
        }
    }
}
