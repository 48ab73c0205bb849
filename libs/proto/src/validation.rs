//! The one validator of every request: the rules the contracts declare
//! (`google.api.field_behavior` REQUIRED and `buf.validate` field rules), read
//! from the embedded descriptor set and checked against the request as it
//! arrives, before any handler runs. The generated servers decode through
//! [`ValidatingCodec`], so no handler can forget it and no rule is written
//! twice; `/openapi.json` is generated from the same annotations.
//!
//! Semantics follow protovalidate: a field without presence is always checked
//! (an empty string is not a UUID), one with presence only when set, and
//! `ignore = IGNORE_IF_ZERO_VALUE` turns a field's rules off at its zero
//! value (an optional filter). `required` (or field behavior REQUIRED) means
//! set, and for a field without presence not the zero value.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use bytes::Buf;
use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MapKey,
    MessageDescriptor, ReflectMessage, Value,
};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

use crate::buf::validate as rules;
use crate::google::api::FieldBehavior;

/// Extension names the validator reads.
pub const FIELD_RULES_EXTENSION: &str = "buf.validate.field";
pub const FIELD_BEHAVIOR_EXTENSION: &str = "google.api.field_behavior";

/// At most this many violations are named in one answer.
const MAX_VIOLATIONS_SHOWN: usize = 8;

/// The rules of one field, as the contracts declare them.
#[derive(Clone, Debug, Default)]
pub struct FieldConstraints {
    pub required: bool,
    pub ignore_if_zero: bool,
    pub output_only: bool,
    pub immutable: bool,
    pub rules: Option<rules::field_rules::Type>,
}

impl FieldConstraints {
    /// What the contracts say about `field`.
    pub fn of(field: &FieldDescriptor) -> FieldConstraints {
        let pool = field.parent_pool();
        let options = field.options();
        let mut constraints = FieldConstraints::default();
        if let Some(extension) = pool.get_extension_by_name(FIELD_BEHAVIOR_EXTENSION)
            && options.has_extension(&extension)
            && let Value::List(behaviors) = options.get_extension(&extension).as_ref()
        {
            for behavior in behaviors {
                match behavior
                    .as_enum_number()
                    .and_then(|n| FieldBehavior::try_from(n).ok())
                {
                    Some(FieldBehavior::Required) => constraints.required = true,
                    Some(FieldBehavior::OutputOnly) => constraints.output_only = true,
                    Some(FieldBehavior::Immutable) => constraints.immutable = true,
                    _ => {}
                }
            }
        }
        if let Some(field_rules) = field_rules(pool, &options) {
            if field_rules.ignore == Some(rules::Ignore::Always as i32) {
                // The field's rules are switched off altogether.
                return constraints;
            }
            constraints.required |= field_rules.required.unwrap_or(false);
            constraints.ignore_if_zero =
                field_rules.ignore == Some(rules::Ignore::IfZeroValue as i32);
            constraints.rules = field_rules.r#type;
        }
        constraints
    }

    fn is_empty(&self) -> bool {
        !self.required && self.rules.is_none()
    }
}

fn field_rules(pool: &DescriptorPool, options: &DynamicMessage) -> Option<rules::FieldRules> {
    let extension: ExtensionDescriptor = pool.get_extension_by_name(FIELD_RULES_EXTENSION)?;
    if !options.has_extension(&extension) {
        return None;
    }
    match options.get_extension(&extension).as_ref() {
        // The descriptor set is compiled into the binary from our own
        // contracts: the rules decode unless the build is broken.
        Value::Message(message) => message.transcode_to().ok(),
        _ => None,
    }
}

/// One broken rule: the field's path (proto names, `a.b[2].c`) and what is
/// wrong with it, never the offending value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

/// Every message's checks, built once from the embedded descriptor set.
pub struct Validator {
    pool: DescriptorPool,
    messages: HashMap<String, Arc<MessageChecks>>,
    /// The input type of every method: only requests are checked.
    inputs: std::collections::HashSet<String>,
}

struct MessageChecks {
    fields: FieldChecks,
    /// Whether this message or any message it holds has a rule at all.
    checked: bool,
}

/// The fields with rules of one message, and whether it has any.
type FieldChecks = Vec<(FieldDescriptor, FieldConstraints, Compiled)>;
type DirectRules = HashMap<String, (FieldChecks, bool)>;

