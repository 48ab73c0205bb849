//! The rules: who may read or record usage, what a valid event is, what it
//! costs, and how a month adds up. Storage is reached only through here.

mod access;
pub mod month;
pub mod pricing;
mod recording;
mod report;

use std::sync::Arc;

use tyboo_auth::{KeySource, TokenVerifier};

pub use month::Month;
pub use pricing::{Cost, PriceTable};
pub use recording::{LlmInput, Recorded, UsageInput};
pub use report::UsageReport;

use crate::config::MeteringConfig;
use crate::storage::Store;

/// The service's rules over its store: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Domain {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: MeteringConfig,
    prices: PriceTable,
    verifier: TokenVerifier,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Domain")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Domain {
    pub fn new(store: Store, config: MeteringConfig, key_source: Arc<dyn KeySource>) -> Domain {
        Domain {
            inner: Arc::new(Inner {
                store,
                prices: PriceTable::from_config(&config),
                config,
                verifier: TokenVerifier::new(key_source),
            }),
        }
    }

    pub fn config(&self) -> &MeteringConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }
}
