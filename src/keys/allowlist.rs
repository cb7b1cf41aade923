//! A key's IP allowlist: the addresses and CIDR ranges its requests may come from, parsed and
//! normalised with `ipnet`, and matched against the client address (`CF-Connecting-IP`).
//!
//! IPv4-mapped IPv6 addresses (`::ffff:203.0.113.7`) are the IPv4 address they carry, both in a
//! list and in a request, so a dual-stack edge cannot slip a listed client past its own entry.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A key carries at most this many entries.
pub const MAX_ENTRIES: usize = 32;
/// The longest entry: the longest IPv6 range in any spelling fits.
pub const MAX_ENTRY_CHARS: usize = 64;

/// A normalised allowlist: each entry once, single addresses without a prefix length, ranges
/// with their host bits cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Allowlist {
    nets: Vec<IpNet>,
}

fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// A client's address as a header or a verify's `ip` gives it: bare, or an IPv6 address in
/// brackets (`[2001:db8::1]`) or with a zone (`fe80::1%eth0`, which is dropped).
pub fn client_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    let text = match text.split_once('%') {
        Some((address, _zone)) if address.contains(':') => address,
        _ => text,
    };
    text.parse().ok()
}

/// One entry: an address or a CIDR range, mapped IPv6 read as IPv4.
fn parse_entry(text: &str) -> Result<IpNet, String> {
    let shown = crate::error::echoed(text);
    if text.len() > MAX_ENTRY_CHARS {
        return Err(format!("`{shown}` is longer than an address or CIDR range can be ({MAX_ENTRY_CHARS} characters)."));
    }
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(unmapped(address)));
    }
    let net: IpNet = text.parse().map_err(|_| format!("`{shown}` is not an IPv4 or IPv6 address or CIDR range."))?;
    match net {
        IpNet::V6(v6) if v6.addr().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 => {
            let v4 = v6.addr().to_ipv4_mapped().expect("checked above");
            let net = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_err(|e| e.to_string())?;
            Ok(IpNet::V4(net.trunc()))
        }
        other => Ok(other.trunc()),
    }
}

