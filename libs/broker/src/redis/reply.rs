//! Turning script and stream replies into queue types. Replies come from our
//! own scripts, so a shape we do not expect means Redis is not what we think
//! it is and is reported as unavailable rather than skipped.

use std::time::Duration;

use fred::prelude::Value;

use crate::{BrokerError, BrokerResult};

/// One stream entry as the scripts and `XREADGROUP` return it.
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

/// Reads `{key index, id, job, prior, ...}` from the take script.
pub(crate) fn taken(reply: Value) -> BrokerResult<Vec<RawEntry>> {
    let values = reply.into_array();
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
        .collect()
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

/// Reads an `XREADGROUP` reply, `[[key, [[id, [field, value, ...]], ...]], ...]`
/// (nil when the block timed out). `pool_of` maps a stream key to its index.
pub(crate) fn read_group(
    reply: Value,
    pool_of: impl Fn(&str) -> Option<usize>,
) -> BrokerResult<Vec<RawEntry>> {
    let mut entries = Vec::new();
    if reply.is_null() {
        return Ok(entries);
    }
    for stream in reply.into_array() {
        let mut stream = stream.into_array();
        if stream.len() != 2 {
            return Err(unexpected("xreadgroup stream"));
        }
        let stream_entries = stream.pop().map(Value::into_array).unwrap_or_default();
        let key = string(&stream[0], "xreadgroup key")?;
        let pool_index = pool_of(&key).ok_or_else(|| unexpected("xreadgroup key"))?;
        for entry in stream_entries {
            let mut entry = entry.into_array();
            if entry.len() != 2 {
                return Err(unexpected("xreadgroup entry"));
            }
            let fields = entry.pop().map(Value::into_array).unwrap_or_default();
            let id = string(&entry[0], "xreadgroup id")?;
            let field = |name: &str| {
                fields
                    .chunks_exact(2)
                    .find(|pair| pair[0].as_str().is_some_and(|field| field == name))
                    .and_then(|pair| pair[1].as_string())
                    .unwrap_or_default()
            };
            entries.push(RawEntry {
                pool_index,
                id,
                job: field("job"),
                previous_deliveries: count(&field("prior")),
                group_deliveries: 1,
            });
        }
    }
    Ok(entries)
}

/// The counts the stats script returns.
pub(crate) struct RawStats {
    pub(crate) length: u64,
    pub(crate) pending: u64,
    pub(crate) delayed: u64,
    pub(crate) reclaimed: u64,
    pub(crate) oldest_ready_id: Option<String>,
}

pub(crate) fn stats(reply: Value) -> BrokerResult<RawStats> {
    let values = reply.into_array();
    let [length, pending, delayed, reclaimed, oldest] = values.as_slice() else {
        return Err(unexpected("stats"));
    };
    let non_negative = |value: &Value, what: &str| -> BrokerResult<u64> {
        Ok(u64::try_from(integer(value, what)?).unwrap_or(0))
    };
    let oldest = string(oldest, "stats oldest")?;
    Ok(RawStats {
        length: non_negative(length, "stats length")?,
        pending: non_negative(pending, "stats pending")?,
        delayed: non_negative(delayed, "stats delayed")?,
        reclaimed: non_negative(reclaimed, "stats reclaimed")?,
        oldest_ready_id: (!oldest.is_empty()).then_some(oldest),
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
    fn a_timed_out_read_is_empty() {
        let entries = read_group(Value::Null, |_| Some(0)).expect("nil is a valid reply");
        assert!(entries.is_empty());
    }

    #[test]
    fn take_reply_maps_key_indexes_to_pools() {
        let reply = Value::Array(vec![
            Value::Integer(2),
            Value::from("5-0"),
            Value::from("{}"),
            Value::from("3"),
        ]);
        let entries = taken(reply).expect("well-formed reply");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].pool_index, 1);
        assert_eq!(entries[0].previous_deliveries, 3);
    }
}
