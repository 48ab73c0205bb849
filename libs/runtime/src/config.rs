//! Typed configuration: defaults → optional TOML file → `TYBOO_…` environment
//! (`__` between nested keys) → command-line flags, validated once at start.

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const ENV_PREFIX: &str = "TYBOO_";

/// Why the configuration cannot be used. Its message is for the person who
/// wrote the configuration: each problem names the key as they write it and
/// the environment variable that sets it, with nothing of the program's
/// internals, so `main` prints it as it stands.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} does not exist")]
    MissingFile { path: String },
    #[error("invalid configuration:{}", list(.0))]
    Invalid(Vec<ConfigProblem>),
}

fn list(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|problem| format!("\n  {problem}"))
        .collect()
}

/// One setting that cannot be used: its key in dotted form (`edge.max_body_bytes`,
/// as in the TOML file) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A validation message of the form `key: reason` (or `key reason`) from
    /// the section at `section`, such as `edge`; a message that names no key
    /// is kept whole under the section.
    pub fn from_message(section: &str, message: &str) -> ConfigProblem {
        let key_length = message
            .find(|character: char| {
                !(character.is_ascii_lowercase()
                    || character.is_ascii_digit()
                    || character == '_'
                    || character == '.')
            })
            .unwrap_or(message.len());
        let (key, rest) = message.split_at(key_length);
        let named = rest.starts_with(':');
        let rest = rest
            .strip_prefix(':')
            .unwrap_or(rest)
            .trim_start()
            .to_owned();
        // `key: reason` always names a key; `key reason` only when the word
        // looks like one (snake case) or the reason reads as a rule.
        let looks_like_key = named || key.contains('_') || rest.starts_with("must");
        if key.is_empty() || rest.is_empty() || !looks_like_key {
            return ConfigProblem::new(section, message);
        }
        let full_key = if section.is_empty() {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        };
        ConfigProblem::new(full_key, rest)
    }

    /// The environment variable that sets this key: `TYBOO_EDGE__MAX_BODY_BYTES`.
    pub fn environment_variable(&self) -> String {
        environment_variable(&self.key)
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} ({}): {}",
            self.key,
            self.environment_variable(),
            self.message
        )
    }
}

/// `edge.max_body_bytes` → `TYBOO_EDGE__MAX_BODY_BYTES`.
pub fn environment_variable(key: &str) -> String {
    let path: Vec<String> = key
        .split('.')
        .map(|part| part.to_ascii_uppercase())
        .collect();
    format!("{ENV_PREFIX}{}", path.join("__"))
}

/// Every error figment found, each as the key the user wrote and what that
/// key takes, without figment's source locations or profile names.
fn problems_from(error: figment::Error) -> Vec<ConfigProblem> {
    use figment::error::Kind;
    error
        .into_iter()
        .map(|error| {
            let mut key = error.path.join(".");
            let message = match &error.kind {
                Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                    format!("expected {}, found {actual}", describe_expected(expected))
                }
                Kind::UnknownField(field, expected) => {
                    // Figment's path usually ends with the field already.
                    if error.path.last() != Some(field) {
                        key = if key.is_empty() {
                            field.clone()
                        } else {
                            format!("{key}.{field}")
                        };
                    }
                    if expected.is_empty() {
                        "unknown key".to_owned()
                    } else {
                        format!("unknown key; this section takes {}", expected.join(", "))
                    }
                }
                Kind::UnknownVariant(actual, expected) => {
                    format!("`{actual}` is not one of {}", expected.join(", "))
                }
                other => other.to_string(),
            };
            ConfigProblem::new(key, message)
        })
        .collect()
}

/// Serde's name of a type, as a person reads it.
fn describe_expected(expected: &str) -> String {
    let whole = |max: &str| format!("a whole number from 0 to {max}");
    match expected {
        "u8" => whole("255"),
        "u16" => whole("65535"),
        "u32" => whole("4294967295"),
        "u64" | "usize" => whole("18446744073709551615"),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" | "bool" => "true or false".to_owned(),
        "socket address" => "an address and port such as 127.0.0.1:8080".to_owned(),
        other => other.to_owned(),
    }
}

/// Loads `T` from its defaults, then `file` (which must exist when given),
/// then the environment, then `flags` (only the keys the flags actually set).
///
/// Only environment variables naming a top-level key of `T` are read, so
/// unrelated `TYBOO_…` variables (such as `TYBOO_CONFIG`) are not mistaken for
/// unknown settings.
pub fn load<T>(file: Option<&Path>, flags: &impl Serialize) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    load_from(file, flags, std::env::vars())
}

/// [`load`] with an explicit environment, so tests never touch the process's.
pub fn load_from<T>(
    file: Option<&Path>,
    flags: &impl Serialize,
    environment: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let top_level_keys = top_level_keys(&T::default());
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::MissingFile {
                path: path.display().to_string(),
            });
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Serialized::globals(environment_dict(
        environment,
        &top_level_keys,
    )));
    figment = figment.merge(Serialized::globals(flags));
    figment
        .extract()
        .map_err(|error| ConfigError::Invalid(problems_from(error)))
}

