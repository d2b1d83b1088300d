//! What a manual block is about: one address, or one network.
//!
//! The text form is the one in the Redis key (`block:{subject}`), so it
//! must be canonical: `2001:DB8::0001` and `2001:db8::1` are one client,
//! and `203.0.113.7/32` is the address `203.0.113.7`.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Shortest prefixes accepted: a shorter one is almost surely a typo
/// (`/6` for `/64`) and would block a continent.
const MIN_PREFIX_V4: u8 = 8;
const MIN_PREFIX_V6: u8 = 16;

/// A validated block subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Ip(IpAddr),
    Net(IpNet),
}

impl Subject {
    /// Parses an address (as [`crate::ip::parse_client_ip`] reads client
    /// addresses: no host names, ports, zone ids or leading zeros; an
    /// IPv4-mapped IPv6 address is its IPv4 address) or a CIDR network
    /// whose host bits are zero.
    pub fn parse(text: &str) -> Result<Subject, String> {
        let s = text.trim();
        let Some((addr, len)) = s.split_once('/') else {
            return crate::ip::parse_client_ip(s.as_bytes())
                .map(Subject::Ip)
                .ok_or_else(|| format!("{s:?} is not an IP address or CIDR network"));
        };
        // The address part is checked like a client address first, for
        // the same refusals (leading zeros, zone ids); the network itself is
        // then parsed whole, without normalising a mapped address, since
        // the prefix length belongs to the family written.
        if crate::ip::parse_client_ip(addr.as_bytes()).is_none() || len.starts_with('+') {
            return Err(format!("{s:?} is not an IP address or CIDR network"));
        }
        let net: IpNet = s
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR network"))?;
        if net.trunc() != net {
            return Err(format!(
                "{s:?} has host bits set; the network is {}",
                net.trunc()
            ));
        }
        if net.prefix_len() == net.max_prefix_len() {
            return Ok(Subject::Ip(crate::ip::normalize(net.addr())));
        }
        let min = match net {
            IpNet::V4(_) => MIN_PREFIX_V4,
            IpNet::V6(_) => MIN_PREFIX_V6,
        };
        if net.prefix_len() < min {
            return Err(format!(
                "{s:?} is too wide: the shortest prefix accepted is /{min}"
            ));
        }
        Ok(Subject::Net(net))
    }

    /// Whether `ip` is this subject or lies within it.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match self {
            Subject::Ip(own) => own == ip,
            Subject::Net(net) => net.contains(ip),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Ip(ip) => ip.fmt(f),
            Subject::Net(net) => net.fmt(f),
        }
    }
}

impl std::str::FromStr for Subject {
    type Err = String;

    fn from_str(s: &str) -> Result<Subject, String> {
        Subject::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Result<String, String> {
        Subject::parse(s).map(|s| s.to_string())
    }

    #[test]
    fn addresses_and_networks_take_their_canonical_form() {
        assert_eq!(canon(" 203.0.113.7 ").unwrap(), "203.0.113.7");
        assert_eq!(canon("2001:DB8::0001").unwrap(), "2001:db8::1");
        assert_eq!(canon("::ffff:198.51.100.1").unwrap(), "198.51.100.1");
        assert_eq!(canon("203.0.113.7/32").unwrap(), "203.0.113.7");
        assert_eq!(canon("2001:db8::1/128").unwrap(), "2001:db8::1");
        assert_eq!(canon("2001:DB8:0::/64").unwrap(), "2001:db8::/64");
        assert_eq!(canon("10.0.0.0/8").unwrap(), "10.0.0.0/8");
    }

    #[test]
    fn ambiguous_or_sweeping_subjects_are_refused() {
        for bad in [
            "",
            "example.com",
            "010.0.0.1",
            "203.0.113.7:22",
            "fe80::1%eth0",
            "203.0.113.0/33",
            "203.0.113.0/+24",
            "203.0.113.0/",
            "0.0.0.0/0",
            "10.0.0.0/7",
            "2000::/8",
        ] {
            assert!(Subject::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = Subject::parse("2001:db8::1/64").unwrap_err();
        assert!(e.contains("2001:db8::/64"), "{e}");
    }

    #[test]
    fn a_network_contains_its_addresses() {
        let s = Subject::parse("2001:db8::/64").unwrap();
        assert!(s.contains(&"2001:db8::77".parse().unwrap()));
        assert!(!s.contains(&"2001:db8:0:1::77".parse().unwrap()));
        let s = Subject::parse("203.0.113.7").unwrap();
        assert!(s.contains(&"203.0.113.7".parse().unwrap()));
    }
}
