//! The state machine of one breaker, in memory. The Redis scripts make the
//! same transitions on the same stored fields; the conformance suite holds
//! both to them.

use std::collections::VecDeque;

use crate::clock::from_millis;
use crate::state::{Mode, StoredView, Transition};
use crate::{Admission, BreakerConfig, Outcome};

#[derive(Clone, Debug)]
pub(crate) struct Breaker {
    mode: Mode,
    until_ms: i64,
    opened_at_ms: Option<i64>,
    trips: u32,
    probes: u32,
    successes: u32,
    /// When the current half-open round of probes began.
    round_at_ms: i64,
    /// Window buckets by index (time / bucket length), oldest first.
    buckets: VecDeque<Bucket>,
    touched_ms: i64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    index: i64,
    calls: u64,
    failures: u64,
}

impl Breaker {
    pub(crate) fn new(now_ms: i64) -> Self {
        Self {
            mode: Mode::Closed,
            until_ms: 0,
            opened_at_ms: None,
            trips: 0,
            probes: 0,
            successes: 0,
            round_at_ms: 0,
            buckets: VecDeque::new(),
            touched_ms: now_ms,
        }
    }

    /// Forced breakers are an operator's decision and never forgotten.
    pub(crate) fn is_idle(&self, now_ms: i64, config: &BreakerConfig) -> bool {
        let forced = matches!(self.mode, Mode::ForcedOpen | Mode::ForcedClosed);
        !forced && now_ms - self.touched_ms >= crate::config::millis(config.idle_expiry_ms)
    }

    pub(crate) fn view(&mut self, now_ms: i64, config: &BreakerConfig) -> StoredView {
        self.slide(now_ms, config);
        let (calls, failures) = self.window();
        StoredView {
            mode: self.mode,
            until_ms: self.until_ms,
            opened_at_ms: self.opened_at_ms,
            trips: self.trips,
            calls,
            failures,
        }
    }

    pub(crate) fn admit(
        &mut self,
        now_ms: i64,
        config: &BreakerConfig,
    ) -> (Admission, Option<Transition>) {
        let mut transition = None;
        if self.mode == Mode::Open && now_ms >= self.until_ms {
            transition = self.enter(Mode::HalfOpen, now_ms);
            self.start_round(now_ms);
        }
        if self.mode == Mode::HalfOpen
            && self.probes >= config.half_open_probes
            && now_ms >= self.round_at_ms + crate::config::millis(config.probe_timeout_ms)
        {
            self.start_round(now_ms);
        }
        let later = from_millis(now_ms + crate::config::millis(config.cool_down_base_ms));
        let admission = match self.mode {
            Mode::Closed | Mode::ForcedClosed => Admission::Allowed,
            Mode::Open => Admission::Rejected {
                retry_at: from_millis(self.until_ms),
            },
            Mode::ForcedOpen => Admission::Rejected { retry_at: later },
            Mode::HalfOpen if self.probes < config.half_open_probes => {
                self.probes += 1;
                self.touched_ms = now_ms;
                Admission::Probe
            }
            Mode::HalfOpen => Admission::Rejected { retry_at: later },
        };
        (admission, transition)
    }

    pub(crate) fn record(
        &mut self,
        now_ms: i64,
        outcome: Outcome,
        config: &BreakerConfig,
    ) -> Option<Transition> {
        self.slide(now_ms, config);
        let failed = outcome == Outcome::Failure;
        match self.mode {
            Mode::Closed => {
                self.touched_ms = now_ms;
                self.count(now_ms, failed, config);
                let (calls, failures) = self.window();
                let over_threshold =
                    failures * 100 >= u64::from(config.failure_rate_threshold_percent) * calls;
                (failed && calls >= u64::from(config.minimum_calls) && over_threshold)
                    .then(|| self.trip(now_ms, config))
                    .flatten()
            }
            Mode::HalfOpen if failed => {
                self.touched_ms = now_ms;
                self.trip(now_ms, config)
            }
            Mode::HalfOpen => {
                self.touched_ms = now_ms;
                self.successes += 1;
                if self.successes < config.successes_to_close {
                    return None;
                }
                self.trips = 0;
                self.enter(Mode::Closed, now_ms)
            }
            Mode::Open | Mode::ForcedOpen | Mode::ForcedClosed => None,
        }
    }

    pub(crate) fn force(&mut self, mode: Mode, now_ms: i64) -> Option<Transition> {
        self.enter(mode, now_ms)
    }

    fn trip(&mut self, now_ms: i64, config: &BreakerConfig) -> Option<Transition> {
        self.trips = self.trips.saturating_add(1);
        self.opened_at_ms = Some(now_ms);
        self.until_ms = now_ms + config.cool_down_ms(self.trips);
        self.enter(Mode::Open, now_ms)
    }

    /// Every change of mode starts a fresh window and probe round.
    fn enter(&mut self, mode: Mode, now_ms: i64) -> Option<Transition> {
        let transition = Transition::between(self.mode, mode);
        self.mode = mode;
        self.buckets.clear();
        self.start_round(now_ms);
        self.touched_ms = now_ms;
        transition
    }

    fn start_round(&mut self, now_ms: i64) {
        self.probes = 0;
        self.successes = 0;
        self.round_at_ms = now_ms;
    }

    fn count(&mut self, now_ms: i64, failed: bool, config: &BreakerConfig) {
        let index = now_ms.div_euclid(config.bucket_ms());
        let bucket = match self.buckets.back_mut() {
            // A clock a little behind another process's counts into the
            // newest bucket rather than one the window has passed.
            Some(bucket) if bucket.index >= index => bucket,
            _ => {
                self.buckets.push_back(Bucket {
                    index,
                    calls: 0,
                    failures: 0,
                });
                self.buckets.back_mut().expect("just pushed")
            }
        };
        bucket.calls += 1;
        bucket.failures += u64::from(failed);
    }

    /// Drops buckets that have slid out of the window.
    fn slide(&mut self, now_ms: i64, config: &BreakerConfig) {
        let oldest_kept =
            now_ms.div_euclid(config.bucket_ms()) - i64::from(config.window_buckets) + 1;
        while self
            .buckets
            .front()
            .is_some_and(|bucket| bucket.index < oldest_kept)
        {
            self.buckets.pop_front();
        }
    }

    fn window(&self) -> (u64, u64) {
        self.buckets
            .iter()
            .fold((0, 0), |(calls, failures), bucket| {
                (calls + bucket.calls, failures + bucket.failures)
            })
    }
}
