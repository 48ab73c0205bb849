//! Metering's settings. Every limit has a default here and a key of the same
//! name in the `metering` section of the configuration.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeteringConfig {
    pub database_max_connections: u32,
    /// Most events one `RecordUsage` call may carry (the contract allows
    /// at most 1000).
    pub max_batch_records: u32,
    /// Most rows each breakdown of `GetWorkspaceUsage` returns (by workflow,
    /// by model); the busiest come first and `truncated` says more exist.
    pub max_breakdown_rows: u32,
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// Rows `ExportUsage` reads from the database at a time.
    pub export_batch_rows: u32,
    /// How far in the future an event's `occurred_at` may be, in seconds:
    /// clocks of the mesh's processes differ a little, never by days.
    pub max_clock_skew_seconds: u32,
    /// The version of `prices` written on every priced row, so that a later
    /// price change never rewrites what was already recorded.
    pub price_version: String,
    /// What each model costs. A model the API reports is priced by the
    /// longest entry its name starts with ("gpt-4o-mini" prices
    /// "gpt-4o-mini-2024-07-18"); a model with no entry costs 0 and its rows
    /// carry no price version.
    pub prices: Vec<ModelPrice>,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        MeteringConfig {
            database_max_connections: 10,
            max_batch_records: 1_000,
            max_breakdown_rows: 1_000,
            page_size_default: 100,
            page_size_max: 1_000,
            export_batch_rows: 500,
            max_clock_skew_seconds: 300,
            price_version: "2026-12".to_owned(),
            prices: Vec::new(),
        }
    }
}

/// The price of one model, in millionths of the currency unit (micros) per
/// million tokens: 150000 is 0.15 per million.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub model: String,
    pub input_micros_per_million_tokens: i64,
    pub output_micros_per_million_tokens: i64,
}

/// The largest price per million tokens accepted: a million units per
/// million tokens, far above any real model, and small enough that a
/// billion tokens at this price cannot overflow a 64-bit cost.
const MAX_PRICE_MICROS: i64 = 1_000_000_000_000;

impl MeteringConfig {
    /// Rejects settings the service cannot run with: one line per problem,
    /// each naming its key within the `metering` section.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems: Vec<String> = Vec::new();
        for (key, value) in [
            ("database_max_connections", self.database_max_connections),
            ("max_batch_records", self.max_batch_records),
            ("max_breakdown_rows", self.max_breakdown_rows),
            ("page_size_default", self.page_size_default),
            ("page_size_max", self.page_size_max),
            ("export_batch_rows", self.export_batch_rows),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be at least 1"));
            }
        }
        if self.page_size_default > self.page_size_max {
            problems.push(format!(
                "page_size_default: {} is more than page_size_max ({})",
                self.page_size_default, self.page_size_max
            ));
        }
        if self.max_batch_records > 1_000 {
            problems.push("max_batch_records: must be at most 1000".to_owned());
        }
        if self.export_batch_rows > 10_000 {
            problems.push("export_batch_rows: must be at most 10000".to_owned());
        }
        let version = self.price_version.trim();
        if version.is_empty() || version.len() > 64 {
            problems.push("price_version: must be 1 to 64 characters".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, price) in self.prices.iter().enumerate() {
            let key = format!("prices.{index}");
            if price.model.trim().is_empty() || price.model.len() > 200 {
                problems.push(format!("{key}.model: must be 1 to 200 characters"));
            } else if !seen.insert(price.model.as_str()) {
                problems.push(format!("{key}.model: {:?} is priced twice", price.model));
            }
            for (field, value) in [
                (
                    "input_micros_per_million_tokens",
                    price.input_micros_per_million_tokens,
                ),
                (
                    "output_micros_per_million_tokens",
                    price.output_micros_per_million_tokens,
                ),
            ] {
                if value < 0 {
                    problems.push(format!("{key}.{field}: must not be negative, got {value}"));
                } else if value > MAX_PRICE_MICROS {
                    problems.push(format!(
                        "{key}.{field}: must be at most {MAX_PRICE_MICROS}, got {value}"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(model: &str, input: i64, output: i64) -> ModelPrice {
        ModelPrice {
            model: model.to_owned(),
            input_micros_per_million_tokens: input,
            output_micros_per_million_tokens: output,
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        MeteringConfig::default().validate().unwrap();
        let config = MeteringConfig {
            max_breakdown_rows: 0,
            page_size_default: 2_000,
            price_version: " ".to_owned(),
            prices: vec![
                price("gpt-4o", 2_500_000, 10_000_000),
                price("gpt-4o", 1, 1),
                price("cheap", -5, 0),
                price("", 0, MAX_PRICE_MICROS + 1),
            ],
            ..MeteringConfig::default()
        };
        let problems = config.validate().unwrap_err();
        for expected in [
            "max_breakdown_rows: must be at least 1",
            "page_size_default: 2000 is more than page_size_max (1000)",
            "price_version: must be 1 to 64 characters",
            "prices.1.model: \"gpt-4o\" is priced twice",
            "prices.2.input_micros_per_million_tokens: must not be negative, got -5",
            "prices.3.model: must be 1 to 200 characters",
            "prices.3.output_micros_per_million_tokens: must be at most",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
    }
}
