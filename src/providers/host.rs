//! Provider API hosts: https only, no user info, no private, loopback or link-local address,
//! normalised so that joining a path never produces `//`.

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
        // Insecure mode admits loopback (a local mock provider), never private or link-local
        // ranges, which stay out of reach in every mode.
        let refused = match host {
            Host::Ipv4(ip) => is_internal(IpAddr::V4(ip)) && !(allow_insecure && ip.is_loopback()),
            Host::Ipv6(ip) => is_internal(IpAddr::V6(ip)) && !(allow_insecure && ip.is_loopback()),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                (name == "localhost" || name.ends_with(".localhost")) && !allow_insecure
            }
        };
        if refused {
            return Err("must not be a private, loopback or link-local address".into());
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

/// Anything but a public unicast address: a provider lives on the internet, and a request
/// anywhere else could reach the Worker's neighbours.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address carries: mapped (::ffff:0:0/96), compatible (::/96),
/// NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] if !(hi == 0 && lo <= 1) => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network", 0.0.0.0/8
        || a >= 240 // reserved, 240.0.0.0/4
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64.0.0/10
        || (a == 198 && (18..20).contains(&b)) // benchmarking, 198.18.0.0/15
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments, 192.0.0.0/24
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation, 2001:db8::/32
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
        for refused in ["https://user:pw@127.0.0.1", "http://10.0.0.1", "http://169.254.169.254", "http://192.168.1.10", "ftp://127.0.0.1"]
        {
            assert!(ApiHost::parse(refused, true).is_err(), "{refused}");
        }
    }
}
