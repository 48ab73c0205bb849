//! The credential types, the schema of their fields, and the checks that
//! reject bad fields by name. Messages never quote a value: it is a secret.

use serde_json::{Value, json};

use super::fields::SecretFields;
use crate::error::{VaultError, VaultResult};

/// What a field's value must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Any text, empty allowed or not.
    Text {
        allow_empty: bool,
    },
    /// An HTTP header name (an RFC 9110 token).
    HeaderName,
    /// Text without line breaks, which would smuggle extra headers.
    SingleLine,
    /// An absolute URL with a host; `https_only` refuses plain http.
    Url {
        https_only: bool,
    },
    OneOf(&'static [&'static str]),
}

#[derive(Clone, Copy, Debug)]
struct FieldSpec {
    name: &'static str,
    description: &'static str,
    required: bool,
    format: Format,
    /// Redacted wherever a node would return it, so held to the minimum
    /// length (`vault.min_secret_chars`) when not empty.
    secret: bool,
}

#[derive(Debug)]
pub struct CredentialTypeSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    fields: &'static [FieldSpec],
    /// Any string keys at all (the key-value type).
    open_map: bool,
}

/// A field that is not a secret: a name, a driver, a base URL.
const fn field(
    name: &'static str,
    description: &'static str,
    required: bool,
    format: Format,
) -> FieldSpec {
    FieldSpec {
        name,
        description,
        required,
        format,
        secret: false,
    }
}

/// A field whose value is a secret.
const fn secret(
    name: &'static str,
    description: &'static str,
    required: bool,
    format: Format,
) -> FieldSpec {
    FieldSpec {
        secret: true,
        ..field(name, description, required, format)
    }
}

const CATALOG: &[CredentialTypeSpec] = &[
    CredentialTypeSpec {
        name: "http_header",
        title: "HTTP header",
        description: "A header sent with every request, such as X-API-Key.",
        fields: &[
            field("name", "The header name.", true, Format::HeaderName),
            secret("value", "The header value.", true, Format::SingleLine),
        ],
        open_map: false,
    },
    CredentialTypeSpec {
        name: "bearer_token",
        title: "Bearer token",
        description: "Sent as `Authorization: Bearer <token>`.",
        fields: &[secret("token", "The token.", true, Format::SingleLine)],
        open_map: false,
    },
    CredentialTypeSpec {
        name: "basic_auth",
        title: "Basic authentication",
        description: "Sent as `Authorization: Basic …`.",
        fields: &[
            field(
                "username",
                "Must not contain ':'.",
                true,
                Format::SingleLine,
            ),
            secret(
                "password",
                "May be empty.",
                true,
                Format::Text { allow_empty: true },
            ),
        ],
        open_map: false,
    },
    CredentialTypeSpec {
        name: "openai_api_key",
        title: "OpenAI-compatible API key",
        description: "For llm.chat against OpenAI or any compatible API.",
        fields: &[
            secret("api_key", "The API key.", true, Format::SingleLine),
            field(
                "base_url",
                "The API's base URL; unset means https://api.openai.com/v1.",
                false,
                Format::Url { https_only: false },
            ),
        ],
        open_map: false,
    },
    CredentialTypeSpec {
        name: "slack_webhook",
        title: "Slack incoming webhook",
        description: "The webhook URL that slack.message posts to.",
        fields: &[secret(
            "url",
            "The https webhook URL.",
            true,
            Format::Url { https_only: true },
        )],
        open_map: false,
    },
    CredentialTypeSpec {
        name: "database",
        title: "Database connection",
        description: "A PostgreSQL or SQLite connection for sql.query.",
        fields: &[
            field(
                "driver",
                "postgres or sqlite.",
                true,
                Format::OneOf(&["postgres", "sqlite"]),
            ),
            secret(
                "url",
                "postgres://… or sqlite:….",
                true,
                Format::Text { allow_empty: false },
            ),
        ],
        open_map: false,
    },
    CredentialTypeSpec {
        name: "webhook_signing_secret",
        title: "Webhook signing secret",
        description: "The shared secret a sender signs webhook requests with (GitHub, Stripe); trigger.webhook checks every request against it.",
        fields: &[secret(
            "secret",
            "The signing secret, as the sender shows it.",
            true,
            Format::SingleLine,
        )],
        open_map: false,
    },
    CredentialTypeSpec {
        name: "key_value",
        title: "Key-value secrets",
        description: "Any named string secrets, for nodes that take them by key.",
        fields: &[],
        open_map: true,
    },
];

/// Every credential type, in a stable order.
pub fn catalog() -> &'static [CredentialTypeSpec] {
    CATALOG
}

pub fn find(name: &str) -> Option<&'static CredentialTypeSpec> {
    CATALOG.iter().find(|spec| spec.name == name)
}

