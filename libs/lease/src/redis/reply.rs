//! Turning script replies into lease types. Replies come from our own
//! scripts, so a shape we do not expect means Redis is not what we think it
//! is and is reported as unavailable rather than guessed at.

use fred::prelude::Value;

use crate::request::time_of;
use crate::{Lease, LeaseError, LeaseResult};

pub(crate) fn unexpected(what: &str) -> LeaseError {
    LeaseError::Unavailable(format!("unexpected reply from redis: {what}"))
}

pub(crate) fn integer(value: &Value, what: &str) -> LeaseResult<i64> {
    value.as_i64().ok_or_else(|| unexpected(what))
}

pub(crate) fn count(value: &Value, what: &str) -> LeaseResult<u32> {
    u32::try_from(integer(value, what)?).map_err(|_| unexpected(what))
}

/// Reads `{1}` (granted) or `{0, key index from 1, held}` from the take
/// script; the full key's index comes back from 0.
pub(crate) fn taken(reply: Value) -> LeaseResult<Option<(usize, u32)>> {
    let values = reply.into_array();
    match values.as_slice() {
        [granted] if integer(granted, "take")? == 1 => Ok(None),
        [refused, index, held] if integer(refused, "take")? == 0 => {
            let index = usize::try_from(integer(index, "take index")? - 1)
                .map_err(|_| unexpected("take index"))?;
            Ok(Some((index, count(held, "take held")?)))
        }
        _ => Err(unexpected("take")),
    }
}

/// Reads `{holder, expiry, ...}` from the holders script.
pub(crate) fn holders(reply: Value) -> LeaseResult<Vec<Lease>> {
    let values = reply.into_array();
    if !values.len().is_multiple_of(2) {
        return Err(unexpected("holders"));
    }
    values
        .chunks_exact(2)
        .map(|pair| {
            let holder = pair[0].as_string().ok_or_else(|| unexpected("holder"))?;
            // Scores are whole milliseconds; Redis may print them as floats.
            let score = pair[1]
                .as_f64()
                .ok_or_else(|| unexpected("holder expiry"))?;
            Ok(Lease {
                holder,
                expires_at: time_of(score as i64),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integers(values: &[i64]) -> Value {
        Value::Array(values.iter().map(|value| Value::Integer(*value)).collect())
    }

    #[test]
    fn take_replies_are_read_and_odd_shapes_refused() {
        assert_eq!(taken(integers(&[1])).ok(), Some(None));
        assert_eq!(taken(integers(&[0, 2, 5])).ok(), Some(Some((1, 5))));
        assert!(taken(integers(&[0, 0, 5])).is_err());
        assert!(taken(integers(&[0])).is_err());
        assert!(taken(integers(&[2])).is_err());
    }

    #[test]
    fn holders_replies_are_read_in_pairs() {
        let reply = Value::Array(vec![
            Value::from("a"),
            Value::from("1500"),
            Value::from("b"),
            Value::from("2000"),
        ]);
        let leases = holders(reply).expect("pairs");
        assert_eq!(leases[0].holder, "a");
        assert_eq!(leases[0].expires_at.timestamp_millis(), 1_500);
        assert_eq!(leases[1].holder, "b");
        assert!(holders(Value::Array(vec![Value::from("a")])).is_err());
    }
}
