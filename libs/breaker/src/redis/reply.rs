//! Turning script replies into breaker types. Replies come from our own
//! scripts, so a shape we do not expect means Redis is not what we think it
//! is and is reported as unavailable.

use fred::prelude::Value;

use crate::clock::from_millis;
use crate::state::{Mode, StoredView, Transition};
use crate::{Admission, BreakerError, BreakerKey, BreakerResult};

/// Fields of a breaker in get and list replies.
const VIEW_FIELDS: usize = 6;

fn unexpected(what: &str) -> BreakerError {
    BreakerError::Unavailable(format!("unexpected reply from redis: {what}"))
}

fn string(values: &[Value], at: usize, what: &str) -> BreakerResult<String> {
    values
        .get(at)
        .and_then(Value::as_string)
        .ok_or_else(|| unexpected(what))
}

fn integer(values: &[Value], at: usize, what: &str) -> BreakerResult<i64> {
    values
        .get(at)
        .and_then(Value::as_i64)
        .ok_or_else(|| unexpected(what))
}

fn count<T: TryFrom<i64>>(values: &[Value], at: usize, what: &str) -> BreakerResult<T> {
    T::try_from(integer(values, at, what)?).map_err(|_| unexpected(what))
}

fn mode(values: &[Value], at: usize) -> BreakerResult<Mode> {
    Mode::parse(&string(values, at, "mode")?).ok_or_else(|| unexpected("mode"))
}

/// Reads `{from, to}` at `at`; empty strings mean no change.
pub(super) fn transition(values: &[Value], at: usize) -> BreakerResult<Option<Transition>> {
    let from = string(values, at, "transition from")?;
    if from.is_empty() {
        return Ok(None);
    }
    Ok(Transition::between(
        mode(values, at)?,
        mode(values, at + 1)?,
    ))
}

/// Reads `{kind, retry at, from, to}` from the admit script.
pub(super) fn admission(reply: Value) -> BreakerResult<(Admission, Option<Transition>)> {
    let values = reply.into_array();
    let admission = match integer(&values, 0, "admission")? {
        0 => Admission::Allowed,
        1 => Admission::Probe,
        2 => Admission::Rejected {
            retry_at: from_millis(integer(&values, 1, "retry at")?),
        },
        _ => return Err(unexpected("admission")),
    };
    Ok((admission, transition(&values, 2)?))
}

/// Reads `{mode, until at, opened at, trips, calls, failures}`.
pub(super) fn stored_view(values: &[Value]) -> BreakerResult<StoredView> {
    let opened_at_ms = integer(values, 2, "opened at")?;
    Ok(StoredView {
        mode: mode(values, 0)?,
        until_ms: integer(values, 1, "until")?,
        opened_at_ms: (opened_at_ms >= 0).then_some(opened_at_ms),
        trips: count(values, 3, "trips")?,
        calls: count(values, 4, "calls")?,
        failures: count(values, 5, "failures")?,
    })
}

/// Reads `{member, view..., ...}` from the list script.
pub(super) fn listed(reply: Value) -> BreakerResult<Vec<(BreakerKey, StoredView)>> {
    let values = reply.into_array();
    if !values.len().is_multiple_of(VIEW_FIELDS + 1) {
        return Err(unexpected("list"));
    }
    values
        .chunks_exact(VIEW_FIELDS + 1)
        .map(|chunk| {
            let member = string(chunk, 0, "list member")?;
            let key = BreakerKey::decode(&member).ok_or_else(|| unexpected("list member"))?;
            Ok((key, stored_view(&chunk[1..])?))
        })
        .collect()
}
