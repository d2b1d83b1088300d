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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    // Read by hand, exactly as std's `IpAddr` parser reads (which refuses
    // zone ids, brackets, ports and leading zeros in IPv4 octets): std's
    // general parser cost about 2,800 instructions for an IPv6 address,
    // as much as all the rest of matching an sshd failure line.
    // `tests::reads_as_std_does` holds these to std's parser.
    if let Some(v4) = parse_ipv4(text) {
        return Some(IpAddr::V4(v4));
    }
    parse_ipv6(text).map(|v6| normalize(IpAddr::V6(v6)))
}

/// A cursor over the bytes of an address, for [`parse_ipv6`].
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
    /// Whether the text has a dot: without one, no embedded IPv4 is tried.
    dotted: bool,
}

impl Cursor<'_> {
    fn eat(&mut self, b: u8) -> bool {
        let yes = self.text.get(self.at) == Some(&b);
        self.at += usize::from(yes);
        yes
    }

    /// One to four hex digits (more are left for the caller to trip on).
    fn hex_group(&mut self) -> Option<u16> {
        let mut value: u16 = 0;
        let mut digits = 0;
        while digits < 4 {
            let Some(d) = self
                .text
                .get(self.at)
                .and_then(|&b| (b as char).to_digit(16))
            else {
                break;
            };
            value = value << 4 | d as u16;
            self.at += 1;
            digits += 1;
        }
        (digits > 0).then_some(value)
    }

    /// A dotted quad that ends where the text does (an embedded IPv4 is
    /// always last).
    fn ipv4_to_end(&mut self) -> Option<[u16; 2]> {
        let o = parse_ipv4(&self.text[self.at..])?.octets();
        self.at = self.text.len();
        Some([
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([o[2], o[3]]),
        ])
    }

    /// Up to `groups.len()` groups separated by single colons, the last two
    /// possibly an embedded IPv4; stops before anything else, leaving the
    /// cursor after the last group read. Returns how many were read and
    /// whether the last two were an IPv4.
    fn groups(&mut self, groups: &mut [u16]) -> (usize, bool) {
        for i in 0..groups.len() {
            let before = self.at;
            if i > 0 && !self.eat(b':') {
                return (i, false);
            }
            if self.dotted && i + 1 < groups.len() {
                let at = self.at;
                if let Some(pair) = self.ipv4_to_end() {
                    groups[i..i + 2].copy_from_slice(&pair);
                    return (i + 2, true);
                }
                self.at = at;
            }
            match self.hex_group() {
                Some(g) => groups[i] = g,
                None => {
                    self.at = before;
                    return (i, false);
                }
            }
        }
        (groups.len(), false)
    }
}

/// IPv6 exactly as std's `Ipv6Addr::from_str` reads it: eight groups of
/// one to four hex digits, or fewer around one `::` that stands for at
/// least one zero group, the last 32 bits possibly a dotted quad (not
/// before the `::`), nothing else.
fn parse_ipv6(text: &[u8]) -> Option<Ipv6Addr> {
    let mut c = Cursor {
        text,
        at: 0,
        dotted: text.contains(&b'.'),
    };
    let mut head = [0u16; 8];
    let (head_len, head_v4) = c.groups(&mut head);
    if head_len < 8 {
        if head_v4 || !c.eat(b':') || !c.eat(b':') {
            return None;
        }
        let mut tail = [0u16; 7];
        let (tail_len, _) = c.groups(&mut tail[..7 - head_len]);
        head[8 - tail_len..].copy_from_slice(&tail[..tail_len]);
    }
    (c.at == text.len()).then(|| Ipv6Addr::from(head))
}

