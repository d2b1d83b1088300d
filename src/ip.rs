//! What counts as a client address, and the allowlist.
//!
//! A captured field becomes an address only if it is exactly one textual
//! IP address. Hostnames, zone ids (`fe80::1%eth0`), ports, brackets and
//! dotted quads with leading zeros (`010.000.000.001`, which C's
//! `inet_aton` reads as octal) are refused: an ambiguous value must never
//! be turned into somebody's address.
//!
//! A [`Subject`] is what a block is for: one address, or a network (the
//! IPv6 prefix an attacker rotates its addresses in).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv6Net};

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

/// What a block is for: one client address, or a network of them.
///
/// Text form: an address as [`IpAddr`] prints it (`203.0.113.7`,
/// `2001:db8::1`), a network as its network address, canonical and
/// compressed, and its prefix length (`2001:db8:1:2::/64`). [`FromStr`]
/// reads these back, canonically, so that one client has one text: it
/// reads an address as [`parse_client_ip`] does (an IPv4-mapped
/// `::ffff:203.0.113.7` is `203.0.113.7`) and a full-length network
/// (`203.0.113.7/32`) as its address, and it refuses a network written
/// with host bits (`2001:db8::1/64`), since which network was meant is then
/// a guess.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Addr(IpAddr),
    Net(IpNet),
}

impl Subject {
    /// The `/ipv6_prefix` network that holds `ip`, for an IPv6 address
    /// and a prefix shorter than 128; `None` for IPv4 (counted per address
    /// only) and for 128 or more ("no prefix counting").
    pub fn ipv6_network_of(ip: IpAddr, ipv6_prefix: u8) -> Option<Subject> {
        match ip {
            IpAddr::V6(v6) if ipv6_prefix < 128 => Ipv6Net::new(v6, ipv6_prefix)
                .ok()
                .map(|n| Subject::Net(IpNet::V6(n.trunc()))),
            _ => None,
        }
    }

    /// Whether `ip` is this address or in this network. An IPv4-mapped
    /// IPv6 `ip` is also tried as its IPv4 address.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let mapped = normalize(*ip);
        match self {
            Subject::Addr(a) => a == ip || *a == mapped,
            Subject::Net(n) => n.contains(ip) || n.contains(&mapped),
        }
    }
}

impl From<IpAddr> for Subject {
    fn from(ip: IpAddr) -> Subject {
        Subject::Addr(ip)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Addr(ip) => ip.fmt(f),
            // Not `IpNet`'s own Display: that prints the address as given,
            // host bits included.
            Subject::Net(n) => write!(f, "{}/{}", n.network(), n.prefix_len()),
        }
    }
}

/// Why a text is not a [`Subject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseSubjectError {
    #[error("not an IP address or network")]
    Invalid,
    #[error("the network has bits set after its prefix")]
    HostBits,
}

impl FromStr for Subject {
    type Err = ParseSubjectError;

