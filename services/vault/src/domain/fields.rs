//! A credential's secret fields in memory: string values in buffers that are
//! wiped when dropped, and a `Debug` that shows names only.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::error::{VaultError, VaultResult};

/// Field name → secret value. Every credential type's fields are strings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretFields(BTreeMap<String, Zeroizing<String>>);

impl std::fmt::Debug for SecretFields {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_map()
            .entries(self.0.keys().map(|name| (name, "[redacted]")))
            .finish()
    }
}

impl SecretFields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `value` without copying it, so the only copy is wiped on drop.
    pub fn insert(&mut self, name: String, value: String) {
        self.0.insert(name, Zeroizing::new(value));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|value| value.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The JSON object of the fields, refused when over `max_bytes`.
    pub fn to_json(&self, max_bytes: usize) -> VaultResult<Zeroizing<Vec<u8>>> {
        // JSON escaping grows a character to at most six bytes; reserving that
        // means the buffer never reallocates and leaves no stray copy behind.
        let bound = 2 + self
            .0
            .iter()
            .map(|(name, value)| 6 * (name.len() + value.len()) + 6)
            .sum::<usize>();
        let mut buffer = Zeroizing::new(Vec::with_capacity(bound));
        let borrowed: BTreeMap<&str, &str> = self.iter().collect();
        serde_json::to_writer(&mut *buffer, &borrowed)
            .map_err(|error| VaultError::Internal(format!("encoding fields: {error}")))?;
        if buffer.len() > max_bytes {
            return Err(VaultError::invalid(
                "fields",
                format!("must be at most {max_bytes} bytes as JSON"),
            ));
        }
        Ok(buffer)
    }

    pub fn from_json(bytes: &[u8]) -> VaultResult<SecretFields> {
        let parsed: BTreeMap<String, String> = serde_json::from_slice(bytes).map_err(|_| {
            VaultError::Internal("decrypted fields are not a JSON object of strings".to_owned())
        })?;
        let mut fields = SecretFields::new();
        for (name, value) in parsed {
            fields.insert(name, value);
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_and_never_values() {
        let mut fields = SecretFields::new();
        fields.insert("token".to_owned(), "canary-7f3a".to_owned());
        let shown = format!("{fields:?}");
        assert!(shown.contains("token"));
        assert!(!shown.contains("canary-7f3a"));
    }

    #[test]
    fn json_round_trips_and_is_bounded() {
        let mut fields = SecretFields::new();
        fields.insert(
            "value".to_owned(),
            "line\nbreak \"quoted\" \u{1}".to_owned(),
        );
        let json = fields.to_json(1024).unwrap();
        assert_eq!(SecretFields::from_json(&json).unwrap(), fields);
        let error = fields.to_json(8).unwrap_err().to_string();
        assert!(
            error.starts_with("fields: must be at most 8 bytes"),
            "{error}"
        );
    }
}
