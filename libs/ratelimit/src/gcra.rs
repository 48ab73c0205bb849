//! The GCRA arithmetic, once. The in-process limiter calls [`step`] under a
//! lock; the Redis script is a line-for-line copy of it in Lua. Both turn
//! their result into a [`Decision`] with [`decision`], so the two backends
//! cannot drift apart in what they report.

use std::time::Duration;

use crate::{Decision, Quota};

/// The outcome of one check: whether it was allowed, and the key's TAT
/// afterwards (never before `now`; unchanged by a refusal except for being
/// lifted to `now`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) allowed: bool,
    pub(crate) tat: u64,
}

/// One check of `cost` units at `now` (µs) against a key whose stored TAT is
/// `stored` (absent for a key never seen or expired).
pub(crate) fn step(quota: &Quota, stored: Option<u64>, now: u64, cost: u32) -> Step {
    let interval = quota.interval_micros();
    let tolerance = quota.tolerance_micros();
    let tat = stored.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(interval.saturating_mul(u64::from(cost)));
    let allow_at = new_tat.saturating_sub(interval).saturating_sub(tolerance);
    if allow_at <= now {
        Step {
            allowed: true,
            tat: new_tat,
        }
    } else {
        Step {
            allowed: false,
            tat,
        }
    }
}

pub(crate) fn decision(quota: &Quota, step: Step, now: u64, cost: u32) -> Decision {
    let interval = quota.interval_micros();
    let capacity = quota.tolerance_micros().saturating_add(interval);
    let ahead = step.tat.saturating_sub(now);
    let remaining = capacity.saturating_sub(ahead) / interval;
    let retry_after = (!step.allowed).then(|| {
        let allow_at = step
            .tat
            .saturating_add(interval.saturating_mul(u64::from(cost - 1)))
            .saturating_sub(quota.tolerance_micros());
        Duration::from_micros(allow_at.saturating_sub(now))
    });
    Decision {
        allowed: step.allowed,
        limit: quota.burst,
        remaining: u32::try_from(remaining)
            .unwrap_or(u32::MAX)
            .min(quota.burst),
        reset_after: Duration::from_micros(ahead),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 per second, burst 5: T = 100 ms, τ = 400 ms.
    fn quota() -> Quota {
        Quota::new(10, Duration::from_secs(1), 5).expect("valid")
    }

    const MS: u64 = 1_000;

    #[test]
    fn a_fresh_key_spends_one_unit() {
        let quota = quota();
        let now = 1_000_000 * MS;
        let first = step(&quota, None, now, 1);
        assert_eq!(
            first,
            Step {
                allowed: true,
                tat: now + 100 * MS
            }
        );
        let decision = decision(&quota, first, now, 1);
        assert_eq!(decision.remaining, 4);
        assert_eq!(decision.reset_after, Duration::from_millis(100));
        assert_eq!(decision.retry_after, None);
    }

    #[test]
    fn refusal_leaves_the_tat_and_says_when() {
        let quota = quota();
        let now = 1_000_000 * MS;
        let full = now + 500 * MS;
        let refused = step(&quota, Some(full), now, 1);
        assert_eq!(
            refused,
            Step {
                allowed: false,
                tat: full
            }
        );
        let decision = decision(&quota, refused, now, 1);
        assert_eq!(decision.remaining, 0);
        assert_eq!(decision.retry_after, Some(Duration::from_millis(100)));
        let two = step(&quota, Some(full), now, 2);
        assert_eq!(
            super::decision(&quota, two, now, 2).retry_after,
            Some(Duration::from_millis(200))
        );
    }

    #[test]
    fn a_tat_in_the_past_counts_as_fresh() {
        let quota = quota();
        let now = 1_000_000 * MS;
        assert_eq!(
            step(&quota, Some(now - 5), now, 1),
            step(&quota, None, now, 1)
        );
    }
}
