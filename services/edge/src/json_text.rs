//! JSON carried as its text (`tyboo.common.v1.Json`), so that its numbers
//! stay exact where `google.protobuf.Value` would hold doubles. Over HTTP
//! such a field is the JSON value itself: a request's value is wrapped into
//! the text the message holds, an answer's text is unwrapped into its value.
//!
//! The route table asks once per route whether a call carries such text,
//! and the transcoder does the wrapping, so this sits below both.

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::Value as Json;

/// The message that carries a JSON value as its text, so that numbers stay
/// exact (`google.protobuf.Value` holds doubles). Over HTTP it is the JSON
/// value itself, in requests and in answers.
pub(crate) const JSON_TEXT_MESSAGE: &str = "tyboo.common.v1.Json";

fn is_json_text(message: &MessageDescriptor) -> bool {
    message.full_name() == JSON_TEXT_MESSAGE
}

/// Messages whose JSON form is not an object of their fields.
fn is_well_known(message: &MessageDescriptor) -> bool {
    message.package_name() == "google.protobuf"
}

/// Whether a message of this type can hold JSON text anywhere.
pub(crate) fn holds_json_text(message: &MessageDescriptor, visiting: &mut Vec<String>) -> bool {
    if is_json_text(message) {
        return true;
    }
    if is_well_known(message) || visiting.iter().any(|name| name == message.full_name()) {
        return false;
    }
    visiting.push(message.full_name().to_owned());
    let found = message.fields().any(|field| match field.kind() {
        Kind::Message(child) => holds_json_text(&child, visiting),
        _ => false,
    });
    visiting.pop();
    found
}

/// The message type of a field's values (a map's values for a map).
fn value_message(field: &prost_reflect::FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => match entry.map_entry_value_field().kind() {
            Kind::Message(value) => Some(value),
            _ => None,
        },
        Kind::Message(message) => Some(message),
        _ => None,
    }
}

/// Applies `visit` to every value of `field` in `holder` (each item of a
/// list, each value of a map), under its JSON or its proto name.
fn each_value<E>(
    holder: &mut serde_json::Map<String, Json>,
    field: &prost_reflect::FieldDescriptor,
    visit: &mut impl FnMut(&mut Json) -> Result<(), E>,
) -> Result<(), E> {
    for key in [field.json_name(), field.name()] {
        let Some(value) = holder.get_mut(key) else {
            continue;
        };
        match value {
            Json::Array(items) if field.is_list() => {
                for item in items {
                    visit(item)?;
                }
            }
            Json::Object(entries) if field.is_map() => {
                for entry in entries.values_mut() {
                    visit(entry)?;
                }
            }
            value if !field.is_list() && !field.is_map() => visit(value)?,
            _ => {}
        }
        if field.json_name() == field.name() {
            break;
        }
    }
    Ok(())
}

/// A request: each JSON value sent for a JSON-text field becomes the
/// `{"text": …}` the message holds, written with every number as sent.
pub(crate) fn wrap_json_text(message: &MessageDescriptor, json: &mut Json) {
    let Json::Object(holder) = json else {
        return;
    };
    for field in message.fields() {
        let Some(child) = value_message(&field) else {
            continue;
        };
        if is_json_text(&child) {
            let _ = each_value::<()>(holder, &field, &mut |value| {
                // null is "not set", as for any message field.
                if !value.is_null() {
                    *value = serde_json::json!({"text": value.to_string()});
                }
                Ok(())
            });
        } else if !is_well_known(&child) && holds_json_text(&child, &mut Vec::new()) {
            let _ = each_value::<()>(holder, &field, &mut |value| {
                wrap_json_text(&child, value);
                Ok(())
            });
        }
    }
}

/// An answer: each `{"text": …}` of a JSON-text field becomes the JSON
/// value it holds, its numbers exactly as written.
pub(crate) fn unwrap_json_text(
    message: &MessageDescriptor,
    json: &mut Json,
) -> Result<(), serde_json::Error> {
    let Json::Object(holder) = json else {
        return Ok(());
    };
    for field in message.fields() {
        let Some(child) = value_message(&field) else {
            continue;
        };
        if is_json_text(&child) {
            each_value(holder, &field, &mut |value| {
                let text = value.get("text").and_then(Json::as_str).unwrap_or("null");
                *value = serde_json::from_str(text)?;
                Ok(())
            })?;
        } else if !is_well_known(&child) && holds_json_text(&child, &mut Vec::new()) {
            each_value(holder, &field, &mut |value| unwrap_json_text(&child, value))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DynamicMessage;

    #[test]
    fn json_text_fields_are_json_values_over_http_with_exact_numbers() {
        let pool = crate::routes::tests::pool();
        let start = pool
            .get_message_by_name("tyboo.executor.v1.StartExecutionRequest")
            .unwrap();
        let mut body: Json = serde_json::from_str(
            r#"{"workflowId": "w", "input": {"id": 9007199254740993, "ratio": 3.0, "min": -9223372036854775808}}"#,
        )
        .unwrap();
        wrap_json_text(&start, &mut body);
        let message = DynamicMessage::deserialize(start, body).unwrap();
        let input = message.get_field_by_name("input").unwrap();
        let text = input
            .as_message()
            .unwrap()
            .get_field_by_name("text")
            .unwrap();
        assert_eq!(
            text.as_str().unwrap(),
            r#"{"id":9007199254740993,"min":-9223372036854775808,"ratio":3.0}"#
        );
        // null is "not set", as for any message field.
        let start = pool
            .get_message_by_name("tyboo.executor.v1.StartExecutionRequest")
            .unwrap();
        let mut body = serde_json::json!({"input": null});
        wrap_json_text(&start, &mut body);
        assert_eq!(body, serde_json::json!({"input": null}));

        // Answers: nested, in lists, exactly as the text says.
        let answer = pool
            .get_message_by_name("tyboo.executor.v1.GetExecutionResponse")
            .unwrap();
        let mut json = serde_json::json!({"execution": {
            "input": {"text": "{\"id\":18446744073709551615}"},
            "nodeRuns": [{"output": {"text": "[1.50,2]"}}, {"output": {}}],
        }});
        unwrap_json_text(&answer, &mut json).unwrap();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"execution":{"input":{"id":18446744073709551615},"nodeRuns":[{"output":[1.5,2]},{"output":null}]}}"#
        );
        let mut broken = serde_json::json!({"execution": {"input": {"text": "{"}}});
        assert!(unwrap_json_text(&answer, &mut broken).is_err());
    }
}