    fn from_str(s: &str) -> Result<Subject, ParseSubjectError> {
        let Some((addr, len)) = s.split_once('/') else {
            return parse_client_ip(s.as_bytes())
                .map(Subject::Addr)
                .ok_or(ParseSubjectError::Invalid);
        };
        // Digits only, no sign and no leading zero: one spelling per length.
        if len.is_empty()
            || len.len() > 3
            || !len.bytes().all(|b| b.is_ascii_digit())
            || (len.len() > 1 && len.starts_with('0'))
        {
            return Err(ParseSubjectError::Invalid);
        }
        let len: u8 = len.parse().map_err(|_| ParseSubjectError::Invalid)?;
        if addr.len() > 45 {
            return Err(ParseSubjectError::Invalid);
        }
        // Not normalised: `::ffff:0:0/96` is an IPv6 network.
        let addr: IpAddr = addr.parse().map_err(|_| ParseSubjectError::Invalid)?;
        let net = IpNet::new(addr, len).map_err(|_| ParseSubjectError::Invalid)?;
        if net.trunc() != net {
            return Err(ParseSubjectError::HostBits);
        }
        if len == net.max_prefix_len() {
            return Ok(Subject::Addr(normalize(addr)));
        }
        Ok(Subject::Net(net))
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
    fn subjects_print_canonically_and_read_back() {
        let net = Subject::ipv6_network_of("2001:DB8:1:2:aa::7".parse().unwrap(), 64).unwrap();
        assert_eq!(net.to_string(), "2001:db8:1:2::/64");
        let addr = Subject::Addr("203.0.113.7".parse().unwrap());
        assert_eq!(addr.to_string(), "203.0.113.7");
        for s in [
            "203.0.113.7",
            "2001:db8::1",
            "2001:db8:1:2::/64",
            "2001:db8::/32",
            "::/0",
            "198.51.100.0/24",
        ] {
            let subject: Subject = s.parse().unwrap();
            assert_eq!(subject.to_string(), s);
        }
        assert_eq!(net, "2001:db8:1:2::/64".parse().unwrap());
        assert_eq!(
            "::ffff:203.0.113.7"
                .parse::<Subject>()
                .map(|s| s.to_string()),
            Ok("203.0.113.7".into())
        );
        // Canonical output whatever the input spelling.
        for (written, canonical) in [
            ("2001:db8::1/128", "2001:db8::1"),
            ("203.0.113.7/32", "203.0.113.7"),
            ("::ffff:203.0.113.7/128", "203.0.113.7"),
            ("::ffff:0:0/96", "::ffff:0.0.0.0/96"),
        ] {
            assert_eq!(
                written.parse::<Subject>().map(|s| s.to_string()),
                Ok(canonical.into()),
                "{written}"
            );
        }
        assert_eq!(
            "2001:0db8:0001:0002:0:0:0:0/64"
                .parse::<Subject>()
                .map(|s| s.to_string()),
            Ok("2001:db8:1:2::/64".into())
        );
    }

    #[test]
    fn subjects_refuse_ambiguous_text() {
        use ParseSubjectError::*;
        for (bad, why) in [
            ("2001:db8::1/64", HostBits),
            ("203.0.113.7/24", HostBits),
            ("2001:db8::/129", Invalid),
            ("10.0.0.0/33", Invalid),
            ("10.0.0.0/", Invalid),
            ("10.0.0.0/+8", Invalid),
            ("10.0.0.0/08", Invalid),
            ("010.0.0.0/8", Invalid),
            ("10.0.0.0/8/8", Invalid),
            ("/8", Invalid),
            ("fe80::1%eth0", Invalid),
            ("fe80::%eth0/64", Invalid),
            ("example.com", Invalid),
            ("", Invalid),
        ] {
            assert_eq!(bad.parse::<Subject>(), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn subjects_contain_their_addresses() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let net = Subject::ipv6_network_of(ip("2001:db8:1:2::9"), 64).unwrap();
        assert!(net.contains(&ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert!(net.contains(&ip("2001:db8:1:2::")));
        assert!(!net.contains(&ip("2001:db8:1:3::")));
        assert!(!net.contains(&ip("203.0.113.7")));
        let addr = Subject::from(ip("203.0.113.7"));
        assert!(addr.contains(&ip("203.0.113.7")));
        assert!(addr.contains(&ip("::ffff:203.0.113.7")));
        assert!(!addr.contains(&ip("203.0.113.8")));
        let v4net: Subject = "203.0.113.0/24".parse().unwrap();
        assert!(v4net.contains(&ip("::ffff:203.0.113.200")));
        // IPv4 is counted per address only; 128 means no prefix.
        assert_eq!(Subject::ipv6_network_of(ip("203.0.113.7"), 24), None);
        assert_eq!(Subject::ipv6_network_of(ip("2001:db8::1"), 128), None);
        assert_eq!(Subject::ipv6_network_of(ip("2001:db8::1"), 200), None);
        assert_eq!(
            Subject::ipv6_network_of(ip("2001:db8::1"), 0).map(|s| s.to_string()),
            Some("::/0".into())
        );
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
