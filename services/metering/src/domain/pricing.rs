//! What an LLM call costs, from the price table in the configuration.

use crate::config::{MeteringConfig, ModelPrice};

/// The price table in force, with its version.
#[derive(Clone, Debug)]
pub struct PriceTable {
    version: String,
    /// Longest model name first, so the first match is the longest prefix.
    prices: Vec<ModelPrice>,
}

/// A call's cost and the price version it comes from (empty when the model
/// has no price).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    pub micros: i64,
    pub price_version: String,
}

impl PriceTable {
    pub fn from_config(config: &MeteringConfig) -> PriceTable {
        let mut prices = config.prices.clone();
        prices.sort_by(|a, b| {
            b.model
                .len()
                .cmp(&a.model.len())
                .then(a.model.cmp(&b.model))
        });
        PriceTable {
            version: config.price_version.trim().to_owned(),
            prices,
        }
    }

    /// The entry that prices `model`: the exact name, or else the longest
    /// configured name it starts with.
    pub fn price_of(&self, model: &str) -> Option<&ModelPrice> {
        self.prices
            .iter()
            .find(|price| price.model == model)
            .or_else(|| {
                self.prices
                    .iter()
                    .find(|price| model.starts_with(&price.model))
            })
    }

    /// The cost of a call, rounded to the nearest micro (halves up).
    pub fn cost(&self, model: &str, input_tokens: i64, output_tokens: i64) -> Cost {
        let Some(price) = self.price_of(model) else {
            return Cost {
                micros: 0,
                price_version: String::new(),
            };
        };
        // Tokens and prices are bounded (the contract and the configuration
        // check), so the product fits in 128 bits and the cost in 64.
        let numerator = i128::from(input_tokens)
            * i128::from(price.input_micros_per_million_tokens)
            + i128::from(output_tokens) * i128::from(price.output_micros_per_million_tokens);
        let micros = (numerator + 500_000) / 1_000_000;
        Cost {
            micros: i64::try_from(micros).unwrap_or(i64::MAX),
            price_version: self.version.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PriceTable {
        PriceTable::from_config(&MeteringConfig {
            price_version: "v7".to_owned(),
            prices: vec![
                ModelPrice {
                    model: "gpt-4o".to_owned(),
                    input_micros_per_million_tokens: 2_500_000,
                    output_micros_per_million_tokens: 10_000_000,
                },
                ModelPrice {
                    model: "gpt-4o-mini".to_owned(),
                    input_micros_per_million_tokens: 150_000,
                    output_micros_per_million_tokens: 600_000,
                },
            ],
            ..MeteringConfig::default()
        })
    }

    #[test]
    fn the_longest_prefix_prices_a_model_and_costs_round_half_up() {
        let table = table();
        // 1000 × 0.15 + 500 × 0.60 per million: 150 + 300 micros.
        assert_eq!(
            table.cost("gpt-4o-mini-2024-07-18", 1_000, 500),
            Cost {
                micros: 450,
                price_version: "v7".to_owned()
            }
        );
        assert_eq!(table.cost("gpt-4o", 1, 0).micros, 3);
        assert_eq!(table.cost("gpt-4o-2024-08-06", 2, 0).micros, 5);
        // 3 tokens × 0.15 = 0.45 micros: rounds down.
        assert_eq!(table.cost("gpt-4o-mini", 3, 0).micros, 0);
        assert_eq!(
            table.cost("llama-3", 1_000_000, 1_000_000),
            Cost {
                micros: 0,
                price_version: String::new()
            }
        );
        // The largest call the contract allows at the largest price fits.
        let huge = PriceTable::from_config(&MeteringConfig {
            prices: vec![ModelPrice {
                model: "m".to_owned(),
                input_micros_per_million_tokens: 1_000_000_000_000,
                output_micros_per_million_tokens: 1_000_000_000_000,
            }],
            ..MeteringConfig::default()
        });
        assert_eq!(
            huge.cost("m", 1_000_000_000, 1_000_000_000).micros,
            2_000_000_000_000_000
        );
    }
}
