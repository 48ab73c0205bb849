//! Turning script and stream replies into queue types. Replies come from our
//! own scripts, so a shape we do not expect means Redis is not what we think
//! it is and is reported as unavailable rather than skipped.

use std::time::Duration;

use fred::prelude::Value;

use crate::{BrokerError, BrokerResult};

/// One stream entry as the scripts return it.
#[derive(Debug)]
pub(crate) struct RawEntry {
    pub(crate) pool_index: usize,
    pub(crate) id: String,
    pub(crate) job: String,
    pub(crate) previous_deliveries: u32,
    /// Deliveries counted by the consumer group for this entry.
    pub(crate) group_deliveries: u32,
}

fn unexpected(what: &str) -> BrokerError {
    BrokerError::Unavailable(format!("unexpected reply from redis: {what}"))
}

pub(crate) fn string(value: &Value, what: &str) -> BrokerResult<String> {
    value.as_string().ok_or_else(|| unexpected(what))
}

pub(crate) fn integer(value: &Value, what: &str) -> BrokerResult<i64> {
    value.as_i64().ok_or_else(|| unexpected(what))
}

fn count(value: &str) -> u32 {
    value.parse().unwrap_or(0)
}

/// Reads `{{key index, id, job, prior, ...}, {bell id, ...}}` from the take
/// script: the entries taken, and when there are none, the id of the last
/// bell of each pool, to wait for the next.
pub(crate) fn taken(reply: Value) -> BrokerResult<(Vec<RawEntry>, Vec<String>)> {
    let mut parts = reply.into_array();
    if parts.len() != 2 {
        return Err(unexpected("take"));
    }
    let bells = parts
        .pop()
        .map(Value::into_array)
        .unwrap_or_default()
        .iter()
        .map(|id| string(id, "take bell"))
        .collect::<BrokerResult<Vec<_>>>()?;
    let values = parts.pop().map(Value::into_array).unwrap_or_default();
    if !values.len().is_multiple_of(4) {
        return Err(unexpected("take"));
    }
    values
        .chunks_exact(4)
        .map(|chunk| {
            let key_index = integer(&chunk[0], "take index")?;
            let pool_index =
                usize::try_from(key_index - 1).map_err(|_| unexpected("take index"))?;
            Ok(RawEntry {
                pool_index,
                id: string(&chunk[1], "take id")?,
                job: string(&chunk[2], "take job")?,
                previous_deliveries: count(&string(&chunk[3], "take prior")?),
                group_deliveries: 1,
            })
        })
        .collect::<BrokerResult<_>>()
        .map(|entries| (entries, bells))
}

/// Reads `{next cursor, id, deliveries, job, prior, ...}` from the reclaim
/// script; every entry belongs to `pool_index`.
pub(crate) fn reclaimed(reply: Value, pool_index: usize) -> BrokerResult<(String, Vec<RawEntry>)> {
    let mut values = reply.into_array();
    if values.is_empty() || !(values.len() - 1).is_multiple_of(4) {
        return Err(unexpected("reclaim"));
    }
    let cursor = string(&values.remove(0), "reclaim cursor")?;
    let entries = values
        .chunks_exact(4)
        .map(|chunk| {
            let deliveries = integer(&chunk[1], "reclaim deliveries")?;
            Ok(RawEntry {
                pool_index,
                id: string(&chunk[0], "reclaim id")?,
                group_deliveries: u32::try_from(deliveries).unwrap_or(u32::MAX),
                job: string(&chunk[2], "reclaim job")?,
                previous_deliveries: count(&string(&chunk[3], "reclaim prior")?),
            })
        })
        .collect::<BrokerResult<_>>()?;
    Ok((cursor, entries))
}

/// The counts the stats script returns.
pub(crate) struct RawStats {
    pub(crate) ready: u64,
    pub(crate) pending: u64,
    pub(crate) delayed: u64,
    pub(crate) reclaimed: u64,
    /// When the oldest job in a ready list became ready (ms).
    pub(crate) oldest_ready_millis: Option<i64>,
    /// The oldest stream entry no consumer has read yet.
    pub(crate) oldest_unread_id: Option<String>,
}

pub(crate) fn stats(reply: Value) -> BrokerResult<RawStats> {
    let values = reply.into_array();
    let [ready, pending, delayed, reclaimed, oldest_millis, oldest] = values.as_slice() else {
        return Err(unexpected("stats"));
    };
    let non_negative = |value: &Value, what: &str| -> BrokerResult<u64> {
        Ok(u64::try_from(integer(value, what)?).unwrap_or(0))
    };
    let oldest = string(oldest, "stats oldest")?;
    let oldest_millis = integer(oldest_millis, "stats oldest ms")?;
    Ok(RawStats {
        ready: non_negative(ready, "stats ready")?,
        pending: non_negative(pending, "stats pending")?,
        delayed: non_negative(delayed, "stats delayed")?,
        reclaimed: non_negative(reclaimed, "stats reclaimed")?,
        oldest_ready_millis: (oldest_millis >= 0).then_some(oldest_millis),
        oldest_unread_id: (!oldest.is_empty()).then_some(oldest),
    })
}

/// A stream id is `<unix ms>-<sequence>`; anything else cannot be one of ours.
pub(crate) fn is_stream_id(id: &str) -> bool {
    let Some((millis, sequence)) = id.split_once('-') else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    digits(millis) && digits(sequence)
}

/// How long ago the entry with this id was added, by the stream's own clock.
pub(crate) fn age_of_stream_id(id: &str, now_millis: i64) -> Option<Duration> {
    let millis: i64 = id.split_once('-')?.0.parse().ok()?;
    Some(Duration::from_millis(
        u64::try_from(now_millis - millis).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_recognised() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("1700000000000"));
        assert!(!is_stream_id("-1"));
        assert!(!is_stream_id("17a-0"));
        assert!(!is_stream_id("1-"));
    }

    #[test]
    fn age_comes_from_the_id_timestamp() {
        assert_eq!(
            age_of_stream_id("1000-3", 2_500),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(age_of_stream_id("3000-0", 2_500), Some(Duration::ZERO));
    }

    #[test]
    fn take_reply_maps_key_indexes_to_pools() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Integer(2),
                Value::from("5-0"),
                Value::from("{}"),
                Value::from("3"),
            ]),
            Value::Array(vec![]),
        ]);
        let (entries, bells) = taken(reply).expect("well-formed reply");
        assert!(bells.is_empty());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].pool_index, 1);
        assert_eq!(entries[0].previous_deliveries, 3);
    }
}
