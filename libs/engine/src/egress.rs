//! Safe egress: outbound HTTP from nodes never reaches loopback, private, link-local,
//! metadata or otherwise special addresses unless the operator allows a range.
//!
//! Three checks cover every way a request can reach an address:
//! - IP-literal hosts are checked before the request (hyper connects to them without
//!   asking the resolver). The `url` crate's WHATWG parser has already turned decimal
//!   (`2130706433`), octal (`0177.0.0.1`) and hex IPv4 forms into the address they mean.
//! - Names are resolved by [`SafeResolver`], which drops refused addresses, so the
//!   connection goes only to an address that passed the check (no rebinding window).
//! - Every redirect hop is checked again by the redirect policy, at most `max_redirects`.
//!
//! A node that carries a credential is also held to the credential's allowed hosts on
//! every hop: the first URL is checked by the node, each redirect by the policy here.
//! Redirects do not strip custom headers, so a hop to another host would otherwise
//! carry an `http_header` secret wherever the upstream pointed it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::error::{EngineError, EngineResult};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// CIDR ranges nodes may reach although they are refused by default, such as
    /// `10.20.0.0/16` for an internal API, or `127.0.0.0/8` in tests.
    pub allow_cidrs: Vec<String>,
    pub max_redirects: u32,
    pub connect_timeout_ms: u64,
}

impl Default for EgressConfig {
    fn default() -> EgressConfig {
        EgressConfig {
            allow_cidrs: Vec::new(),
            max_redirects: 5,
            connect_timeout_ms: 10_000,
        }
    }
}

/// Raised (inside reqwest's error chain, or directly) when egress is refused, so callers
/// can tell a refusal (permanent) from a network failure (transient).
#[derive(Debug, Clone, thiserror::Error)]
#[error("egress refused: {0}")]
pub struct EgressRefused(pub String);

/// Raised when a credential would be sent to a host it does not allow, by the node
/// for the first URL or by the redirect policy for a later hop.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the credential may not be sent to host `{0}`: it is not among the credential's allowed hosts"
)]
pub struct CredentialHostRefused(pub String);

/// A credential's allowed hosts. Patterns are a host, or `*.` and a domain (its
/// subdomains), with an optional `:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    pub fn new(patterns: Vec<String>) -> AllowedHosts {
        AllowedHosts(patterns)
    }

    /// Whether `url` may receive the credential; the error names the host.
    pub fn check(&self, url: &Url) -> Result<(), CredentialHostRefused> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port_or_known_default();
        let matches = |pattern: &String| {
            let pattern = pattern.to_ascii_lowercase();
            let (pattern_host, pattern_port) = match pattern.rsplit_once(':') {
                Some((pattern_host, pattern_port)) => {
                    (pattern_host, pattern_port.parse::<u16>().ok())
                }
                None => (pattern.as_str(), None),
            };
            if pattern_port.is_some() && pattern_port != port {
                return false;
            }
            match pattern_host.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
                None => host == pattern_host,
            }
        };
        if self.0.iter().any(matches) {
            Ok(())
        } else {
            Err(CredentialHostRefused(host))
        }
    }
}

tokio::task_local! {
    /// The allowed hosts of the credential the request being sent carries (`None` when
    /// it carries none or the credential allows every host). reqwest consults the
    /// redirect policy while the caller's task polls the response future, so the
    /// client-wide policy sees the value of the request in flight.
    static CREDENTIAL_HOSTS: Option<Arc<AllowedHosts>>;
}

/// Runs `request` (a send on a client from [`build_client`]) with `hosts` as the hosts
/// every redirect hop must match. A send outside this scope has its redirects refused,
/// so a missing scope fails closed instead of letting a secret follow a redirect.
pub async fn with_credential_hosts<F: std::future::Future>(
    hosts: Option<Arc<AllowedHosts>>,
    request: F,
) -> F::Output {
    CREDENTIAL_HOSTS.scope(hosts, request).await
}

