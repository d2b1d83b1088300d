//! `X-Forwarded-For` resolution on any bytes as the chain, from a trusted
//! peer or not: it must never panic, and must agree with the walk written
//! the obvious way (split the whole chain on commas, then look from the
//! right), which takes no shortcuts and so shares none of its mistakes.
#![no_main]

use std::net::IpAddr;

use authwatch::proxy::{parse_hop, TrustedProxies, Unresolved, MAX_HOPS};
use libfuzzer_sys::fuzz_target;

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

fn reference(t: &TrustedProxies, peer: IpAddr, chain: &[u8]) -> Result<IpAddr, Unresolved> {
    let chain = trim(chain);
    if !t.contains(&peer) || chain.is_empty() || chain == b"-" {
        return Ok(peer);
    }
    let entries: Vec<&[u8]> = chain.split(|&b| b == b',').collect();
    for (examined, entry) in entries.iter().rev().enumerate() {
        if examined == MAX_HOPS {
            return Err(Unresolved::TooLong);
        }
        let ip = parse_hop(trim(entry)).ok_or(Unresolved::NotAnAddress)?;
        if !t.contains(&ip) || examined + 1 == entries.len() {
            return Ok(ip);
        }
    }
    unreachable!("a split has at least one entry")
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, chain)) = input.split_first() else {
        return;
    };
    let trusted = TrustedProxies::new(vec![
        "10.0.0.0/8".parse().expect("literal CIDR"),
        "fd00::/8".parse().expect("literal CIDR"),
    ]);
    let peer: IpAddr = match selector % 3 {
        0 => "10.0.0.5",
        1 => "fd00::5",
        _ => "203.0.113.7",
    }
    .parse()
    .expect("literal address");
    assert_eq!(
        trusted.resolve(peer, chain),
        reference(&trusted, peer, chain),
        "chain {:?}",
        String::from_utf8_lossy(chain)
    );
});
