//! Checks of the plain (non-secret) parts of a request.

use crate::error::{VaultError, VaultResult};

/// A credential name: trimmed, non-empty, printable, at most `max` characters.
pub fn name(value: &str, max: usize) -> VaultResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(VaultError::invalid("name", "must be set"));
    }
    if trimmed.chars().count() > max {
        return Err(VaultError::invalid(
            "name",
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(VaultError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Host patterns a credential may be sent to: a host name or address, or
/// `*.` and a domain, with an optional `:port`. Lowercased, deduplicated,
/// in the order given.
pub fn allowed_hosts(hosts: Vec<String>, max: usize) -> VaultResult<Vec<String>> {
    if hosts.len() > max {
        return Err(VaultError::invalid(
            "allowed_hosts",
            format!("must have at most {max} entries"),
        ));
    }
    let mut normalized: Vec<String> = Vec::with_capacity(hosts.len());
    for (index, host) in hosts.into_iter().enumerate() {
        let host = host.trim().to_ascii_lowercase();
        if !is_host_pattern(&host) {
            return Err(VaultError::invalid(
                format!("allowed_hosts[{index}]"),
                "must be a host name, optionally with a leading \"*.\" and a \":port\"",
            ));
        }
        if !normalized.contains(&host) {
            normalized.push(host);
        }
    }
    Ok(normalized)
}

fn is_host_pattern(pattern: &str) -> bool {
    let (host, port) = match pattern.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (pattern, None),
    };
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |port| port == 0)
    {
        return false;
    }
    let domain = host.strip_prefix("*.").unwrap_or(host);
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let accepted = allowed_hosts(
            vec![
                "API.openai.com".into(),
                "*.slack.com".into(),
                "db.internal:5432".into(),
                "10.0.0.7".into(),
                "api.openai.com".into(),
            ],
            10,
        )
        .unwrap();
        assert_eq!(
            accepted,
            [
                "api.openai.com",
                "*.slack.com",
                "db.internal:5432",
                "10.0.0.7"
            ]
        );
        for refused in [
            "",
            "*",
            "a..b",
            "-a.com",
            "host:0",
            "host:99999",
            "a/b",
            "*.*.com",
        ] {
            let error = allowed_hosts(vec!["ok.com".into(), refused.into()], 10).unwrap_err();
            assert!(
                error.to_string().starts_with("allowed_hosts[1]:"),
                "{refused}"
            );
        }
        assert!(allowed_hosts(vec!["a.com".into(); 3], 2).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Slack prod ", 20).unwrap(), "Slack prod");
        assert!(name("   ", 20).is_err());
        assert!(name("x".repeat(21).as_str(), 20).is_err());
        assert!(name("a\u{7}b", 20).is_err());
    }
}