#[derive(Clone, Debug)]
pub struct EgressPolicy {
    allow: Vec<IpNet>,
    platform: Vec<PlatformEndpoint>,
}

/// The platform's own stores: the database and the queue every service of this
/// process talks to, and the folders their files live in. No node may reach them,
/// whatever ranges an operator allows. The process that runs the engine fills this
/// in from its own `database_url`, `queue_url` and data folder; it is not read from
/// configuration, so nothing a workflow carries can change it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlatformStores {
    /// `postgres://…`, `redis://…` URLs (SQLite URLs name files: see `paths`).
    pub urls: Vec<String>,
    /// Folders holding the platform's SQLite files.
    pub paths: Vec<std::path::PathBuf>,
}

/// One `host:port` of a platform store, with the addresses it resolved to at start.
#[derive(Clone, Debug)]
struct PlatformEndpoint {
    host: String,
    port: u16,
    addresses: Vec<IpAddr>,
}

impl PlatformEndpoint {
    fn from_url(raw: &str) -> Option<PlatformEndpoint> {
        let url = Url::parse(raw).ok()?;
        let port = url.port().or(match url.scheme() {
            "postgres" | "postgresql" => Some(5432),
            "redis" | "rediss" => Some(6379),
            _ => None,
        })?;
        let host = match url.host()? {
            Host::Domain(name) => percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .to_ascii_lowercase(),
            Host::Ipv4(address) => address.to_string(),
            Host::Ipv6(address) => address.to_string(),
        };
        if host.is_empty() || host.starts_with('/') {
            return None;
        }
        // Resolved once at start: an endpoint is matched by name and by address.
        let addresses = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map(|resolved| resolved.map(|address| canonicalize(address.ip())).collect())
            .unwrap_or_default();
        Some(PlatformEndpoint {
            host,
            port,
            addresses,
        })
    }

    fn holds(&self, address: SocketAddr) -> bool {
        if address.port() != self.port {
            return false;
        }
        let address = canonicalize(address.ip());
        // Every loopback and unspecified address reaches the same local server.
        let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
        self.addresses
            .iter()
            .any(|own| *own == address || (local(*own) && local(address)))
    }
}

impl EgressPolicy {
    pub fn from_config(config: &EgressConfig) -> EngineResult<EgressPolicy> {
        let allow = config
            .allow_cidrs
            .iter()
            .map(|range| {
                range
                    .parse::<IpNet>()
                    .map_err(|error| EngineError::InvalidAllowRange {
                        range: range.clone(),
                        reason: error.to_string(),
                    })
            })
            .collect::<EngineResult<Vec<IpNet>>>()?;
        Ok(EgressPolicy {
            allow,
            platform: Vec::new(),
        })
    }

    /// Refuses the platform's own stores on top of the configured policy.
    pub fn with_platform(mut self, stores: &PlatformStores) -> EgressPolicy {
        self.platform = stores
            .urls
            .iter()
            .filter_map(|url| PlatformEndpoint::from_url(url))
            .collect();
        self
    }

    /// Whether a connection to `address` may be made: the address is permitted and
    /// is none of the platform's own stores, even inside an allowed range.
    pub fn check_socket(&self, address: SocketAddr) -> Result<(), EgressRefused> {
        self.check_ip(address.ip())?;
        match self.platform.iter().find(|own| own.holds(address)) {
            Some(own) => Err(EgressRefused(format!(
                "{address} is the platform's own store ({}:{})",
                own.host, own.port
            ))),
            None => Ok(()),
        }
    }

