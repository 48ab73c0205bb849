//! Request values that have been checked. Handlers parse into these first;
//! domain functions take them, so unchecked input cannot reach a rule.

use tyboo_auth::{Role, Subject};
use uuid::Uuid;

use crate::error::{TenancyError, TenancyResult};

/// A lowercased, syntactically valid e-mail address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Accepts the common `local@domain.tld` shape (no quoted local parts,
    /// no IP literals): what a person types, checked before mail is sent.
    pub fn parse(field: &'static str, text: &str) -> TenancyResult<Email> {
        let invalid = || TenancyError::invalid(field, "must be a valid e-mail address");
        let email = text.trim().to_lowercase();
        if email.is_empty() || email.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A readable default name for someone who gave none.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or(&self.0)
    }
}

/// A trimmed name of 1 to `max_length` characters without control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &'static str, text: &str, max_length: usize) -> TenancyResult<Name> {
        let name = text.trim();
        let length = name.chars().count();
        if length == 0 || length > max_length {
            return Err(TenancyError::invalid(
                field,
                format!("must be 1 to {max_length} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(TenancyError::invalid(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Name(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A service name as used in `service:<name>` subjects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceName(String);

impl ServiceName {
    pub fn parse(field: &'static str, text: &str) -> TenancyResult<ServiceName> {
        match Subject::parse(&format!("service:{text}")) {
            Some(Subject::Service(name)) => Ok(ServiceName(name)),
            _ => Err(TenancyError::invalid(
                field,
                "must be 1 to 64 lowercase letters, digits or dashes",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role that must be set to one of the four.
pub fn parse_role(field: &'static str, value: i32) -> TenancyResult<Role> {
    if value == 0 {
        return Err(TenancyError::invalid(field, "must be set"));
    }
    Role::from_proto(value)
        .ok_or_else(|| TenancyError::invalid(field, format!("unknown role {value}")))
}

pub fn parse_id(field: &'static str, text: &str) -> TenancyResult<Uuid> {
    if text.is_empty() {
        return Err(TenancyError::invalid(field, "must be set"));
    }
    Uuid::parse_str(text).map_err(|_| TenancyError::invalid(field, "must be a valid id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        let email = Email::parse("email", "  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
        assert_eq!(email.local_part(), "ada.lovelace");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            "ada@-example.com",
            ".ada@example.com",
            "ada..l@example.com",
        ] {
            let error = Email::parse("email", bad).unwrap_err();
            assert_eq!(
                error.to_string(),
                "email: must be a valid e-mail address",
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(Name::parse("name", "  Ops  ", 10).unwrap().as_str(), "Ops");
        assert_eq!(Name::parse("name", "ééééé", 5).unwrap().as_str(), "ééééé");
        assert_eq!(
            Name::parse("name", "   ", 200).unwrap_err().to_string(),
            "name: must be 1 to 200 characters"
        );
        assert!(Name::parse("name", "abcdef", 5).is_err());
        assert!(Name::parse("name", "a\u{0}b", 5).is_err());
    }

    #[test]
    fn roles_must_be_set_and_known() {
        assert_eq!(parse_role("role", 3).unwrap(), Role::Admin);
        assert_eq!(
            parse_role("role", 0).unwrap_err().to_string(),
            "role: must be set"
        );
        assert!(parse_role("role", 42).is_err());
    }

    #[test]
    fn service_names_follow_subject_rules() {
        assert_eq!(
            ServiceName::parse("service", "executor").unwrap().as_str(),
            "executor"
        );
        assert!(ServiceName::parse("service", "Executor").is_err());
        assert!(ServiceName::parse("service", "").is_err());
    }

    #[test]
    fn ids_name_their_field() {
        assert_eq!(
            parse_id("user_id", "nope").unwrap_err().to_string(),
            "user_id: must be a valid id"
        );
        assert!(parse_id("user_id", &Uuid::now_v7().to_string()).is_ok());
    }
}
