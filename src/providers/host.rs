//! Provider API hosts and notification endpoints: https only, no user info, no IP literal of a
//! special-purpose range, normalised so that joining a path never produces `//`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// A checked, normalised base URL such as `https://api.openai.com/v1` (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiHost(String);

impl ApiHost {
    /// `allow_insecure` (local development and tests) also admits `http` and loopback hosts.
    pub fn parse(text: &str, allow_insecure: bool) -> Result<Self, String> {
        let url = Url::parse(text.trim()).map_err(|_| "is not an absolute URL".to_string())?;
        match url.scheme() {
            "https" => {}
            "http" if allow_insecure => {}
            _ => return Err("must use https".into()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry user information".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not carry a query or fragment".into());
        }
        let host = url.host().ok_or_else(|| "has no host".to_string())?;
        // Insecure mode admits loopback itself (a local mock provider), never an address that
        // only carries a loopback one, nor any other special-purpose range.
        let ip = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                if (name == "localhost" || name.ends_with(".localhost")) && !allow_insecure {
                    return Err("must not be localhost".into());
                }
                None
            }
        };
        if let Some(range) = ip.filter(|ip| !(allow_insecure && ip.is_loopback())).and_then(special_purpose) {
            return Err(format!("must not be a special-purpose address ({range})"));
        }
        let base = url.as_str().trim_end_matches('/').to_string();
        Ok(ApiHost(base))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` (starting with `/`) appended to the base.
    pub fn join(&self, path: &str) -> String {
        format!("{}/{}", self.0, path.trim_start_matches('/'))
    }
}

/// Why `ip` is no address for a provider or an endpoint: the special-purpose range it lies in,
/// or `None` for a public address. A provider lives on the internet; a request anywhere else
/// could reach the Worker's neighbours. The ranges are IANA's IPv4 and IPv6 Special-Purpose
/// Address Registries in full (entries marked globally reachable too: they are anycast
/// infrastructure such as AS112 or TURN, never an API host), multicast, and for IPv6 anything
/// outside global unicast. IPv6 forms that carry an IPv4 address are judged by that address.
pub fn special_purpose(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => special_purpose_v4(v4).map(str::to_string),
        IpAddr::V6(v6) => special_purpose_v6(v6),
    }
}

/// One of std's stable address predicates, e.g. `Ipv4Addr::is_private`.
type Predicate<A> = fn(&A) -> bool;

/// IPv4 registry entries std has a stable predicate for, then the rest as ranges. Within the
/// range table a more specific entry comes before the one that contains it, so the first match
/// names the entry.
const V4_PREDICATES: &[(Predicate<Ipv4Addr>, &str)] = &[
    (Ipv4Addr::is_unspecified, "This host on this network, 0.0.0.0/32"),
    (Ipv4Addr::is_loopback, "Loopback, 127.0.0.0/8"),
    (Ipv4Addr::is_private, "Private-Use, 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"),
    (Ipv4Addr::is_link_local, "Link Local, 169.254.0.0/16"),
    (Ipv4Addr::is_broadcast, "Limited Broadcast, 255.255.255.255/32"),
    (Ipv4Addr::is_documentation, "Documentation (TEST-NET-1, -2, -3), 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24"),
    (Ipv4Addr::is_multicast, "Multicast, 224.0.0.0/4"),
];

const V4_RANGES: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"This network\", 0.0.0.0/8"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "Shared Address Space, 100.64.0.0/10"),
    (Ipv4Addr::new(192, 0, 0, 0), 29, "IPv4 Service Continuity Prefix, 192.0.0.0/29"),
    (Ipv4Addr::new(192, 0, 0, 8), 32, "IPv4 dummy address, 192.0.0.8/32"),
    (Ipv4Addr::new(192, 0, 0, 9), 32, "Port Control Protocol Anycast, 192.0.0.9/32"),
    (Ipv4Addr::new(192, 0, 0, 10), 32, "Traversal Using Relays around NAT Anycast, 192.0.0.10/32"),
    (Ipv4Addr::new(192, 0, 0, 170), 32, "NAT64/DNS64 Discovery, 192.0.0.170/32"),
    (Ipv4Addr::new(192, 0, 0, 171), 32, "NAT64/DNS64 Discovery, 192.0.0.171/32"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF Protocol Assignments, 192.0.0.0/24"),
    (Ipv4Addr::new(192, 31, 196, 0), 24, "AS112-v4, 192.31.196.0/24"),
    (Ipv4Addr::new(192, 52, 193, 0), 24, "AMT, 192.52.193.0/24"),
    (Ipv4Addr::new(192, 88, 99, 2), 32, "6a44-relay anycast address, 192.88.99.2/32"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "Deprecated (6to4 Relay Anycast), 192.88.99.0/24"),
    (Ipv4Addr::new(192, 175, 48, 0), 24, "Direct Delegation AS112 Service, 192.175.48.0/24"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "Benchmarking, 198.18.0.0/15"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "Reserved, 240.0.0.0/4"),
];

fn within_v4(ip: Ipv4Addr, network: Ipv4Addr, prefix: u8) -> bool {
    let shift = 32 - u32::from(prefix);
    u32::from(ip).checked_shr(shift).unwrap_or(0) == u32::from(network).checked_shr(shift).unwrap_or(0)
}

fn special_purpose_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_PREDICATES
        .iter()
        .find(|(applies, _)| applies(&ip))
        .map(|(_, name)| *name)
        .or_else(|| V4_RANGES.iter().find(|(network, prefix, _)| within_v4(ip, *network, *prefix)).map(|(_, _, name)| *name))
}

/// How an IPv6 address that carries IPv4 addresses carries them.
type Embedding = fn(&[u16; 8]) -> Vec<Ipv4Addr>;

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// The forms that carry an IPv4 address where a request to them ends up: each is admitted only
/// when every address it carries is. First match wins.
const V6_EMBEDDINGS: &[(Ipv6Addr, u8, &str, Embedding)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, "IPv4-mapped Address, ::ffff:0:0/96", |s| vec![v4_of(s[6], s[7])]),
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, "IPv4-translated Address (RFC 2765), ::ffff:0:0:0/96", |s| vec![v4_of(s[6], s[7])]),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible Address (deprecated, RFC 4291), ::/96", |s| vec![v4_of(s[6], s[7])]),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "IPv4-IPv6 Translat., 64:ff9b::/96", |s| vec![v4_of(s[6], s[7])]),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4, 2002::/16", |s| vec![v4_of(s[1], s[2])]),
    // The Teredo server in clear, the client's address with its bits inverted (RFC 4380).
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "TEREDO, 2001::/32", |s| vec![v4_of(s[2], s[3]), v4_of(!s[6], !s[7])]),
];

/// IPv6 registry entries std has a stable predicate for (IPv4-mapped is an embedding above).
const V6_PREDICATES: &[(Predicate<Ipv6Addr>, &str)] = &[
    (Ipv6Addr::is_unspecified, "Unspecified Address, ::/128"),
    (Ipv6Addr::is_loopback, "Loopback Address, ::1/128"),
    (Ipv6Addr::is_unique_local, "Unique-Local, fc00::/7"),
    (Ipv6Addr::is_unicast_link_local, "Link-Local Unicast, fe80::/10"),
    (Ipv6Addr::is_multicast, "Multicast, ff00::/8"),
];

/// The rest of the IPv6 registry, more specific entries first, and deprecated site-local.
const V6_RANGES: &[(Ipv6Addr, u8, &str)] = &[
    // Local-use NAT64 leads to a translator inside someone's network, whatever it carries.
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "IPv4-IPv6 Translat. (local use), 64:ff9b:1::/48"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "Discard-Only Address Block, 100::/64"),
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, "Dummy IPv6 Prefix, 100:0:0:1::/64"),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1), 128, "Port Control Protocol Anycast, 2001:1::1/128"),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 2), 128, "Traversal Using Relays around NAT Anycast, 2001:1::2/128"),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 3), 128, "DNS-SD Service Registration Protocol Anycast, 2001:1::3/128"),
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, "Benchmarking, 2001:2::/48"),
    (Ipv6Addr::new(0x2001, 3, 0, 0, 0, 0, 0, 0), 32, "AMT, 2001:3::/32"),
    (Ipv6Addr::new(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48, "AS112-v6, 2001:4:112::/48"),
    (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28, "Deprecated (previously ORCHID), 2001:10::/28"),
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, "ORCHIDv2, 2001:20::/28"),
    (Ipv6Addr::new(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28, "Drone Remote ID Protocol Entity Tags (DETs) Prefix, 2001:30::/28"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF Protocol Assignments, 2001::/23"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "Documentation, 2001:db8::/32"),
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48, "Direct Delegation AS112 Service, 2620:4f:8000::/48"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "Documentation, 3fff::/20"),
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, "Segment Routing (SRv6) SIDs, 5f00::/16"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "Site-Local (deprecated, RFC 3879), fec0::/10"),
];

/// Everything the internet routes to lies in 2000::/3 (IANA's IPv6 Address Space registry);
/// the rest is reserved or local, and no registry entry is needed to refuse it.
const V6_GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

fn within_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u8) -> bool {
    let shift = 128 - u32::from(prefix);
    u128::from(ip).checked_shr(shift).unwrap_or(0) == u128::from(network).checked_shr(shift).unwrap_or(0)
}

fn special_purpose_v6(ip: Ipv6Addr) -> Option<String> {
    if let Some((_, name)) = V6_PREDICATES.iter().find(|(applies, _)| applies(&ip)) {
        return Some(name.to_string());
    }
    if let Some((_, _, form, carried)) = V6_EMBEDDINGS.iter().find(|(network, prefix, ..)| within_v6(ip, *network, *prefix)) {
        return carried(&ip.segments()).into_iter().find_map(special_purpose_v4).map(|inner| format!("{inner}, inside {form}"));
    }
    if let Some((_, _, name)) = V6_RANGES.iter().find(|(network, prefix, _)| within_v6(ip, *network, *prefix)) {
        return Some(name.to_string());
    }
    let (network, prefix) = V6_GLOBAL_UNICAST;
    (!within_v6(ip, network, prefix)).then(|| "outside global unicast, 2000::/3".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<String, String> {
        ApiHost::parse(text, false).map(|h| h.0)
    }

    #[test]
    fn trailing_slashes_are_normalised_away() {
        assert_eq!(parse("https://api.anthropic.com/").unwrap(), "https://api.anthropic.com");
        assert_eq!(parse("https://api.z.ai/api/coding/paas/v4/").unwrap(), "https://api.z.ai/api/coding/paas/v4");
        let host = ApiHost::parse("https://generativelanguage.googleapis.com/v1beta/openai/", false).unwrap();
        assert_eq!(host.join("/models"), "https://generativelanguage.googleapis.com/v1beta/openai/models");
    }

    #[test]
    fn only_https_is_admitted() {
        for text in ["http://api.openai.com/v1", "ftp://x.example", "api.openai.com", "javascript:alert(1)"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn user_info_query_and_fragment_are_refused() {
        for text in [
            "https://user:pw@api.example.com",
            "https://user@api.example.com",
            "https://api.example.com/v1?x=1",
            "https://api.example.com/#f",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn private_loopback_and_link_local_literals_are_refused() {
        for text in [
            "https://127.0.0.1",
            "https://10.1.2.3",
            "https://172.16.0.1",
            "https://192.168.1.1",
            "https://169.254.169.254/latest",
            "https://100.64.0.1",
            "https://0.0.0.0",
            "https://[::1]",
            "https://[fe80::1]",
            "https://[fd00::1]",
            "https://[::ffff:127.0.0.1]",
            "https://localhost:8443",
            "https://localhost.:8443",
            "https://2130706433",
            "https://[::7f00:1]",
            "https://[::a00:1]",
            "https://[64:ff9b::a9fe:a9fe]",
            "https://[2002:c0a8:0101::1]",
            "https://0.1.2.3",
            "https://224.0.0.1",
            "https://240.0.0.1",
            "https://[ff02::1]",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    /// (registry entry, an address inside it, a public address outside it)
    const REGISTRY_EXAMPLES: &[(&str, &str, &str)] = &[
        ("0.0.0.0/32", "0.0.0.0", "1.1.1.1"),
        ("0.0.0.0/8", "0.1.2.3", "1.0.0.1"),
        ("10.0.0.0/8", "10.255.255.254", "11.0.0.1"),
        ("100.64.0.0/10", "100.127.255.254", "100.128.0.1"),
        ("127.0.0.0/8", "127.1.2.3", "128.0.0.1"),
        ("169.254.0.0/16", "169.254.169.254", "169.255.0.1"),
        ("172.16.0.0/12", "172.31.255.254", "172.32.0.1"),
        ("192.0.0.0/24", "192.0.0.200", "192.0.1.1"),
        ("192.0.0.0/29", "192.0.0.1", "192.0.1.1"),
        ("192.0.0.8/32", "192.0.0.8", "192.0.1.8"),
        ("192.0.0.9/32", "192.0.0.9", "192.0.1.9"),
        ("192.0.0.10/32", "192.0.0.10", "192.0.1.10"),
        ("192.0.0.170/32", "192.0.0.170", "192.0.1.170"),
        ("192.0.0.171/32", "192.0.0.171", "192.0.1.171"),
        ("192.0.2.0/24", "192.0.2.1", "192.0.3.1"),
        ("192.31.196.0/24", "192.31.196.1", "192.31.197.1"),
        ("192.52.193.0/24", "192.52.193.1", "192.52.194.1"),
        ("192.88.99.0/24", "192.88.99.1", "192.88.100.1"),
        ("192.88.99.2/32", "192.88.99.2", "192.88.100.2"),
        ("192.168.0.0/16", "192.168.1.1", "192.169.0.1"),
        ("192.175.48.0/24", "192.175.48.1", "192.175.49.1"),
        ("198.18.0.0/15", "198.19.255.254", "198.20.0.1"),
        ("198.51.100.0/24", "198.51.100.1", "198.51.101.1"),
        ("203.0.113.0/24", "203.0.113.1", "203.0.114.1"),
        ("224.0.0.0/4", "239.255.255.250", "223.255.255.254"),
        ("240.0.0.0/4", "240.0.0.1", "223.255.255.254"),
        ("255.255.255.255/32", "255.255.255.255", "223.255.255.255"),
        ("::/128", "::", "2606:4700::1111"),
        ("::1/128", "::1", "2606:4700::1111"),
        ("::ffff:0:0/96", "::ffff:127.0.0.1", "::ffff:8.8.8.8"),
        ("::ffff:0:0:0/96", "::ffff:0:7f00:1", "::ffff:0:808:808"),
        ("::/96", "::7f00:1", "::808:808"),
        ("64:ff9b::/96", "64:ff9b::a9fe:a9fe", "64:ff9b::808:808"),
        ("64:ff9b:1::/48", "64:ff9b:1::a9fe:a9fe", "64:ff9b::808:808"),
        ("100::/64", "100::1", "2606:4700::1111"),
        ("100:0:0:1::/64", "100:0:0:1::1", "2606:4700::1111"),
        ("2001::/23", "2001:100::1", "2001:200::1"),
        ("2001::/32", "2001:0:808:808::80ff:fffe", "2001:0:808:808::fefe:fefe"),
        ("2001:1::1/128", "2001:1::1", "2001:200::1"),
        ("2001:1::2/128", "2001:1::2", "2001:200::2"),
        ("2001:1::3/128", "2001:1::3", "2001:200::3"),
        ("2001:2::/48", "2001:2::1", "2001:200::1"),
        ("2001:3::/32", "2001:3::1", "2001:200::1"),
        ("2001:4:112::/48", "2001:4:112::1", "2001:200::1"),
        ("2001:10::/28", "2001:1f::1", "2001:200::1"),
        ("2001:20::/28", "2001:2f::1", "2001:200::1"),
        ("2001:30::/28", "2001:3f::1", "2001:200::1"),
        ("2001:db8::/32", "2001:db8::1", "2001:db9::1"),
        ("2002::/16", "2002:c0a8:101::1", "2002:808:808::1"),
        ("2620:4f:8000::/48", "2620:4f:8000::1", "2620:4f:8001::1"),
        ("3fff::/20", "3fff:fff::1", "3fff:1000::1"),
        ("5f00::/16", "5f00::1", "2606:4700::1111"),
        ("fc00::/7", "fd12:3456::1", "2606:4700::1111"),
        ("fe80::/10", "fe80::1", "2606:4700::1111"),
        ("fec0::/10", "fec0::1", "2606:4700::1111"),
        ("ff00::/8", "ff02::1", "2606:4700::1111"),
        ("2000::/3", "4000::1", "2606:4700::1111"),
    ];

    #[test]
    fn every_special_purpose_entry_refuses_its_addresses_and_admits_its_neighbours() {
        for (entry, inside, outside) in REGISTRY_EXAMPLES {
            let refusal = special_purpose(inside.parse().unwrap());
            assert!(refusal.as_deref().is_some_and(|named| named.contains(entry)), "{inside} is in {entry}, but got {refusal:?}");
            assert_eq!(special_purpose(outside.parse().unwrap()), None, "{outside} is outside {entry} and public");
        }
    }

    #[test]
    fn every_range_of_the_tables_has_an_example() {
        let examples: Vec<(IpAddr, u8)> = REGISTRY_EXAMPLES
            .iter()
            .map(|(entry, ..)| {
                let (network, prefix) = entry.split_once('/').unwrap();
                (network.parse().unwrap(), prefix.parse().unwrap())
            })
            .collect();
        let v4 = V4_RANGES.iter().map(|(network, prefix, _)| (IpAddr::V4(*network), *prefix));
        let v6 = V6_RANGES.iter().map(|(network, prefix, _)| (IpAddr::V6(*network), *prefix));
        let embeddings = V6_EMBEDDINGS.iter().map(|(network, prefix, ..)| (IpAddr::V6(*network), *prefix));
        for range in v4.chain(v6).chain(embeddings) {
            assert!(examples.contains(&range), "no example for {}/{}", range.0, range.1);
        }
    }

    #[test]
    fn teredo_is_judged_by_its_server_and_its_client() {
        assert!(special_purpose("2001:0:a00:1::fefe:fefe".parse().unwrap()).is_some_and(|named| named.contains("Private-Use")));
        assert!(special_purpose("2001:0:808:808::80ff:fffe".parse().unwrap()).is_some_and(|named| named.contains("Loopback")));
    }

    #[test]
    fn ipv4_translated_nat64_local_use_and_site_local_literals_are_refused() {
        for text in ["https://[::ffff:0:7f00:1]", "https://[64:ff9b:1::a9fe:a9fe]", "https://[fec0::1]"] {
            assert!(parse(text).is_err(), "{text}");
            assert!(ApiHost::parse(text, true).is_err(), "{text} in insecure mode");
        }
    }

    #[test]
    fn the_refusal_names_the_range() {
        assert_eq!(
            parse("https://[fec0::1]").unwrap_err(),
            "must not be a special-purpose address (Site-Local (deprecated, RFC 3879), fec0::/10)"
        );
        assert_eq!(
            parse("https://[::ffff:0:7f00:1]").unwrap_err(),
            "must not be a special-purpose address (Loopback, 127.0.0.0/8, inside IPv4-translated Address (RFC 2765), ::ffff:0:0:0/96)"
        );
    }

    #[test]
    fn public_addresses_and_names_are_admitted() {
        for text in [
            "https://8.8.8.8",
            "https://[2606:4700::1111]",
            "https://my-resource.openai.azure.com",
            "https://bedrock.us-east-1.amazonaws.com",
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn insecure_mode_admits_http_and_loopback_only() {
        let host = ApiHost::parse("http://127.0.0.1:9999/openai/v1/", true).unwrap();
        assert_eq!(host.as_str(), "http://127.0.0.1:9999/openai/v1");
        assert!(ApiHost::parse("http://[2002:7f00:1::1]:9999", true).is_err(), "6to4 of loopback is not loopback to the Worker");
        assert!(ApiHost::parse("http://localhost:9999", true).is_ok());
        assert!(ApiHost::parse("http://[::1]:9999", true).is_ok());
        for refused in [
            "https://user:pw@127.0.0.1",
            "http://10.0.0.1",
            "http://169.254.169.254",
            "http://192.168.1.10",
            "ftp://127.0.0.1",
            "http://[::ffff:127.0.0.1]:9999",
            "http://[64:ff9b::7f00:1]:9999",
        ] {
            assert!(ApiHost::parse(refused, true).is_err(), "{refused}");
        }
    }
}
