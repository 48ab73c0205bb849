//! Where a limiter reads the time. Every backend takes a [`Clock`] so that
//! tests move time by hand and assert exact values, and so that the Redis
//! script computes with the caller's time rather than its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Time since the Unix epoch. Replicas sharing a Redis limit must agree
    /// on it (NTP); each one's skew only shifts its own view of the TAT.
    fn now(&self) -> Duration;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

/// The wall clock. A step backwards makes keys wait longer, never shorter.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

/// A clock that moves only when told to, with microsecond resolution (the
/// limiters' unit). Clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start: Duration) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(to_micros(start))),
        }
    }

    /// Starts at the current wall-clock time, so that TATs stored in a real
    /// Redis expire when they would in production.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    pub fn advance(&self, by: Duration) {
        self.micros.fetch_add(to_micros(by), Ordering::SeqCst);
    }

    pub fn set(&self, to: Duration) {
        self.micros.store(to_micros(to), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

pub(crate) fn to_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Duration::from_secs(10));
        let shared = clock.clone();
        assert_eq!(clock.now(), Duration::from_secs(10));
        shared.advance(Duration::from_micros(1));
        assert_eq!(clock.now(), Duration::from_micros(10_000_001));
        shared.set(Duration::from_secs(3));
        assert_eq!(clock.now(), Duration::from_secs(3));
    }
}
