//! What counts as a client address, and the allowlist.
//!
//! A captured field becomes an address only if it is exactly one textual
//! IP address. Hostnames, zone ids (`fe80::1%eth0`), ports, brackets and
//! dotted quads with leading zeros (`010.000.000.001`, which C's
//! `inet_aton` reads as octal) are refused: an ambiguous value must never
//! be turned into somebody's address.

use std::net::IpAddr;

use ipnet::IpNet;

/// Parses a captured value as a client address, normalising an
/// IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, as Node writes `req.ip`) to
/// IPv4 so that one client has one key.
pub fn parse_client_ip(text: &[u8]) -> Option<IpAddr> {
    // The longest textual IPv6 address with an embedded IPv4 is 45 bytes.
    if text.is_empty() || text.len() > 45 {
        return None;
    }
    let s = std::str::from_utf8(text).ok()?;
    // std's parser already refuses leading zeros in IPv4 octets, zone ids,
    // brackets and ports; the checks above keep allocations out.
    let ip: IpAddr = s.parse().ok()?;
    Some(normalize(ip))
}

/// Like [`parse_client_ip`], but also reads the `host:port` forms that a
/// service writes when it logs its peer's socket address as is (Go's
/// `r.RemoteAddr`): `203.0.113.7:51234` and `[2001:db8::1]:51234`. Both
/// are unambiguous; a bare IPv6 address is never split at a colon.
pub fn parse_client_ip_or_socket(text: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = parse_client_ip(text) {
        return Some(ip);
    }
    let (host, port) = if let Some(rest) = text.strip_prefix(b"[") {
        let close = memchr::memchr(b']', rest)?;
        let port = rest[close + 1..].strip_prefix(b":")?;
        (&rest[..close], port)
    } else {
        let colon = memchr::memchr(b':', text)?;
        // One colon only: `a:b:c` is IPv6 or nothing.
        if memchr::memchr(b':', &text[colon + 1..]).is_some() {
            return None;
        }
        let host = &text[..colon];
        if !host.contains(&b'.') {
            return None;
        }
        (host, &text[colon + 1..])
    };
    if port.is_empty() || port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return None;
    }
    parse_client_ip(host)
}

/// The canonical form of an address: IPv4-mapped IPv6 becomes IPv4.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Networks whose failures are never blocked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    nets: Vec<IpNet>,
}

impl Allowlist {
    pub fn new(nets: Vec<IpNet>) -> Allowlist {
        let mut nets: Vec<IpNet> = nets.into_iter().map(|n| n.trunc()).collect();
        nets = IpNet::aggregate(&nets);
        Allowlist { nets }
    }

    /// Loopback only: what an operator gets without saying otherwise.
    pub fn loopback() -> Allowlist {
        Allowlist::new(vec![
            "127.0.0.0/8".parse().expect("literal CIDR"),
            "::1/128".parse().expect("literal CIDR"),
        ])
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        // A handful of networks in practice: a linear scan beats anything
        // cleverer, and it runs only for lines that matched a rule.
        self.nets.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<String> {
        parse_client_ip(s.as_bytes()).map(|a| a.to_string())
    }

    #[test]
    fn accepts_plain_addresses() {
        assert_eq!(ip("203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(ip("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("2001:DB8::1").as_deref(), Some("2001:db8::1"));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        assert_eq!(ip("::ffff:203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(ip("::ffff:cb00:7107").as_deref(), Some("203.0.113.7"));
    }

    #[test]
    fn refuses_ambiguous_values() {
        for bad in [
            "010.000.000.001",
            "10.0.0.01",
            "fe80::1%eth0",
            "[2001:db8::1]",
            "203.0.113.7:22",
            "host.example.com",
            "1.2.3",
            "0x7f.0.0.1",
            "1.2.3.4 ",
            " 1.2.3.4",
            "",
            "1.2.3.4\r",
        ] {
            assert_eq!(ip(bad), None, "{bad:?} must be refused");
        }
        assert_eq!(parse_client_ip(b"\xff\xfe1.2.3.4"), None);
    }

    #[test]
    fn socket_forms_are_read_without_their_port() {
        let sock = |s: &str| parse_client_ip_or_socket(s.as_bytes()).map(|a| a.to_string());
        assert_eq!(sock("203.0.113.7:51234").as_deref(), Some("203.0.113.7"));
        assert_eq!(sock("[2001:db8::1]:51234").as_deref(), Some("2001:db8::1"));
        assert_eq!(
            sock("[::ffff:203.0.113.7]:1").as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(sock("2001:db8::1").as_deref(), Some("2001:db8::1"));
        for bad in [
            "203.0.113.7:",
            "203.0.113.7:123456",
            "[2001:db8::1]",
            "[2001:db8::1]:x",
            "host:80",
            "1.2.3.4:80:80",
            "[fe80::1%eth0]:22",
        ] {
            assert_eq!(sock(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn allowlist_matches_networks_and_mapped_forms() {
        let a = Allowlist::loopback();
        assert!(a.contains(&"127.0.0.1".parse().unwrap()));
        assert!(a.contains(&"127.255.0.9".parse().unwrap()));
        assert!(a.contains(&"::1".parse().unwrap()));
        assert!(!a.contains(&"128.0.0.1".parse().unwrap()));
        let mapped = parse_client_ip(b"::ffff:127.0.0.1").unwrap();
        assert!(a.contains(&mapped));
        assert!(!Allowlist::default().contains(&"127.0.0.1".parse().unwrap()));
    }
}