/// Turns `TYBOO_EDGE__MAX_BODY_BYTES=5` into `{edge: {max_body_bytes: 5}}`,
/// parsing each value as figment's environment provider does (numbers,
/// booleans, arrays like `[a, b]`, otherwise a string).
fn environment_dict(
    environment: impl IntoIterator<Item = (String, String)>,
    top_level_keys: &[String],
) -> Dict {
    let mut root = Dict::new();
    for (key, raw_value) in environment {
        let Some(stripped) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = stripped
            .split("__")
            .map(|part| part.to_ascii_lowercase())
            .collect();
        if !top_level_keys.iter().any(|known| *known == path[0]) {
            continue;
        }
        let value = raw_value
            .parse::<Value>()
            .unwrap_or_else(|_| Value::from(raw_value.clone()));
        insert_path(&mut root, &path, value);
    }
    root
}

fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if entry.as_dict().is_none() {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, nested) = entry {
        insert_path(nested, rest, value);
    }
}

fn top_level_keys<T: Serialize>(value: &T) -> Vec<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        size: u64,
        enabled: bool,
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        url: String,
        inner: Inner,
    }

    #[derive(Serialize)]
    struct NoFlags {}

    #[test]
    fn environment_overrides_defaults_and_flags_override_environment() {
        let environment = vec![
            ("TYBOO_INNER__SIZE".to_owned(), "42".to_owned()),
            ("TYBOO_INNER__ENABLED".to_owned(), "true".to_owned()),
            ("TYBOO_URL".to_owned(), "postgres://x".to_owned()),
            ("TYBOO_CONFIG".to_owned(), "ignored".to_owned()),
            ("OTHER".to_owned(), "ignored".to_owned()),
        ];
        let loaded: Sample = load_from(None, &NoFlags {}, environment.clone()).unwrap();
        assert_eq!(loaded.inner.size, 42);
        assert!(loaded.inner.enabled);
        assert_eq!(loaded.url, "postgres://x");

        #[derive(Serialize)]
        struct Flags {
            url: &'static str,
        }
        let loaded: Sample = load_from(None, &Flags { url: "sqlite://y" }, environment).unwrap();
        assert_eq!(loaded.url, "sqlite://y");
    }

    #[test]
    fn unknown_nested_keys_and_bad_types_are_rejected() {
        let environment = vec![("TYBOO_INNER__SIZE".to_owned(), "big".to_owned())];
        let error = load_from::<Sample>(None, &NoFlags {}, environment).unwrap_err();
        assert!(error.to_string().contains("size"), "{error}");
        let environment = vec![("TYBOO_INNER__COLOUR".to_owned(), "red".to_owned())];
        assert!(load_from::<Sample>(None, &NoFlags {}, environment).is_err());
    }

    #[test]
    fn a_bad_value_names_its_key_its_variable_and_what_it_takes_once() {
        let environment = vec![("TYBOO_INNER__SIZE".to_owned(), "abc".to_owned())];
        let error = load_from::<Sample>(None, &NoFlags {}, environment).unwrap_err();
        let ConfigError::Invalid(problems) = &error else {
            panic!("{error}");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "inner.size");
        let text = error.to_string();
        assert_eq!(
            text,
            "invalid configuration:\n  inner.size (TYBOO_INNER__SIZE): expected a whole number \
             from 0 to 18446744073709551615, found string \"abc\""
        );
        assert!(std::error::Error::source(&error).is_none());

        let environment = vec![("TYBOO_INNER__COLOUR".to_owned(), "red".to_owned())];
        let error = load_from::<Sample>(None, &NoFlags {}, environment).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("inner.colour (TYBOO_INNER__COLOUR): unknown key"),
            "{text}"
        );
    }

    #[test]
    fn validation_messages_become_problems_under_their_section() {
        let problem = ConfigProblem::from_message("tenancy", "max_name_length: must be positive");
        assert_eq!(problem.key, "tenancy.max_name_length");
        assert_eq!(problem.message, "must be positive");
        assert_eq!(
            problem.to_string(),
            "tenancy.max_name_length (TYBOO_TENANCY__MAX_NAME_LENGTH): must be positive"
        );
        let problem = ConfigProblem::from_message("edge", "max_body_bytes must be positive");
        assert_eq!(problem.key, "edge.max_body_bytes");
        let problem = ConfigProblem::from_message("vault", "something odd happened");
        assert_eq!(problem.key, "vault");
        assert_eq!(problem.message, "something odd happened");
    }

    #[test]
    fn a_named_file_must_exist() {
        let missing = Path::new("/nonexistent/tyboo.toml");
        assert!(matches!(
            load_from::<Sample>(Some(missing), &NoFlags {}, Vec::new()),
            Err(ConfigError::MissingFile { .. })
        ));
    }
}