/// The type named `name`, or INVALID_ARGUMENT on `field`.
pub fn require(field: &str, name: &str) -> VaultResult<&'static CredentialTypeSpec> {
    if name.is_empty() {
        return Err(VaultError::invalid(field, "must be set"));
    }
    find(name).ok_or_else(|| {
        VaultError::invalid(
            field,
            format!(
                "unknown credential type {name:?}; one of {}",
                CATALOG
                    .iter()
                    .map(|spec| spec.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Longest key of a key-value credential.
const MAX_KEY_LENGTH: usize = 128;

impl CredentialTypeSpec {
    /// Rejects fields that do not fit the type, naming the first at fault;
    /// a non-empty secret must have at least `min_secret_chars` characters.
    pub fn validate(&self, fields: &SecretFields, min_secret_chars: usize) -> VaultResult<()> {
        if self.open_map {
            validate_open_map(fields)?;
            for name in fields.names() {
                let value = fields.get(name).unwrap_or_default();
                check_secret_length(&format!("fields.{name}"), value, min_secret_chars)?;
            }
            return Ok(());
        }
        for name in fields.names() {
            if !self.fields.iter().any(|spec| spec.name == name) {
                return Err(VaultError::invalid(
                    format!("fields.{name}"),
                    format!("is not a field of {}", self.name),
                ));
            }
        }
        for spec in self.fields {
            let path = format!("fields.{}", spec.name);
            match fields.get(spec.name) {
                None if spec.required => return Err(VaultError::invalid(path, "must be set")),
                None => {}
                Some(value) => {
                    check_format(&path, spec.format, value)?;
                    if spec.secret {
                        check_secret_length(&path, value, min_secret_chars)?;
                    }
                }
            }
        }
        if self.name == "basic_auth" && fields.get("username").is_some_and(|v| v.contains(':')) {
            return Err(VaultError::invalid(
                "fields.username",
                "must not contain ':'",
            ));
        }
        if self.name == "database" {
            validate_database_url(fields)?;
        }
        Ok(())
    }

    /// A JSON schema of the type's fields.
    pub fn schema(&self) -> Value {
        if self.open_map {
            return json!({
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[A-Za-z0-9_.-]{1,128}$"},
                "additionalProperties": {"type": "string", "writeOnly": true},
            });
        }
        let mut properties = serde_json::Map::new();
        for spec in self.fields {
            let mut property = json!({
                "type": "string",
                "description": spec.description,
                "writeOnly": true,
            });
            match spec.format {
                Format::Url { .. } => property["format"] = json!("uri"),
                Format::OneOf(choices) => property["enum"] = json!(choices),
                Format::Text { allow_empty: false } | Format::HeaderName | Format::SingleLine => {
                    property["minLength"] = json!(1)
                }
                Format::Text { allow_empty: true } => {}
            }
            properties.insert(spec.name.to_owned(), property);
        }
        let required: Vec<&str> = self
            .fields
            .iter()
            .filter(|spec| spec.required)
            .map(|spec| spec.name)
            .collect();
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }
}

/// Says how long the value is, never what it is.
fn check_secret_length(path: &str, value: &str, min_secret_chars: usize) -> VaultResult<()> {
    let length = value.chars().count();
    if length == 0 || length >= min_secret_chars {
        return Ok(());
    }
    Err(VaultError::invalid(
        path,
        format!(
            "is {length} characters; a secret must have at least {min_secret_chars} \
             (vault.min_secret_chars), so that redacting it hides nothing else"
        ),
    ))
}

fn check_format(path: &str, format: Format, value: &str) -> VaultResult<()> {
    let not_empty = |value: &str| {
        if value.is_empty() {
            Err(VaultError::invalid(path, "must be set"))
        } else {
            Ok(())
        }
    };
    match format {
        Format::Text { allow_empty } => {
            if !allow_empty {
                not_empty(value)?;
            }
            Ok(())
        }
        Format::SingleLine => {
            not_empty(value)?;
            if value.contains(['\r', '\n', '\0']) {
                return Err(VaultError::invalid(path, "must not contain line breaks"));
            }
            Ok(())
        }
        Format::HeaderName => {
            not_empty(value)?;
            let is_token_char =
                |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
            if !value.bytes().all(is_token_char) {
                return Err(VaultError::invalid(path, "is not a valid HTTP header name"));
            }
            Ok(())
        }
        Format::Url { https_only } => {
            not_empty(value)?;
            let url = url::Url::parse(value)
                .map_err(|_| VaultError::invalid(path, "is not an absolute URL"))?;
            let allowed_scheme = url.scheme() == "https" || (!https_only && url.scheme() == "http");
            if !allowed_scheme {
                let wanted = if https_only { "https" } else { "http or https" };
                return Err(VaultError::invalid(
                    path,
                    format!("must be an {wanted} URL"),
                ));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(VaultError::invalid(path, "must name a host"));
            }
            Ok(())
        }
        Format::OneOf(choices) => {
            if choices.contains(&value) {
                Ok(())
            } else {
                Err(VaultError::invalid(
                    path,
                    format!("must be one of {}", choices.join(", ")),
                ))
            }
        }
    }
}

fn validate_open_map(fields: &SecretFields) -> VaultResult<()> {
    if fields.is_empty() {
        return Err(VaultError::invalid(
            "fields",
            "must have at least one entry",
        ));
    }
    for name in fields.names() {
        let valid = !name.is_empty()
            && name.len() <= MAX_KEY_LENGTH
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"_.-".contains(&byte));
        if !valid {
            // The key is not secret, but it may be garbage: show its length
            // rather than echo it.
            return Err(VaultError::invalid(
                "fields",
                format!(
                    "keys must be 1 to {MAX_KEY_LENGTH} of A-Z a-z 0-9 _ . - \
                     (a key of {} bytes is not)",
                    name.len()
                ),
            ));
        }
    }
    Ok(())
}

/// The URL must suit the driver, so a worker never hands a PostgreSQL URL to
/// the SQLite driver or the other way round.
fn validate_database_url(fields: &SecretFields) -> VaultResult<()> {
    let (Some(driver), Some(url)) = (fields.get("driver"), fields.get("url")) else {
        return Ok(());
    };
    let fits = match driver {
        "postgres" => url.starts_with("postgres://") || url.starts_with("postgresql://"),
        _ => url.starts_with("sqlite:"),
    };
    if fits {
        Ok(())
    } else {
        let wanted = if driver == "postgres" {
            "postgres:// or postgresql://"
        } else {
            "sqlite:"
        };
        Err(VaultError::invalid(
            "fields.url",
            format!("must start with {wanted} for driver {driver}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_names_every_type_of_the_catalog() {
        use tyboo_proto::buf::validate::field_rules::Type;
        use tyboo_proto::validation::{FieldConstraints, Validator};
        let names: Vec<&str> = catalog().iter().map(|spec| spec.name).collect();
        for message in [
            "tyboo.vault.v1.CreateCredentialRequest",
            "tyboo.vault.v1.ListCredentialsRequest",
        ] {
            let descriptor = Validator::global().descriptor(message).unwrap();
            let field = descriptor.get_field_by_name("type").unwrap();
            let Some(Type::String(rules)) = FieldConstraints::of(&field).rules else {
                panic!("{message}.type has no string rules");
            };
            assert_eq!(rules.r#in, names, "{message}.type");
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> SecretFields {
        let mut fields = SecretFields::new();
        for (name, value) in pairs {
            fields.insert((*name).to_owned(), (*value).to_owned());
        }
        fields
    }

    fn rejection(type_name: &str, pairs: &[(&str, &str)]) -> String {
        find(type_name)
            .unwrap()
            .validate(&fields(pairs), 8)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn schemas_are_objects_that_list_required_fields() {
        for spec in catalog() {
            let schema = spec.schema();
            assert_eq!(schema["type"], "object", "{}", spec.name);
        }
        assert_eq!(
            find("basic_auth").unwrap().schema()["required"],
            json!(["username", "password"])
        );
    }

    #[test]
    fn secrets_shorter_than_the_minimum_are_refused() {
        let spec = find("bearer_token").unwrap();
        assert!(spec.validate(&fields(&[("token", "1234567")]), 8).is_err());
        assert!(spec.validate(&fields(&[("token", "12345678")]), 8).is_ok());
        let message = rejection("bearer_token", &[("token", "seven77")]);
        assert_eq!(
            message,
            "fields.token: is 7 characters; a secret must have at least 8 \
             (vault.min_secret_chars), so that redacting it hides nothing else"
        );
        // Characters, not bytes.
        assert!(spec.validate(&fields(&[("token", "ééééééé")]), 8).is_err());
        let message = rejection("key_value", &[("region", "eu")]);
        assert!(
            message.starts_with("fields.region: is 2 characters"),
            "{message}"
        );
        // An empty password is no secret (an API key sent as the user name).
        let basic = find("basic_auth").unwrap();
        assert!(
            basic
                .validate(&fields(&[("username", "sk_test_key"), ("password", "")]), 8)
                .is_ok()
        );
        // Names are not secrets.
        assert!(
            find("http_header")
                .unwrap()
                .validate(&fields(&[("name", "X-Key"), ("value", "value-long")]), 8)
                .is_ok()
        );
    }

    #[test]
    fn secrets_never_appear_in_rejections() {
        let message = rejection("bearer_token", &[("token", "canary\nX-Evil: 1")]);
        assert_eq!(message, "fields.token: must not contain line breaks");
        let message = rejection("slack_webhook", &[("url", "http://canary.example/hook")]);
        assert_eq!(message, "fields.url: must be an https URL");
    }
}