    /// Refuses `host:port` when it names a platform store, by name or by any
    /// address the name resolves to now.
    fn check_platform(&self, host: &Host<&str>, port: u16) -> Result<(), EgressRefused> {
        if !self.platform.iter().any(|own| own.port == port) {
            return Ok(());
        }
        let name = match host {
            Host::Ipv4(address) => {
                return self.check_socket(SocketAddr::new((*address).into(), port));
            }
            Host::Ipv6(address) => {
                return self.check_socket(SocketAddr::new((*address).into(), port));
            }
            Host::Domain(name) => name.to_ascii_lowercase(),
        };
        if let Some(own) = self
            .platform
            .iter()
            .find(|own| own.port == port && own.host == name)
        {
            return Err(EgressRefused(format!(
                "{name}:{port} is the platform's own store ({}:{})",
                own.host, own.port
            )));
        }
        // Rare (only on a store's port), so a blocking lookup is acceptable here.
        if let Ok(resolved) = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port)) {
            for address in resolved {
                self.check_socket(address)?;
            }
        }
        Ok(())
    }

    /// Whether `address` may be connected to; the error says why not.
    pub fn check_ip(&self, address: IpAddr) -> Result<(), EgressRefused> {
        let canonical = canonicalize(address);
        if self
            .allow
            .iter()
            .any(|range| range.contains(&address) || range.contains(&canonical))
        {
            return Ok(());
        }
        match refusal_reason(canonical) {
            Some(reason) => Err(EgressRefused(format!(
                "{address} is a {reason} address; an operator may open its range with \
                 executor.engine.egress.allow_cidrs"
            ))),
            None => Ok(()),
        }
    }

    /// Checks the scheme and, for an IP-literal host, the address. Names are checked
    /// when they resolve.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressRefused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressRefused(format!(
                "scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        let host = url.host();
        match &host {
            None => return Err(EgressRefused("the URL has no host".to_owned())),
            Some(Host::Ipv4(address)) => self.check_ip(IpAddr::V4(*address))?,
            Some(Host::Ipv6(address)) => self.check_ip(IpAddr::V6(*address))?,
            Some(Host::Domain(_)) => {}
        }
        match (host, url.port_or_known_default()) {
            (Some(host), Some(port)) => self.check_platform(&host, port),
            _ => Ok(()),
        }
    }
}

/// IPv4 addresses carried inside IPv6 ones are judged as the IPv4 address they reach:
/// mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and
/// 6to4 (`2002:aabb:ccdd::/48`).
pub fn canonicalize(address: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = address else {
        return address;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let segments = v6.segments();
    let embedded_low = || {
        Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        )
    };
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !(v6.is_unspecified() || v6 == Ipv6Addr::LOCALHOST) {
        return IpAddr::V4(embedded_low());
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(embedded_low());
    }
    if segments[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        ));
    }
    address
}