/// Dotted-quad IPv4 exactly as std's `Ipv4Addr::from_str` reads it: four
/// decimal octets of one to three digits, each at most 255 and without a
/// leading zero (`01` could be read as octal), separated by single dots,
/// nothing else. `tests::reads_as_std_does` holds it to std's parser.
fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if text.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value: u32 = 0;
        while let Some(&b) = text.get(i) {
            if !b.is_ascii_digit() || i - start == 3 {
                break;
            }
            value = value * 10 + u32::from(b - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || (len > 1 && text[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == text.len()).then_some(Ipv4Addr::from(octets))
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

    /// The hand-written readers against std's, on the edge cases and on
    /// random strings of digits, dots, colons and hex digits.
    #[test]
    fn reads_as_std_does() {
        let std_v4 = |t: &[u8]| -> Option<Ipv4Addr> { std::str::from_utf8(t).ok()?.parse().ok() };
        let std_v6 = |t: &[u8]| -> Option<Ipv6Addr> { std::str::from_utf8(t).ok()?.parse().ok() };
        for t in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::",
            "::1:2:3:4:5:6:7",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::8",
            "1::2::3",
            ":::",
            "1:::2",
            ":1::2",
            "1::2:",
            "12345::",
            "0000:0000::00000",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "1.2.3.4::",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1::1.2.3.4:5",
            "::01.2.3.4",
            "::1.2.3",
            "::1.2.3.4.5",
            "fe80::1%eth0",
            "[::1]",
            "FFFF::abcd",
            "g::1",
            "2001:db8::7:51234",
            "::ffff:256.1.1.1",
            "1:2:3:4:5:6::1.2.3.4",
            "1:2:3:4:5::1.2.3.4",
            "::0.0.0.0",
            ":",
            "1:",
            "",
        ] {
            assert_eq!(parse_ipv6(t.as_bytes()), std_v6(t.as_bytes()), "{t:?}");
        }
        let v6_alphabet = b"0123456789abcdefABCDF:::::....g%";
        let mut y: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..300_000 {
            y ^= y << 13;
            y ^= y >> 7;
            y ^= y << 17;
            let len = (y % 23) as usize;
            let mut z = y;
            let t: Vec<u8> = (0..len)
                .map(|_| {
                    z = z.rotate_left(5) ^ 0x9E37_79B9;
                    v6_alphabet[(z & 31) as usize]
                })
                .collect();
            assert_eq!(
                parse_ipv6(&t),
                std_v6(&t),
                "{:?}",
                String::from_utf8_lossy(&t)
            );
            // Real shapes, cut and stitched.
            let real = [
                "2001:db8::7",
                "::ffff:10.0.0.1",
                "fe80::1:2:3:4",
                "1:2:3:4:5:6:7:8",
            ];
            let a = real[(y >> 8) as usize % 4];
            let b = real[(y >> 12) as usize % 4];
            let head = &a[..(y >> 16) as usize % (a.len() + 1)];
            let tail = &b[b.len() - (y >> 24) as usize % (b.len() + 1)..];
            let t = format!("{head}{tail}");
            assert_eq!(parse_ipv6(t.as_bytes()), std_v6(t.as_bytes()), "{t:?}");
            assert_eq!(
                parse_client_ip(t.as_bytes()),
                std::str::from_utf8(t.as_bytes())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(normalize),
                "{t:?}"
            );
        }
        for t in [
            "0.0.0.0",
            "255.255.255.255",
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "01.2.3.4",
            "1.2.3.00",
            "1.2.3.0",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.1000",
            "999.1.1.1",
            "",
            "1",
            "1.2.3.4\0",
            "١.2.3.4",
        ] {
            assert_eq!(parse_ipv4(t.as_bytes()), std_v4(t.as_bytes()), "{t:?}");
        }
        let alphabet = b"0123456789....a-";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t: Vec<u8> = if x & 1 == 0 {
                let len = (x % 17) as usize;
                (0..len)
                    .map(|i| alphabet[((x >> (4 * (i % 16))) & 15) as usize])
                    .collect()
            } else {
                // Dot-separated groups of 0 to 3 digits, mostly four.
                let groups = 3 + (x >> 1) % 3;
                let mut t = Vec::new();
                for g in 0..groups {
                    if g > 0 {
                        t.push(b'.');
                    }
                    let bits = x >> (8 + 12 * g);
                    for d in 0..(bits & 3) {
                        t.push(b'0' + ((bits >> (2 + 3 * d)) % 10) as u8);
                    }
                }
                t
            };
            assert_eq!(
                parse_ipv4(&t),
                std_v4(&t),
                "{:?}",
                String::from_utf8_lossy(&t)
            );
        }
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
