//! Keeping a node's live secrets out of everything it hands back.
//!
//! A secret rarely comes back the way it was stored. An upstream echoes the
//! `Authorization: Basic …` header it received (the password, base64'd
//! together with the user name); an HTTP client prints the URL it failed to
//! reach in its normalised form; a query string carries it percent-encoded;
//! a JSON body carries it escaped. So a [`Redactor`] knows every form a
//! secret takes on the way out — as stored, as sent in a header, base64 at
//! any alignment inside a longer base64 text (standard and URL alphabets),
//! percent-encoded, JSON-escaped, hex, and a URL's normalised spelling and
//! its password — and replaces each wherever it stands.
//!
//! Every secret field is redacted whatever its length. The vault refuses
//! secret fields shorter than its minimum when they are written, so a short
//! secret here is a row written before that rule; redacting it may hide an
//! ordinary word too, which is the honest trade. Fields that are not secrets
//! (`allowed_hosts`, a database `driver`, an API `base_url`, header names)
//! are not redacted, so error messages can still name a refused host.
//!
//! Text is redacted before it is cut to an excerpt ([`Redactor::excerpt`]),
//! so a cut can never leave a secret minus its last characters behind.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::nodes::CREDENTIAL_ALLOWED_HOSTS;

/// What stands in the place of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// Credential fields that are not secrets: redacting them would only hide
/// what an error message needs to say.
const NOT_SECRET: &[&str] = &[CREDENTIAL_ALLOWED_HOSTS, "driver", "base_url"];

/// A basic-auth user name is an identity, not a secret, unless it is long
/// enough to be a key (Stripe sends its secret key as the user name).
const USERNAME_AS_SECRET_MIN: usize = 8;

/// Base64 cores shorter than this would match unrelated base64 text.
const MIN_BASE64_CORE: usize = 6;

/// The forms of one credential's secrets, longest first so a form that
/// contains another is replaced whole. Copies of plaintext: zeroized on drop.
#[derive(Default)]
pub(crate) struct Redactor {
    forms: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Redactor")
            .field("forms", &self.forms.len())
            .finish()
    }
}