/// Every range refused by default: the IANA IPv4 and IPv6 Special-Purpose
/// Address Registries (RFC 6890 and the RFCs that add to them), cloud
/// metadata endpoints, and multicast. Each row: the range, what it is, its
/// source. The first row that holds an address names the reason, so the
/// narrow metadata rows come before the ranges around them. An allow range
/// in `executor.engine.egress.allow_cidrs` opens a row for an operator.
///
/// Ranges that carry an IPv4 address inside an IPv6 one and reach it
/// (mapped, compatible, NAT64 `64:ff9b::/96`, 6to4) are judged as that IPv4
/// address by [`canonicalize`] first; those rows below catch what is left.
const SPECIAL_PURPOSE: &[(&str, &str, &str)] = &[
    (
        "169.254.169.254/32",
        "cloud metadata",
        "AWS, GCP, Azure instance metadata",
    ),
    (
        "fd00:ec2::254/128",
        "cloud metadata",
        "AWS instance metadata over IPv6",
    ),
    (
        "0.0.0.0/8",
        "unspecified (this-network)",
        "RFC 791, RFC 6890",
    ),
    ("10.0.0.0/8", "private", "RFC 1918"),
    ("100.64.0.0/10", "carrier-grade NAT", "RFC 6598"),
    ("127.0.0.0/8", "loopback", "RFC 1122"),
    ("169.254.0.0/16", "link-local", "RFC 3927"),
    ("172.16.0.0/12", "private", "RFC 1918"),
    ("192.0.0.0/24", "IETF protocol assignment", "RFC 6890"),
    ("192.0.2.0/24", "documentation", "RFC 5737"),
    ("192.31.196.0/24", "AS112 (v4)", "RFC 7535"),
    ("192.52.193.0/24", "AMT relay", "RFC 7450"),
    (
        "192.88.99.0/24",
        "6to4 relay anycast (deprecated)",
        "RFC 7526",
    ),
    ("192.168.0.0/16", "private", "RFC 1918"),
    ("192.175.48.0/24", "AS112 direct delegation", "RFC 7534"),
    ("198.18.0.0/15", "benchmarking", "RFC 2544"),
    ("198.51.100.0/24", "documentation", "RFC 5737"),
    ("203.0.113.0/24", "documentation", "RFC 5737"),
    ("224.0.0.0/4", "multicast", "RFC 5771"),
    ("255.255.255.255/32", "broadcast", "RFC 919, RFC 8190"),
    ("240.0.0.0/4", "reserved", "RFC 1112"),
    ("::/128", "unspecified", "RFC 4291"),
    ("::1/128", "loopback", "RFC 4291"),
    ("::ffff:0:0/96", "IPv4-mapped", "RFC 4291"),
    ("::ffff:0:0:0/96", "IPv4-translated", "RFC 2765, RFC 6145"),
    ("64:ff9b::/96", "IPv4/IPv6 translation (NAT64)", "RFC 6052"),
    (
        "64:ff9b:1::/48",
        "local-use IPv4/IPv6 translation",
        "RFC 8215",
    ),
    ("100::/64", "discard-only", "RFC 6666"),
    ("2001::/23", "IETF protocol assignment", "RFC 2928"),
    ("2001::/32", "Teredo", "RFC 4380, RFC 8190"),
    ("2001:2::/48", "benchmarking", "RFC 5180"),
    ("2001:db8::/32", "documentation", "RFC 3849"),
    ("2001:10::/28", "ORCHID (deprecated)", "RFC 4843"),
    ("2001:20::/28", "ORCHIDv2", "RFC 7343"),
    ("2002::/16", "6to4", "RFC 3056"),
    ("2620:4f:8000::/48", "AS112 (v6)", "RFC 7534"),
    ("3fff::/20", "documentation", "RFC 9637"),
    ("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
    ("fc00::/7", "unique local (private)", "RFC 4193, RFC 8190"),
    ("fe80::/10", "link-local", "RFC 4291"),
    ("fec0::/10", "site-local (deprecated)", "RFC 3879"),
    ("ff00::/8", "multicast", "RFC 4291"),
];

/// [`SPECIAL_PURPOSE`], parsed once.
fn special_purpose() -> &'static [(IpNet, &'static str)] {
    static PARSED: std::sync::OnceLock<Vec<(IpNet, &'static str)>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        SPECIAL_PURPOSE
            .iter()
            .map(|(range, reason, _source)| {
                let net: IpNet = range.parse().expect("the special-purpose table parses");
                (net, *reason)
            })
            .collect()
    })
}

/// Why an (already canonical) address is refused by default, if it is.
fn refusal_reason(address: IpAddr) -> Option<&'static str> {
    special_purpose()
        .iter()
        .find(|(range, _)| range.contains(&address))
        .map(|(_, reason)| *reason)
}

/// Resolves names with the system resolver and keeps only permitted addresses.
#[derive(Clone, Debug)]
pub struct SafeResolver {
    policy: Arc<EgressPolicy>,
}

impl SafeResolver {
    pub fn new(policy: Arc<EgressPolicy>) -> SafeResolver {
        SafeResolver { policy }
    }

