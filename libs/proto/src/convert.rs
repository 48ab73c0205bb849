//! JSON ↔ `google.protobuf.Value`/`Struct`, and `google.protobuf.Timestamp`
//! ↔ chrono times: one reading of each for every service that converts them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Timestamp, Value};
use serde_json::{Map, Number};

/// The largest magnitude below which every whole double is an exact integer.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

pub fn value_to_json(value: Value) -> serde_json::Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(flag)) => serde_json::Value::Bool(flag),
        Some(Kind::NumberValue(number)) => number_to_json(number),
        Some(Kind::StringValue(text)) => serde_json::Value::String(text),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(object)) => struct_to_json(object),
    }
}

/// Protobuf numbers are doubles; whole ones become JSON integers so that
/// parameters such as `timeout_ms: 5000` stay integers for schema checks.
/// JSON has no NaN or infinity: those become null.
fn number_to_json(number: f64) -> serde_json::Value {
    if number.fract() == 0.0 && number.abs() < EXACT_INTEGER_LIMIT {
        return serde_json::Value::Number(Number::from(number as i64));
    }
    Number::from_f64(number).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

pub fn struct_to_json(object: Struct) -> serde_json::Value {
    serde_json::Value::Object(
        object
            .fields
            .into_iter()
            .map(|(key, value)| (key, value_to_json(value)))
            .collect::<Map<String, serde_json::Value>>(),
    )
}

/// Every JSON number becomes the nearest double.
pub fn json_to_value(value: &serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(*flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        serde_json::Value::String(text) => Kind::StringValue(text.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(value)),
    };
    Value { kind: Some(kind) }
}

/// An object as a Struct; anything else becomes an empty Struct.
pub fn json_to_struct(value: &serde_json::Value) -> Struct {
    let fields: BTreeMap<String, Value> = match value {
        serde_json::Value::Object(object) => object
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect(),
        _ => BTreeMap::new(),
    };
    Struct { fields }
}

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

/// The time a timestamp names; `None` when its seconds are out of chrono's
/// range or its nanos outside `0..1_000_000_000`.
pub fn datetime(value: &Timestamp) -> Option<DateTime<Utc>> {
    let Timestamp { seconds, nanos } = *value;
    u32::try_from(nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .and_then(|nanos| DateTime::from_timestamp(seconds, nanos))
}

/// As [`datetime`], but lenient about nanos: negative ones count as none,
/// and a second's worth or more is kept where chrono takes it (as a leap
/// second, in the last second of a minute). `None` only when chrono refuses.
pub fn datetime_lenient(value: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(
        value.seconds,
        u32::try_from(value.nanos).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn number(value: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(value)),
        }
    }

    #[test]
    fn nested_values_round_trip() {
        let original = json!({
            "name": "fetch",
            "enabled": true,
            "missing": null,
            "timeout_ms": 5000,
            "ratio": 0.25,
            "headers": {"accept": ["json", "text"], "depth": {"level": -3}},
            "empty": {},
            "items": [],
        });
        assert_eq!(struct_to_json(json_to_struct(&original)), original);
        assert_eq!(value_to_json(json_to_value(&original)), original);
    }

    #[test]
    fn whole_numbers_become_integers_below_two_to_the_fifty_third() {
        assert_eq!(value_to_json(number(5000.0)), json!(5000));
        assert!(value_to_json(number(5000.0)).is_i64());
        assert_eq!(value_to_json(number(-0.0)), json!(0));
        let below = EXACT_INTEGER_LIMIT - 1.0;
        assert!(value_to_json(number(below)).is_i64());
        // At the limit a double no longer says which integer it was.
        assert!(value_to_json(number(EXACT_INTEGER_LIMIT)).is_f64());
        assert_eq!(value_to_json(number(1.5)), json!(1.5));
    }

    #[test]
    fn non_finite_numbers_become_null() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                value_to_json(number(value)),
                serde_json::Value::Null,
                "{value}"
            );
        }
    }

    #[test]
    fn an_absent_kind_is_null_and_a_non_object_an_empty_struct() {
        assert_eq!(value_to_json(Value { kind: None }), serde_json::Value::Null);
        assert_eq!(json_to_struct(&json!([1, 2])), Struct::default());
        assert_eq!(json_to_struct(&json!("text")), Struct::default());
    }

    #[test]
    fn integers_past_two_to_the_fifty_third_become_the_nearest_double() {
        let value = json_to_value(&json!(9_007_199_254_740_993_u64));
        assert_eq!(value.kind, Some(Kind::NumberValue(9_007_199_254_740_992.0)));
    }

    #[test]
    fn timestamps_round_trip_with_their_nanos() {
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let stamp = timestamp(time);
        assert_eq!((stamp.seconds, stamp.nanos), (1_700_000_000, 123_456_789));
        assert_eq!(datetime(&stamp), Some(time));
        assert_eq!(datetime_lenient(&stamp), Some(time));
        let before_epoch = DateTime::from_timestamp(-1, 500).unwrap();
        assert_eq!(datetime(&timestamp(before_epoch)), Some(before_epoch));
    }

    #[test]
    fn out_of_range_timestamps_are_refused() {
        let at = |seconds, nanos| Timestamp { seconds, nanos };
        assert_eq!(datetime(&at(0, -1)), None);
        assert_eq!(datetime(&at(0, 1_000_000_000)), None);
        assert_eq!(datetime(&at(i64::MAX, 0)), None);
        assert_eq!(datetime_lenient(&at(i64::MAX, 0)), None);
        assert_eq!(datetime_lenient(&at(0, 2_000_000_000)), None);
    }

    #[test]
    fn the_lenient_reading_drops_negative_nanos_and_keeps_leap_seconds() {
        let at = |seconds, nanos| Timestamp { seconds, nanos };
        assert_eq!(
            datetime_lenient(&at(10, -5)),
            DateTime::from_timestamp(10, 0)
        );
        // 59 seconds past a minute: a second's worth of nanos is a leap second.
        let leap = datetime_lenient(&at(59, 1_500_000_000)).unwrap();
        assert_eq!(leap.timestamp(), 59);
        assert_eq!(datetime(&at(59, 1_500_000_000)), None);
        // Anywhere else it is refused, as by the strict reading.
        assert_eq!(datetime_lenient(&at(58, 1_500_000_000)), None);
    }
}
