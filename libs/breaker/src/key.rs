//! The key of one breaker. Both parts become part of a Redis key, and the
//! node type a metric label, so both are bounded and plain.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{BreakerError, BreakerResult};

/// Node types come from the catalog: few and short.
pub const MAX_NODE_TYPE_LEN: usize = 64;
/// A DNS name (253) with a port and the brackets of an IPv6 literal.
pub const MAX_HOST_LEN: usize = 261;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BreakerKey {
    pub node_type: String,
    /// The target as the call addresses it (`host` or `host:port`), as the
    /// URL parser normalised it, so one target has one breaker.
    pub host: String,
}

impl BreakerKey {
    pub fn new(node_type: impl Into<String>, host: impl Into<String>) -> Self {
        Self {
            node_type: node_type.into(),
            host: host.into(),
        }
    }

    /// Checks the bounds every backend relies on.
    pub fn validate(&self) -> BreakerResult<()> {
        let node_type = &self.node_type;
        if node_type.is_empty() || node_type.len() > MAX_NODE_TYPE_LEN {
            return Err(BreakerError::InvalidKey(format!(
                "node type must be 1 to {MAX_NODE_TYPE_LEN} bytes"
            )));
        }
        let plain =
            |character: char| character.is_ascii_alphanumeric() || "-_.".contains(character);
        if !node_type.chars().all(plain) {
            return Err(BreakerError::InvalidKey(format!(
                "node type {node_type:?} may only contain ASCII letters, digits, '-', '_' and '.'"
            )));
        }
        let host = &self.host;
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return Err(BreakerError::InvalidKey(format!(
                "host must be 1 to {MAX_HOST_LEN} bytes"
            )));
        }
        if !host.chars().all(|character| character.is_ascii_graphic()) {
            return Err(BreakerError::InvalidKey(format!(
                "host {host:?} may only contain printable ASCII without spaces"
            )));
        }
        Ok(())
    }

    /// `node_type|host`: the node type cannot contain `|`, so the first one
    /// splits the pair again.
    pub(crate) fn encode(&self) -> String {
        format!("{}|{}", self.node_type, self.host)
    }

    pub(crate) fn decode(encoded: &str) -> Option<Self> {
        let (node_type, host) = encoded.split_once('|')?;
        Some(Self::new(node_type, host))
    }
}

impl fmt::Display for BreakerKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.node_type, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_cannot_be_key_segments_are_refused() {
        assert!(
            BreakerKey::new("http", "api.example.com:8443")
                .validate()
                .is_ok()
        );
        assert!(BreakerKey::new("http", "[::1]:80").validate().is_ok());
        assert!(BreakerKey::new("", "example.com").validate().is_err());
        assert!(BreakerKey::new("a|b", "example.com").validate().is_err());
        assert!(BreakerKey::new("http", "").validate().is_err());
        assert!(BreakerKey::new("http", "exa mple.com").validate().is_err());
        assert!(BreakerKey::new("http", "exämple.com").validate().is_err());
    }

    #[test]
    fn lengths_are_bounded_at_their_edge() {
        let longest_type = "t".repeat(MAX_NODE_TYPE_LEN);
        assert!(
            BreakerKey::new(longest_type.clone(), "h")
                .validate()
                .is_ok()
        );
        assert!(BreakerKey::new(longest_type + "t", "h").validate().is_err());
        let longest_host = "h".repeat(MAX_HOST_LEN);
        assert!(
            BreakerKey::new("http", longest_host.clone())
                .validate()
                .is_ok()
        );
        assert!(
            BreakerKey::new("http", longest_host + "h")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn encoding_round_trips_hosts_with_separators() {
        let key = BreakerKey::new("http", "odd|host");
        assert_eq!(BreakerKey::decode(&key.encode()), Some(key));
    }
}