    /// Resolves `host` and returns only permitted addresses, or why none is.
    pub async fn resolve_checked(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, EgressRefused> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| EgressRefused(format!("cannot resolve `{host}`: {error}")))?
            .collect();
        let mut first_refusal = None;
        let mut permitted = Vec::new();
        for address in resolved {
            match self.policy.check_socket(address) {
                Ok(()) => permitted.push(address),
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        match (permitted.is_empty(), first_refusal) {
            (false, _) => Ok(permitted),
            (true, Some(refusal)) => {
                Err(EgressRefused(format!("`{host}` resolves to {}", refusal.0)))
            }
            (true, None) => Err(EgressRefused(format!("`{host}` has no addresses"))),
        }
    }
}

impl reqwest::dns::Resolve for SafeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolver.resolve_checked(&host, 0).await?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Whether a refusal is somewhere in an error's source chain.
pub fn find_refusal<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e EgressRefused> {
    find_in_chain(error)
}

/// The first error of type `T` in an error's source chain.
pub fn find_in_chain<'e, T: std::error::Error + 'static>(
    error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        current = cause.source();
    }
    None
}

/// Installs the process-wide rustls provider (ring) once; reqwest built with
/// `rustls-no-provider` panics on its first TLS connection without one. Another part
/// of the process may have installed the same provider first, which is fine.
pub fn install_tls_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client every egress node uses.
pub fn build_client(
    config: &EgressConfig,
    policy: Arc<EgressPolicy>,
    user_agent: &str,
) -> EngineResult<reqwest::Client> {
    install_tls_provider();
    let max_redirects = config.max_redirects as usize;
    let redirect_policy = policy.clone();
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            let refusal = EgressRefused(format!("more than {max_redirects} redirects"));
            return attempt.error(refusal);
        }
        if let Err(refusal) = redirect_policy.check_url(attempt.url()) {
            let refusal = EgressRefused(format!("redirect to {}: {}", attempt.url(), refusal.0));
            return attempt.error(refusal);
        }
        match CREDENTIAL_HOSTS.try_with(|hosts| hosts.clone()) {
            Ok(None) => attempt.follow(),
            Ok(Some(hosts)) => match hosts.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            },
            Err(_) => {
                let refusal = EgressRefused(format!(
                    "redirect to {}: sent without the credential scope that redirects are checked against",
                    attempt.url()
                ));
                attempt.error(refusal)
            }
        }
    });
    reqwest::Client::builder()
        .user_agent(user_agent)
        .no_proxy()
        .redirect(redirect)
        // The executor's retry policy is the only retry: a hidden client retry would repeat
        // side effects behind the node's back.
        .retry(reqwest::retry::never())
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .dns_resolver(Arc::new(SafeResolver::new(policy)))
        .build()
        .map_err(|error| EngineError::HttpClient(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> EgressPolicy {
        EgressPolicy::from_config(&EgressConfig::default()).expect("valid")
    }

    fn refused(policy: &EgressPolicy, url: &str) -> bool {
        policy.check_url(&Url::parse(url).expect("parses")).is_err()
    }

    #[test]
    fn special_addresses_are_refused_in_every_spelling() {
        let policy = default_policy();
        for url in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[fc00::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://192.0.2.1/",
            "file:///etc/passwd",
        ] {
            assert!(refused(&policy, url), "{url} must be refused");
        }
        // The refusal names the address and the key that would open it.
        let refusal = policy
            .check_url(&Url::parse("http://127.0.0.1:8080/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            refusal.contains("127.0.0.1 is a loopback address"),
            "{refusal}"
        );
        assert!(
            refusal.contains("executor.engine.egress.allow_cidrs"),
            "{refusal}"
        );
        assert!(!refused(&policy, "https://93.184.215.14/"));
        assert!(!refused(&policy, "https://[2606:4700::1111]/"));
        assert!(!refused(&policy, "https://example.com/"));
    }

    /// Every row of the table refuses its first address, its last, and one
    /// inside, in every spelling the URL parser accepts; public addresses on
    /// both families stay open.
    #[test]
    fn every_special_purpose_range_is_refused() {
        let policy = default_policy();
        for (range, reason, source) in SPECIAL_PURPOSE {
            let net: IpNet = range.parse().unwrap();
            assert!(!source.is_empty(), "{range} names its source");
            for address in [net.network(), net.broadcast()] {
                let refusal = policy.check_ip(address);
                assert!(refusal.is_err(), "{range} ({reason}): {address} is refused");
            }
        }
        for address in [
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:ffff::1",
            "2001:4:112::1",
            "2620:4f:8000::1",
            "5f00::1",
            "192.88.99.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
        ] {
            let address: IpAddr = address.parse().unwrap();
            assert!(policy.check_ip(address).is_err(), "{address} is refused");
        }
        for address in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            let address: IpAddr = address.parse().unwrap();
            assert!(policy.check_ip(address).is_ok(), "{address} is public");
        }
        assert!(refused(&policy, "http://[::ffff:0:7f00:1]/"));
        assert!(refused(&policy, "http://[64:ff9b:1::7f00:1]/"));
    }

    #[test]
    fn allow_ranges_open_exactly_what_they_name() {
        let policy = EgressPolicy::from_config(&EgressConfig {
            allow_cidrs: vec!["127.0.0.1/32".to_owned(), "::1/128".to_owned()],
            ..EgressConfig::default()
        })
        .expect("valid");
        assert!(!refused(&policy, "http://127.0.0.1:8080/"));
        assert!(!refused(&policy, "http://[::1]/"));
        assert!(!refused(&policy, "http://[::ffff:127.0.0.1]/"));
        assert!(refused(&policy, "http://127.0.0.2/"));
        assert!(refused(&policy, "http://169.254.169.254/"));
    }

    #[test]
    fn the_platforms_own_stores_are_refused_inside_allowed_ranges() {
        let policy = EgressPolicy::from_config(&EgressConfig {
            allow_cidrs: vec![
                "127.0.0.0/8".to_owned(),
                "::1/128".to_owned(),
                "0.0.0.0/8".to_owned(),
            ],
            ..EgressConfig::default()
        })
        .expect("valid")
        .with_platform(&PlatformStores {
            urls: vec![
                "postgres://root:pw@127.0.0.1:5432/postgres".to_owned(),
                "redis://localhost".to_owned(),
                "sqlite:///var/lib/tyboo/executor.db".to_owned(),
            ],
            paths: Vec::new(),
        });
        for url in [
            "http://127.0.0.1:5432/",
            "http://127.0.0.2:5432/",
            "http://[::1]:5432/",
            "http://[::ffff:127.0.0.1]:5432/",
            "http://0.0.0.0:5432/",
            "http://2130706433:5432/",
            "http://localhost:5432/",
            "http://LOCALHOST:6379/",
            "http://127.0.0.1:6379/",
            "https://[::1]:6379/",
        ] {
            assert!(refused(&policy, url), "{url} reaches a platform store");
        }
        assert!(!refused(&policy, "http://127.0.0.1:8080/"));
        assert!(!refused(&policy, "http://localhost:5433/"));
        let socket = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert!(policy.check_socket(socket("127.0.0.1:5432")).is_err());
        assert!(policy.check_socket(socket("[::1]:6379")).is_err());
        assert!(policy.check_socket(socket("127.0.0.1:5433")).is_ok());
    }

    #[test]
    fn a_bad_allow_range_is_a_config_error() {
        let config = EgressConfig {
            allow_cidrs: vec!["10.0.0.0/33".to_owned()],
            ..EgressConfig::default()
        };
        assert!(matches!(
            EgressPolicy::from_config(&config),
            Err(EngineError::InvalidAllowRange { .. })
        ));
    }
}