impl Allowlist {
    /// Parses and normalises `entries`; the message names the first entry at fault.
    pub fn parse(entries: &[String]) -> Result<Allowlist, String> {
        if entries.len() > MAX_ENTRIES {
            return Err(format!("A key may list at most {MAX_ENTRIES} addresses or ranges."));
        }
        let mut nets: Vec<IpNet> = Vec::with_capacity(entries.len());
        for entry in entries {
            let net = parse_entry(entry)?;
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        Ok(Allowlist { nets })
    }

    /// Whether a request from `ip` may use the key. `0.0.0.0/0` or `::/0` means any address
    /// at all, of either family, or none; otherwise an address that does not parse (or none)
    /// is refused.
    pub fn admits(&self, ip: Option<&str>) -> bool {
        if self.nets.iter().any(|net| net.prefix_len() == 0) {
            return true;
        }
        let Some(address) = ip.and_then(client_address) else { return false };
        let address = unmapped(address);
        self.nets.iter().any(|net| net.contains(&address))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.nets
            .iter()
            .map(|net| if net.prefix_len() == net.max_prefix_len() { net.addr().to_string() } else { net.to_string() })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

impl TryFrom<Vec<String>> for Allowlist {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        Allowlist::parse(&entries)
    }
}

impl From<Allowlist> for Vec<String> {
    fn from(list: Allowlist) -> Vec<String> {
        list.to_strings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn entries_are_normalised_single_addresses_bare_and_ranges_truncated() {
        let normalised =
            list(&["203.0.113.7", "10.1.2.3/8", "2001:DB8:0:0::1", "2001:db8:abcd::/48", "203.0.113.7/32", "::ffff:198.51.100.9"]);
        assert_eq!(normalised.to_strings(), vec!["203.0.113.7", "10.0.0.0/8", "2001:db8::1", "2001:db8:abcd::/48", "198.51.100.9"]);
    }

    #[test]
    fn a_client_address_may_come_bracketed_or_with_a_zone() {
        let pinned = list(&["2001:db8::/32", "fe80::/10", "192.0.2.1"]);
        for client in ["2001:db8::5", "[2001:db8::5]", " 2001:db8::5 ", "fe80::1%eth0", "[fe80::1%25eth0]", "192.0.2.1"] {
            assert!(pinned.admits(Some(client)), "{client:?}");
        }
        for stranger in ["[2001:db9::5]", "192.0.2.1%eth0", "[192.0.2.1", "2001:db8::5]", "%eth0", ""] {
            assert!(!pinned.admits(Some(stranger)), "{stranger:?}");
        }
    }

    #[test]
    fn a_mapped_ipv6_range_is_the_ipv4_range_it_carries() {
        assert_eq!(list(&["::ffff:192.0.2.0/120"]).to_strings(), vec!["192.0.2.0/24"]);
    }

    #[test]
    fn ipv4_ranges_match_their_addresses_and_only_them() {
        let allowed = list(&["192.0.2.0/24", "203.0.113.7"]);
        assert!(allowed.admits(Some("192.0.2.0")) && allowed.admits(Some("192.0.2.255")) && allowed.admits(Some("203.0.113.7")));
        assert!(!allowed.admits(Some("192.0.3.1")) && !allowed.admits(Some("203.0.113.8")));
    }

    #[test]
    fn ipv6_ranges_match_in_any_spelling() {
        let allowed = list(&["2001:db8::/32"]);
        assert!(allowed.admits(Some("2001:db8::1")) && allowed.admits(Some("2001:0DB8:ffff::abcd")));
        assert!(!allowed.admits(Some("2001:db9::1")));
    }

    #[test]
    fn a_mapped_request_address_matches_its_ipv4_entry_and_the_other_way_round() {
        assert!(list(&["198.51.100.0/24"]).admits(Some("::ffff:198.51.100.20")));
        assert!(list(&["::ffff:198.51.100.20"]).admits(Some("198.51.100.20")));
        assert!(!list(&["198.51.100.0/24"]).admits(Some("::198.51.100.20")), "IPv4-compatible is not IPv4-mapped");
    }

    #[test]
    fn any_address_lists_admit_everything_even_an_unknown_client() {
        assert!(list(&["0.0.0.0/0"]).admits(Some("8.8.8.8")));
        assert!(list(&["0.0.0.0/0"]).admits(None));
        assert!(list(&["::/0"]).admits(Some("2606:4700::1")));
        assert!(list(&["0.0.0.0/0"]).admits(Some("2606:4700::1")), "any means any, of either family");
        assert!(list(&["::/0", "192.0.2.1"]).admits(Some("198.51.100.1")));
        assert!(!list(&["192.0.2.1"]).admits(None) && !list(&["192.0.2.1"]).admits(Some("not an ip")));
    }

    #[test]
    fn malformed_entries_and_long_lists_are_refused_by_name() {
        for bad in ["192.0.2.1/33", "2001:db8::/129", "example.com", "192.0.2", "", "10.0.0.0/-1", " 192.0.2.1"] {
            let error = Allowlist::parse(&[bad.to_string()]).unwrap_err();
            assert!(error.contains(&format!("`{bad}`")), "{bad}: {error}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("192.0.2.{i}")).collect();
        assert!(Allowlist::parse(&many).unwrap_err().contains("at most 32"));
        assert_eq!(Allowlist::parse(&many[..32]).unwrap().to_strings().len(), 32);
    }

    #[test]
    fn duplicates_after_normalising_are_kept_once() {
        assert_eq!(list(&["10.0.0.1/8", "10.0.0.0/8", "::ffff:10.0.0.0/104"]).to_strings(), vec!["10.0.0.0/8"]);
    }
}