/// What a rule needs at check time (compiled regular expressions).
#[derive(Default)]
struct Compiled {
    pattern: Option<regex::Regex>,
    items_pattern: Option<regex::Regex>,
    keys_pattern: Option<regex::Regex>,
    values_pattern: Option<regex::Regex>,
}

fn compile(rules: &Option<rules::field_rules::Type>) -> Option<regex::Regex> {
    match rules {
        Some(rules::field_rules::Type::String(string)) => string.pattern.as_deref().map(|p| {
            // Our own contracts: a pattern that does not compile is a build defect
            // that every test of the message shows at once.
            regex::Regex::new(p).unwrap_or_else(|error| panic!("pattern {p:?}: {error}"))
        }),
        _ => None,
    }
}

impl Validator {
    /// The validator of the embedded contracts.
    pub fn global() -> &'static Validator {
        static VALIDATOR: OnceLock<Validator> = OnceLock::new();
        VALIDATOR.get_or_init(|| {
            let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
                .expect("the embedded descriptor set decodes");
            Validator::new(pool)
        })
    }

    pub fn new(pool: DescriptorPool) -> Validator {
        let mut direct: DirectRules = HashMap::new();
        for message in pool.all_messages() {
            let mut fields = Vec::new();
            for field in message.fields() {
                let constraints = FieldConstraints::of(&field);
                if constraints.is_empty() {
                    continue;
                }
                let mut compiled = Compiled {
                    pattern: compile(&constraints.rules),
                    ..Compiled::default()
                };
                match &constraints.rules {
                    Some(rules::field_rules::Type::Repeated(repeated)) => {
                        compiled.items_pattern = repeated
                            .items
                            .as_ref()
                            .and_then(|items| compile(&items.r#type));
                    }
                    Some(rules::field_rules::Type::Map(map)) => {
                        compiled.keys_pattern =
                            map.keys.as_ref().and_then(|keys| compile(&keys.r#type));
                        compiled.values_pattern = map
                            .values
                            .as_ref()
                            .and_then(|values| compile(&values.r#type));
                    }
                    _ => {}
                }
                fields.push((field, constraints, compiled));
            }
            let has_rules = !fields.is_empty();
            direct.insert(message.full_name().to_owned(), (fields, has_rules));
        }
        // A message is checked if it or anything it can hold has rules.
        let mut checked: HashMap<String, bool> = HashMap::new();
        for message in pool.all_messages() {
            let mut seen = Vec::new();
            let value = reaches_rules(&message, &direct, &mut seen);
            checked.insert(message.full_name().to_owned(), value);
        }
        let messages = direct
            .into_iter()
            .map(|(name, (fields, _))| {
                let checked = checked.get(&name).copied().unwrap_or(false);
                (name, Arc::new(MessageChecks { fields, checked }))
            })
            .collect();
        let inputs = pool
            .services()
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| method.input().full_name().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        Validator {
            pool,
            messages,
            inputs,
        }
    }

    /// Whether `full_name` is the request type of some method.
    pub fn is_input(&self, full_name: &str) -> bool {
        self.inputs.contains(full_name)
    }

    /// Whether a message of this type can break a rule at all.
    pub fn checks(&self, full_name: &str) -> bool {
        self.messages
            .get(full_name)
            .is_some_and(|checks| checks.checked)
    }

    /// The descriptor of a message type of the contracts.
    pub fn descriptor(&self, full_name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(full_name)
    }

    /// Every broken rule of `message`, in field order.
    pub fn violations(&self, message: &DynamicMessage) -> Vec<Violation> {
        let mut violations = Vec::new();
        self.check_message(message, "", &mut violations);
        violations
    }

    /// Checks the encoded request `bytes` of type `full_name`.
    pub fn check_encoded(&self, full_name: &str, bytes: bytes::Bytes) -> Result<(), Status> {
        if !self.checks(full_name) {
            return Ok(());
        }
        let Some(descriptor) = self.descriptor(full_name) else {
            return Ok(());
        };
        let message = DynamicMessage::decode(descriptor, bytes).map_err(|error| {
            Status::invalid_argument(format!(
                "the request is not a valid message of this method: {error}"
            ))
        })?;
        let violations = self.violations(&message);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(invalid_argument(&violations))
        }
    }

    fn check_message(&self, message: &DynamicMessage, prefix: &str, out: &mut Vec<Violation>) {
        let Some(checks) = self.messages.get(message.descriptor().full_name()) else {
            return;
        };
        if !checks.checked {
            return;
        }
        for (field, constraints, compiled) in &checks.fields {
            let path = format!("{prefix}{}", field.name());
            self.check_field(message, field, constraints, compiled, &path, out);
        }
        // Nested messages are checked wherever they are set, rules or not on
        // the field that holds them.
        for field in message.descriptor().fields() {
            let Kind::Message(child) = field.kind() else {
                continue;
            };
            if !self.checks(child.full_name()) && !field.is_map() {
                continue;
            }
            if !message.has_field(&field) {
                continue;
            }
            let path = format!("{prefix}{}", field.name());
            match message.get_field(&field).as_ref() {
                Value::Message(inner) => self.check_message(inner, &format!("{path}."), out),
                Value::List(items) => {
                    for (index, item) in items.iter().enumerate() {
                        if let Value::Message(inner) = item {
                            self.check_message(inner, &format!("{path}[{index}]."), out);
                        }
                    }
                }
                Value::Map(entries) => {
                    for (key, value) in entries {
                        if let Value::Message(inner) = value {
                            let key = map_key_text(key);
                            self.check_message(inner, &format!("{path}[{key}]."), out);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn check_field(
        &self,
        message: &DynamicMessage,
        field: &FieldDescriptor,
        constraints: &FieldConstraints,
        compiled: &Compiled,
        path: &str,
        out: &mut Vec<Violation>,
    ) {
        let set = message.has_field(field);
        let value = message.get_field(field);
        let zero = !set || is_zero(value.as_ref());
        if constraints.required && zero {
            out.push(violation(path, "is required"));
            return;
        }
        if constraints.ignore_if_zero && zero {
            return;
        }
        if field.supports_presence() && !set {
            return;
        }
        let Some(rules) = &constraints.rules else {
            return;
        };
        use rules::field_rules::Type;
        match (rules, value.as_ref()) {
            (Type::Repeated(repeated), Value::List(items)) => {
                let count = items.len() as u64;
                if let Some(min) = repeated.min_items
                    && count < min
                {
                    out.push(violation(path, &format!("must hold at least {min} items")));
                }
                if let Some(max) = repeated.max_items
                    && count > max
                {
                    out.push(violation(path, &format!("must hold at most {max} items")));
                }
                if let Some(items_rules) = repeated.items.as_ref().and_then(|r| r.r#type.as_ref()) {
                    for (index, item) in items.iter().enumerate() {
                        check_scalar(
                            items_rules,
                            compiled.items_pattern.as_ref(),
                            item,
                            &format!("{path}[{index}]"),
                            field,
                            out,
                        );
                    }
                }
            }
            (Type::Map(map), Value::Map(entries)) => {
                if let Some(max) = map.max_pairs
                    && entries.len() as u64 > max
                {
                    out.push(violation(path, &format!("must hold at most {max} entries")));
                }
                let key_rules = map.keys.as_ref().and_then(|r| r.r#type.as_ref());
                let value_rules = map.values.as_ref().and_then(|r| r.r#type.as_ref());
                let mut keys: Vec<&MapKey> = entries.keys().collect();
                keys.sort();
                for key in keys {
                    let entry_path = format!("{path}[{}]", map_key_text(key));
                    if let Some(key_rules) = key_rules {
                        check_scalar(
                            key_rules,
                            compiled.keys_pattern.as_ref(),
                            &map_key_value(key),
                            &entry_path,
                            field,
                            out,
                        );
                    }
                    if let Some(value_rules) = value_rules {
                        check_scalar(
                            value_rules,
                            compiled.values_pattern.as_ref(),
                            &entries[key],
                            &entry_path,
                            field,
                            out,
                        );
                    }
                }
            }
            (rules, value) => {
                check_scalar(rules, compiled.pattern.as_ref(), value, path, field, out);
            }
        }
    }
}

fn reaches_rules(
    message: &MessageDescriptor,
    direct: &DirectRules,
    seen: &mut Vec<String>,
) -> bool {
    if seen.iter().any(|name| name == message.full_name()) {
        return false;
    }
    if direct.get(message.full_name()).is_some_and(|(_, has)| *has) {
        return true;
    }
    seen.push(message.full_name().to_owned());
    let found = message.fields().any(|field| match field.kind() {
        Kind::Message(child) => reaches_rules(&child, direct, seen),
        _ => false,
    });
    seen.pop();
    found
}

fn check_scalar(
    rules: &rules::field_rules::Type,
    pattern: Option<&regex::Regex>,
    value: &Value,
    path: &str,
    field: &FieldDescriptor,
    out: &mut Vec<Violation>,
) {
    use rules::field_rules::Type;
    match (rules, value) {
        (Type::String(string), Value::String(text)) => {
            check_string(string, pattern, text, path, out)
        }
        (Type::Int32(_), Value::I32(number)) => {
            check_range(i128::from(*number), IntegerBounds::of(rules), path, out)
        }
        (Type::Int64(_), Value::I64(number)) => {
            check_range(i128::from(*number), IntegerBounds::of(rules), path, out)
        }
        (Type::Uint32(_), Value::U32(number)) => {
            check_range(i128::from(*number), IntegerBounds::of(rules), path, out)
        }
        (Type::Enum(enumeration), Value::EnumNumber(number)) => {
            let defined = match field.kind() {
                Kind::Enum(descriptor) => descriptor.get_value(*number).is_some(),
                _ => true,
            };
            if enumeration.defined_only.unwrap_or(false) && !defined {
                out.push(violation(path, "must be one of the enum's values"));
            } else if enumeration.not_in.contains(number) {
                let name = match field.kind() {
                    Kind::Enum(descriptor) => descriptor
                        .get_value(*number)
                        .map(|value| value.name().to_owned())
                        .unwrap_or_else(|| number.to_string()),
                    _ => number.to_string(),
                };
                out.push(violation(path, &format!("must not be {name}")));
            }
        }
        // A rule on another type is a contract defect that buf would refuse;
        // nothing to check.
        _ => {}
    }
}

fn check_string(
    rules: &rules::StringRules,
    pattern: Option<&regex::Regex>,
    text: &str,
    path: &str,
    out: &mut Vec<Violation>,
) {
    let length = text.chars().count() as u64;
    if let Some(min) = rules.min_len
        && length < min
    {
        out.push(violation(
            path,
            &format!("must be at least {min} characters long"),
        ));
    }
    if let Some(max) = rules.max_len
        && length > max
    {
        out.push(violation(
            path,
            &format!("must be at most {max} characters long"),
        ));
    }
    if let Some(max) = rules.max_bytes
        && text.len() as u64 > max
    {
        out.push(violation(
            path,
            &format!("must be at most {max} bytes long"),
        ));
    }
    if let Some(pattern) = pattern
        && !pattern.is_match(text)
    {
        out.push(violation(
            path,
            &format!("must match the pattern {}", pattern.as_str()),
        ));
    }
    if !rules.r#in.is_empty() && !rules.r#in.iter().any(|allowed| allowed == text) {
        out.push(violation(
            path,
            &format!("must be one of: {}", rules.r#in.join(", ")),
        ));
    }
    use rules::string_rules::WellKnown;
    match rules.well_known {
        Some(WellKnown::Uuid(true)) if !is_uuid(text) => {
            out.push(violation(
                path,
                "must be a UUID (8-4-4-4-12 hexadecimal digits)",
            ));
        }
        Some(WellKnown::Email(true)) if !is_email(text) => {
            out.push(violation(path, "must be an e-mail address"));
        }
        _ => {}
    }
}

fn check_range(number: i128, bounds: IntegerBounds, path: &str, out: &mut Vec<Violation>) {
    if let Some(constant) = bounds.exactly
        && number != constant
    {
        out.push(violation(path, &format!("must be {constant}")));
    }
    match (bounds.min, bounds.max) {
        (Some(min), Some(max)) if number < min || number > max => {
            out.push(violation(path, &format!("must be between {min} and {max}")));
        }
        (Some(min), None) if number < min => {
            out.push(violation(path, &format!("must be at least {min}")));
        }
        (None, Some(max)) if number > max => {
            out.push(violation(path, &format!("must be at most {max}")));
        }
        _ => {}
    }
}

/// The inclusive range an integer rule allows (`gt`/`gte`, `lt`/`lte`,
/// `const`), for the validator and for the OpenAPI document alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntegerBounds {
    pub min: Option<i128>,
    pub max: Option<i128>,
    pub exactly: Option<i128>,
}

impl IntegerBounds {
    /// The bounds of an int32, int64 or uint32 rule; empty for any other.
    pub fn of(rules: &rules::field_rules::Type) -> IntegerBounds {
        use rules::field_rules::Type;
        // The three rule messages have the same shape in their own types.
        macro_rules! bounds {
            ($int:expr, $module:ident) => {{
                use rules::$module::{GreaterThan, LessThan};
                IntegerBounds {
                    min: $int.greater_than.as_ref().map(|bound| match bound {
                        GreaterThan::Gt(n) => i128::from(*n) + 1,
                        GreaterThan::Gte(n) => i128::from(*n),
                    }),
                    max: $int.less_than.as_ref().map(|bound| match bound {
                        LessThan::Lt(n) => i128::from(*n) - 1,
                        LessThan::Lte(n) => i128::from(*n),
                    }),
                    exactly: $int.r#const.map(i128::from),
                }
            }};
        }
        match rules {
            Type::Int32(int) => bounds!(int, int32_rules),
            Type::Int64(int) => bounds!(int, int64_rules),
            Type::Uint32(int) => bounds!(int, u_int32_rules),
            _ => IntegerBounds::default(),
        }
    }
}

/// The hyphenated form of a UUID, in either case (RFC 9562 §4).
pub fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// An e-mail address as HTML forms accept one (WHATWG "valid e-mail
/// address", the definition protovalidate uses): a local part of
/// atext and dots, and a host of dot-separated labels.
pub fn is_email(text: &str) -> bool {
    const LOCAL: &str = ".!#$%&'*+/=?^_`{|}~-";
    let Some((local, host)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || LOCAL.as_bytes().contains(&byte))
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::I32(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::F32(n) => *n == 0.0,
        Value::F64(n) => *n == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::EnumNumber(n) => *n == 0,
        Value::Message(_) => false,
        Value::List(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
    }
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::String(text) => {
            // Bounded: a key is user input.
            let mut shown: String = text.chars().take(64).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        }
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn map_key_value(key: &MapKey) -> Value {
    match key {
        MapKey::String(text) => Value::String(text.clone()),
        MapKey::Bool(b) => Value::Bool(*b),
        MapKey::I32(n) => Value::I32(*n),
        MapKey::I64(n) => Value::I64(*n),
        MapKey::U32(n) => Value::U32(*n),
        MapKey::U64(n) => Value::U64(*n),
    }
}

fn violation(path: &str, message: &str) -> Violation {
    Violation {
        field: path.to_owned(),
        message: message.to_owned(),
    }
}

/// INVALID_ARGUMENT naming every broken rule (the first few of many).
pub fn invalid_argument(violations: &[Violation]) -> Status {
    let mut text = String::from("invalid request: ");
    for (index, violation) in violations.iter().take(MAX_VIOLATIONS_SHOWN).enumerate() {
        if index > 0 {
            text.push_str("; ");
        }
        text.push_str(&violation.field);
        text.push_str(": ");
        text.push_str(&violation.message);
    }
    if violations.len() > MAX_VIOLATIONS_SHOWN {
        text.push_str(&format!(
            "; and {} more",
            violations.len() - MAX_VIOLATIONS_SHOWN
        ));
    }
    Status::invalid_argument(text)
}

/// The codec of every generated service and client: prost encoding, and on
/// decoding a request of a method, its contract's rules. Answers are decoded
/// as they come (their types are no method's input).
#[derive(Debug, Clone)]
pub struct ValidatingCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for ValidatingCodec<T, U> {
    fn default() -> Self {
        ValidatingCodec {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for ValidatingCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Name + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ValidatingDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ValidatingDecoder { _type: PhantomData }
    }
}

#[derive(Debug, Clone)]
pub struct ValidatingDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default + Name> Decoder for ValidatingDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let validator = Validator::global();
        let name = U::full_name();
        if !validator.is_input(&name) {
            // An answer: a fault of the server that sent it.
            return U::decode(buf)
                .map(Some)
                .map_err(|error| Status::internal(error.to_string()));
        }
        if !validator.checks(&name) {
            return U::decode(buf).map(Some).map_err(undecodable);
        }
        let bytes = buf.copy_to_bytes(buf.remaining());
        let message = U::decode(bytes.clone()).map_err(undecodable)?;
        validator.check_encoded(&name, bytes)?;
        Ok(Some(message))
    }
}

fn undecodable(error: prost::DecodeError) -> Status {
    Status::invalid_argument(format!(
        "the request is not a valid message of this method: {error}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy as pb;

    fn check<M: Message + Name>(message: &M) -> Result<(), Status> {
        Validator::global().check_encoded(&M::full_name(), message.encode_to_vec().into())
    }

    #[test]
    fn ids_must_be_uuids_and_required_ones_set() {
        let id = "0193a8f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b".to_owned();
        assert!(
            check(&pb::GetWorkspaceRequest {
                workspace_id: id.clone()
            })
            .is_ok()
        );
        let status = check(&pb::GetWorkspaceRequest {
            workspace_id: "garbage".into(),
        })
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("workspace_id: must be a UUID"),
            "{status:?}"
        );
        assert!(!status.message().contains("garbage"), "{status:?}");
        let status = check(&pb::GetWorkspaceRequest::default()).unwrap_err();
        assert!(
            status.message().contains("workspace_id: is required"),
            "{status:?}"
        );
    }

    #[test]
    fn every_violation_is_named_and_emails_are_checked() {
        let status = check(&pb::CreateInvitationRequest {
            workspace_id: "x".into(),
            email: "not an address".into(),
            ..Default::default()
        })
        .unwrap_err();
        let message = status.message();
        assert!(
            message.contains("workspace_id: must be a UUID"),
            "{message}"
        );
        assert!(
            message.contains("email: must be an e-mail address"),
            "{message}"
        );
    }

    #[test]
    fn answers_and_unannotated_requests_are_not_checked() {
        let validator = Validator::global();
        assert!(!validator.is_input("tyboo.tenancy.v1.GetWorkspaceResponse"));
        assert!(validator.is_input("tyboo.tenancy.v1.GetWorkspaceRequest"));
        assert!(!validator.checks("tyboo.tenancy.v1.GetWorkspaceResponse"));
    }

    #[test]
    fn ranges_patterns_enums_and_optional_filters() {
        use crate::executor as ex;
        use crate::vault as va;
        // An empty optional filter is not checked; a negative page size is.
        let status = check(&ex::ListExecutionsRequest {
            page_size: -1,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            status.message(),
            "invalid request: page_size: must be at least 0"
        );
        assert!(
            check(&ex::ListExecutionsRequest {
                workflow_id: "nope".into(),
                ..Default::default()
            })
            .unwrap_err()
            .message()
            .contains("workflow_id: must be a UUID")
        );
        assert!(check(&ex::ListExecutionsRequest::default()).is_ok());

        // A role must be set and one of the enum's values.
        let invitation = |role: i32| pb::CreateInvitationRequest {
            workspace_id: "0193a8f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b".into(),
            email: "ada@example.com".into(),
            role,
            ..Default::default()
        };
        assert!(check(&invitation(2)).is_ok());
        assert!(
            check(&invitation(0))
                .unwrap_err()
                .message()
                .contains("role: is required")
        );
        assert!(
            check(&invitation(99))
                .unwrap_err()
                .message()
                .contains("role: must be one of the enum's values")
        );

        // Names: at most 200 characters, and not only blanks or controls.
        let workspace = |name: &str| pb::CreateWorkspaceRequest { name: name.into() };
        assert!(check(&workspace("Ops — Zürich")).is_ok());
        assert!(check(&workspace(&"é".repeat(200))).is_ok());
        for bad in ["   ", "a\u{7}b", &"x".repeat(201)] {
            assert!(check(&workspace(bad)).is_err(), "{bad:?}");
        }

        // A closed list of values, and a bounded list.
        let credential = |kind: &str, hosts: usize| va::CreateCredentialRequest {
            name: "Slack".into(),
            r#type: kind.into(),
            fields: Some(Default::default()),
            allowed_hosts: vec!["api.example.com".into(); hosts],
        };
        assert!(check(&credential("bearer_token", 32)).is_ok());
        assert!(
            check(&credential("smtp", 0))
                .unwrap_err()
                .message()
                .contains("type: must be one of: http_header")
        );
        assert!(
            check(&credential("bearer_token", 33))
                .unwrap_err()
                .message()
                .contains("allowed_hosts: must hold at most 32 items")
        );
    }

    #[test]
    fn formats() {
        assert!(is_uuid("0193A8F0-1C2D-7E3F-8A4B-5C6D7E8F9A0B"));
        for bad in [
            "",
            "0193a8f01c2d7e3f8a4b5c6d7e8f9a0b",
            "0193a8f0-1c2d-7e3f-8a4b-5c6d7e8f9a0g",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
        assert!(is_email("ada+ops@example.co.uk"));
        for bad in [
            "",
            "@example.com",
            "ada@",
            "ada@-x.com",
            "ada@x..com",
            "a b@x.com",
            "ada",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
