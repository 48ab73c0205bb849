//! Where leases read the time. Production uses the system clock; tests move a
//! manual clock by hand, so that "expires at exactly its ttl" is checked at
//! the very millisecond instead of by sleeping.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move. Clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a test clock moves by a sane amount");
        *self.lock() += by;
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    fn lock(&self) -> MutexGuard<'_, DateTime<Utc>> {
        // A plain value: a panic while it was held cannot leave it half set.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_of_a_manual_clock_move_together() {
        let start = DateTime::from_timestamp_millis(1_000).expect("valid time");
        let clock = ManualClock::new(start);
        let other = clock.clone();
        clock.advance(Duration::from_millis(250));
        assert_eq!(other.now().timestamp_millis(), 1_250);
        other.set(start);
        assert_eq!(clock.now(), start);
    }
}
