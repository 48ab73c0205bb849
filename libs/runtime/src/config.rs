//! Typed configuration: defaults → optional TOML file → `TYBOO_…` environment
//! (`__` between nested keys) → command-line flags, validated once at start.

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const ENV_PREFIX: &str = "TYBOO_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} does not exist")]
    MissingFile { path: String },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
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
        .map_err(|error| ConfigError::Invalid(Box::new(error)))
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
    fn a_named_file_must_exist() {
        let missing = Path::new("/nonexistent/tyboo.toml");
        assert!(matches!(
            load_from::<Sample>(Some(missing), &NoFlags {}, Vec::new()),
            Err(ConfigError::MissingFile { .. })
        ));
    }
}