impl Redactor {
    /// The redactor for a node's credential (in the shape the nodes read:
    /// `headers`, `bearer_token`, `basic`, `api_key`, `url`, …).
    pub(crate) fn new(credential: Option<&Value>) -> Redactor {
        let mut redactor = Redactor::default();
        let Some(Value::Object(fields)) = credential else {
            return redactor;
        };
        for (name, value) in fields {
            if NOT_SECRET.contains(&name.as_str()) {
                continue;
            }
            match (name.as_str(), value) {
                ("basic", Value::Object(basic)) => {
                    let username = basic.get("username").and_then(Value::as_str);
                    let password = basic.get("password").and_then(Value::as_str);
                    if let Some(password) = password {
                        redactor.add(password);
                    }
                    if let Some(username) = username
                        && username.chars().count() >= USERNAME_AS_SECRET_MIN
                    {
                        redactor.add(username);
                    }
                    // The header value exactly as it is sent.
                    if let Some(username) = username {
                        let sent = basic_credentials(username, password);
                        redactor.add(&sent);
                    }
                }
                (_, value) => redactor.add_strings(value),
            }
        }
        redactor.forms.sort_by(|left, right| {
            right
                .len()
                .cmp(&left.len())
                .then_with(|| left.as_str().cmp(right.as_str()))
        });
        redactor
            .forms
            .dedup_by(|left, right| left.as_str() == right.as_str());
        redactor
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// Every string value below `value` (object keys are names, not secrets).
    fn add_strings(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.add(text),
            Value::Array(items) => items.iter().for_each(|item| self.add_strings(item)),
            Value::Object(fields) => fields.values().for_each(|field| self.add_strings(field)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// One secret and every form derived from it.
    fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut push = |form: String| {
            if !form.is_empty() {
                self.forms.push(Zeroizing::new(form));
            }
        };
        push(secret.to_owned());
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        push(escaped[1..escaped.len().saturating_sub(1)].to_owned());
        push(utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string());
        push(form_urlencoded::byte_serialize(secret.as_bytes()).collect());
        push(hex::encode(secret));
        push(hex::encode_upper(secret));
        for core in base64_cores(secret.as_bytes()) {
            push(core);
        }
        if let Ok(url) = url::Url::parse(secret)
            && url.has_host()
        {
            let normalised = url.as_str().to_owned();
            push(normalised.trim_end_matches('/').to_owned());
            push(normalised);
            if let Some(password) = url.password() {
                let decoded = percent_encoding::percent_decode_str(password)
                    .decode_utf8_lossy()
                    .into_owned();
                push(password.to_owned());
                push(decoded);
            }
            let mut rest = url.path().to_owned();
            if let Some(query) = url.query() {
                rest.push('?');
                rest.push_str(query);
            }
            // The path of a URL whose whole text is the secret (a Slack
            // webhook) is the secret part; a bare "/" is not.
            if rest.trim_matches('/').len() >= MIN_BASE64_CORE {
                push(rest);
            }
        }
    }

    /// `text` with every form of every secret replaced.
    pub(crate) fn text(&self, text: &str) -> String {
        let mut redacted = text.to_owned();
        for form in &self.forms {
            if redacted.contains(form.as_str()) {
                redacted = redacted.replace(form.as_str(), REDACTED);
            }
        }
        redacted
    }

    /// The first `max_chars` characters of `text`, redacted before the cut.
    pub(crate) fn excerpt(&self, text: &str, max_chars: usize) -> String {
        let redacted = self.text(text);
        let excerpt: String = redacted.chars().take(max_chars).collect();
        excerpt.trim().to_owned()
    }

    /// `value` with every string (keys too) redacted.
    pub(crate) fn value(&self, value: Value) -> Value {
        if self.is_empty() {
            return value;
        }
        match value {
            Value::String(text) => Value::String(self.text(&text)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|item| self.value(item)).collect())
            }
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(key, field)| (self.text(&key), self.value(field)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// `user:password` base64'd, as the `Authorization: Basic` value carries it
/// (RFC 7617); the http node sends exactly this.
pub(crate) fn basic_credentials(username: &str, password: Option<&str>) -> String {
    let pair = format!("{username}:{}", password.unwrap_or_default());
    base64::engine::general_purpose::STANDARD.encode(pair)
}

/// The base64 characters that encode `secret` wherever it starts inside a
/// longer base64 text: for each of the three byte alignments, the part of
/// the encoding that depends on the secret's bytes alone, in both alphabets.
fn base64_cores(secret: &[u8]) -> Vec<String> {
    let mut cores = Vec::new();
    for offset in 0..3usize {
        let mut shifted = vec![0u8; offset];
        shifted.extend_from_slice(secret);
        // Characters that mix in the padding bytes before the secret, and
        // the bits after it (which depend on what follows), are dropped.
        let start = (offset * 8).div_ceil(6);
        let end = (shifted.len() * 8) / 6;
        if end <= start || end - start < MIN_BASE64_CORE {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&shifted);
            cores.push(encoded[start..end].to_owned());
        }
    }
    cores
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use serde_json::json;

    use super::*;

    const PASSWORD: &str = "correct-horse-battery";

    fn basic() -> Redactor {
        Redactor::new(Some(
            &json!({"basic": {"username": "api", "password": PASSWORD}}),
        ))
    }

    #[test]
    fn the_secret_as_stored_is_redacted() {
        let redactor = Redactor::new(Some(&json!({"api_key": "sk-live-123456"})));
        assert_eq!(redactor.text("key=sk-live-123456"), "key=[redacted]");
    }

    #[test]
    fn an_echoed_basic_header_is_redacted() {
        let redactor = basic();
        let sent = basic_credentials("api", Some(PASSWORD));
        let echoed = format!("{{\"authorization\": \"Basic {sent}\"}}");
        assert_eq!(
            redactor.text(&echoed),
            "{\"authorization\": \"Basic [redacted]\"}"
        );
        // The short user name alone is not a secret.
        assert_eq!(redactor.text("user api"), "user api");
    }

    #[test]
    fn base64_of_the_secret_is_redacted_at_every_alignment() {
        let redactor = basic();
        for prefix in ["", "a", "ab", "abc", "user:", "x:"] {
            for engine in [&STANDARD, &URL_SAFE] {
                let encoded = engine.encode(format!("{prefix}{PASSWORD}and more after"));
                let redacted = redactor.text(&encoded);
                assert!(redacted.contains(REDACTED), "{prefix:?}: {redacted}");
                // What is left cannot be decoded back into the password.
                let left = redacted.replace(REDACTED, "");
                for piece in left.split(|c: char| !c.is_ascii_alphanumeric()) {
                    let decoded = STANDARD_NO_PAD.decode(piece).unwrap_or_default();
                    assert!(
                        !String::from_utf8_lossy(&decoded).contains("horse"),
                        "{prefix:?}: {redacted}"
                    );
                }
            }
        }
    }

    #[test]
    fn encoded_and_escaped_forms_are_redacted() {
        let secret = "p@ss w/rd\"quoted\"+&=";
        let redactor = Redactor::new(Some(&json!({"bearer_token": secret})));
        let forms = [
            utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
            form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
            serde_json::to_string(secret).unwrap(),
            hex::encode(secret),
        ];
        for form in forms {
            let redacted = redactor.text(&format!("seen: {form}"));
            assert!(
                redacted == "seen: [redacted]" || redacted == "seen: \"[redacted]\"",
                "{form}: {redacted}"
            );
        }
    }

    #[test]
    fn a_url_secret_is_redacted_in_its_normalised_form() {
        let webhook = "HTTPS://Hooks.Slack.com:443/services/T0/B0/SECRETsecret";
        let redactor = Redactor::new(Some(&json!({"webhook_url": webhook})));
        let normalised = url::Url::parse(webhook).unwrap().to_string();
        assert_ne!(normalised, webhook);
        let message = format!("error sending request for url ({normalised})");
        assert!(!redactor.text(&message).contains("SECRET"));
        assert!(
            !redactor
                .text("POST /services/T0/B0/SECRETsecret")
                .contains("SECRET")
        );
    }

    #[test]
    fn a_database_url_password_is_redacted_alone() {
        let url = "postgres://app:s3cr%40t-pass@db.example:5432/app";
        let redactor = Redactor::new(Some(&json!({"driver": "postgres", "url": url})));
        assert!(!redactor.text("auth s3cr@t-pass failed").contains("s3cr"));
        assert!(!redactor.text("auth s3cr%40t-pass failed").contains("s3cr"));
        // The driver is not a secret.
        assert_eq!(redactor.text("driver postgres"), "driver postgres");
    }

    #[test]
    fn excerpts_are_cut_after_redaction() {
        let token = "tok-0123456789abcdef";
        let redactor = Redactor::new(Some(&json!({"bearer_token": token})));
        // The cut would fall inside the token: before, the token minus its
        // last characters was left in the excerpt.
        let body = format!("{}{token}", "x".repeat(290));
        let excerpt = redactor.excerpt(&body, 300);
        assert!(!excerpt.contains("tok-0123"), "{excerpt}");
        assert!(excerpt.ends_with("[redac") || excerpt.contains(REDACTED));
    }

    #[test]
    fn short_secrets_are_redacted_too() {
        let redactor = Redactor::new(Some(&json!({"bearer_token": "abc"})));
        assert_eq!(redactor.text("token abc"), "token [redacted]");
    }

    #[test]
    fn fields_that_are_not_secrets_stay() {
        let redactor = Redactor::new(Some(&json!({
            "api_key": "sk-live-123456",
            "base_url": "http://models.internal:11434/v1",
            "allowed_hosts": ["models.internal"],
        })));
        assert_eq!(
            redactor.text("egress refused: models.internal is private"),
            "egress refused: models.internal is private"
        );
        // Header names are keys: only their values are secrets.
        let headers = Redactor::new(Some(&json!({"headers": {"X-Api-Key": "key-material-1"}})));
        assert_eq!(
            headers.text("X-Api-Key: key-material-1"),
            "X-Api-Key: [redacted]"
        );
    }

    #[test]
    fn values_are_redacted_in_keys_and_strings() {
        let redactor = Redactor::new(Some(&json!({"api_key": "sk-live-123456"})));
        let value = redactor.value(json!({"sk-live-123456": ["a sk-live-123456", 3]}));
        assert_eq!(value, json!({"[redacted]": ["a [redacted]", 3]}));
    }
}
