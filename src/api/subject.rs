//! What a manual block is about: one address, or one network.
//!
//! The text form is the one in the Redis key (`block:{subject}`), so it
//! must be canonical: `2001:DB8::0001` and `2001:db8::1` are one client,
//! and `203.0.113.7/32` is the address `203.0.113.7`.

pub use crate::ip::Subject;

use crate::ip::ParseSubjectError;

/// Shortest prefixes accepted: a shorter one is almost surely a typo
/// (`/6` for `/64`) and would block a continent.
const MIN_PREFIX_V4: u8 = 8;
const MIN_PREFIX_V6: u8 = 16;

/// Parses a subject an operator names (`authwatch block`, `POST
/// /v1/blocks`, a lift): what [`Subject`]'s `FromStr` reads — an address
/// as client addresses are read (no host names, ports, zone ids or leading
/// zeros; an IPv4-mapped IPv6 address is its IPv4 address) or a CIDR
/// network whose host bits are zero — with surrounding white space
/// trimmed, and networks no wider than /8 (IPv4) or /16 (IPv6). The error
/// is a sentence for the operator.
pub fn parse_subject(text: &str) -> Result<Subject, String> {
    let s = text.trim();
    let subject = s.parse::<Subject>().map_err(|e| match e {
        ParseSubjectError::HostBits => match s.parse::<ipnet::IpNet>() {
            Ok(net) => format!("{s:?} has host bits set; the network is {}", net.trunc()),
            Err(_) => format!("{s:?} has host bits set"),
        },
        ParseSubjectError::Invalid => format!("{s:?} is not an IP address or CIDR network"),
    })?;
    if let Subject::Net(net) = subject {
        let min = match net {
            ipnet::IpNet::V4(_) => MIN_PREFIX_V4,
            ipnet::IpNet::V6(_) => MIN_PREFIX_V6,
        };
        if net.prefix_len() < min {
            return Err(format!(
                "{s:?} is too wide: the shortest prefix accepted is /{min}"
            ));
        }
    }
    Ok(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Result<String, String> {
        parse_subject(s).map(|s| s.to_string())
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
            assert!(parse_subject(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_subject("2001:db8::1/64").unwrap_err();
        assert!(e.contains("2001:db8::/64"), "{e}");
    }

    #[test]
    fn a_network_contains_its_addresses() {
        let s = parse_subject("2001:db8::/64").unwrap();
        assert!(s.contains(&"2001:db8::77".parse().unwrap()));
        assert!(!s.contains(&"2001:db8:0:1::77".parse().unwrap()));
        let s = parse_subject("203.0.113.7").unwrap();
        assert!(s.contains(&"203.0.113.7".parse().unwrap()));
    }
}
