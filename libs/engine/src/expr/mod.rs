//! Expressions: `{{ jq }}` templates inside node parameters, and the jq programs of
//! `transform`, `if` and `switch`, all evaluated over one input document:
//! `{"trigger", "nodes": {id: output}, "input", "inputs", "execution"}`.

mod child;
mod jq;
mod pool;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Catalog, PathSegment, format_path};
use crate::error::{EngineError, EngineResult, NodeError};
use crate::graph::NodeSpec;

use jq::{Exhausted, Meter, SandboxFailure};
use pool::{Launcher, SandboxPool};
use wire::{Reply, Request};

pub use child::serve_expression_sandbox;

/// Where jq evaluates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpressionSandbox {
    /// In a pool of sandbox processes (`evaluator_command expression-sandbox`), each
    /// under an address-space limit, so a program that allocates without bound ends
    /// only its own process. Falls back to `thread` when no `evaluator_command` is set.
    #[default]
    Process,
    /// On a thread of this process: fuel, time and output limits, but no memory cap.
    Thread,
}

/// Bounds on one evaluation: one node's templates together, or one program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpressionLimits {
    pub max_program_bytes: usize,
    pub timeout_ms: u64,
    /// Evaluation steps (filter calls, bindings, generated values) before the program is stopped.
    pub fuel: u64,
    /// Serialized size of one expression's result.
    pub max_output_bytes: usize,
    /// Evaluator threads alive at once in this process, including ones still finishing
    /// after their caller gave up on them.
    pub max_concurrent_evaluations: usize,
    /// Stack of an evaluator thread. It is raised to at least `fuel` × 256 bytes, because
    /// each step can nest a value one level deeper and dropping a nested value recurses;
    /// the stack is reserved address space, committed only as deep nesting touches it.
    pub stack_bytes: usize,
    pub sandbox: ExpressionSandbox,
    /// The `tyboo` binary that serves `expression-sandbox`; the binary fills in itself.
    pub evaluator_command: Option<PathBuf>,
    /// Memory one sandbox process may take on top of what it holds when idle: the
    /// input document, the program's values and its result.
    pub memory_cap_bytes: usize,
    /// Sandbox processes alive at once; each evaluates one request at a time.
    pub sandbox_processes: usize,
}

impl Default for ExpressionLimits {
    fn default() -> ExpressionLimits {
        ExpressionLimits {
            max_program_bytes: 4 * 1024,
            timeout_ms: 1_000,
            fuel: 1_000_000,
            max_output_bytes: 1024 * 1024,
            max_concurrent_evaluations: 64,
            stack_bytes: 256 * 1024 * 1024,
            sandbox: ExpressionSandbox::Process,
            evaluator_command: None,
            memory_cap_bytes: 256 * 1024 * 1024,
            sandbox_processes: 4,
        }
    }
}

/// The smallest memory cap accepted: below it the input document alone may not fit.
const MIN_MEMORY_CAP_BYTES: usize = 16 * 1024 * 1024;

impl ExpressionLimits {
    pub(crate) fn validate(&self) -> EngineResult<()> {
        let invalid = |message: &str| Err(EngineError::InvalidConfig(message.to_owned()));
        if self.max_concurrent_evaluations == 0 {
            return invalid("limits.expression.max_concurrent_evaluations must be at least 1");
        }
        if self.memory_cap_bytes < MIN_MEMORY_CAP_BYTES {
            return invalid("limits.expression.memory_cap_bytes must be at least 16 MiB");
        }
        if self.sandbox_processes == 0 {
            return invalid("limits.expression.sandbox_processes must be at least 1");
        }
        Ok(())
    }
}

/// Runs evaluations where the configuration says: a cheap clone shared by a worker's
/// node runs.
#[derive(Clone)]
pub(crate) enum Evaluator {
    Thread,
    Process(Arc<SandboxPool>),
}

impl Evaluator {
    pub(crate) fn from_limits(limits: &ExpressionLimits) -> Evaluator {
        match (limits.sandbox, &limits.evaluator_command) {
            (ExpressionSandbox::Thread, _) => Evaluator::Thread,
            (ExpressionSandbox::Process, None) => {
                tracing::warn!(
                    "no limits.expression.evaluator_command is set: jq evaluates in this \
                     process, without a memory cap"
                );
                Evaluator::Thread
            }
            (ExpressionSandbox::Process, Some(command)) => {
                let launcher = Launcher::expression_sandbox(
                    command,
                    limits.memory_cap_bytes,
                    jq::evaluator_stack_bytes(limits),
                );
                Evaluator::Process(Arc::new(SandboxPool::new(
                    launcher,
                    limits.sandbox_processes,
                    limits.max_concurrent_evaluations,
                    limits.memory_cap_bytes,
                )))
            }
        }
    }

    /// [`render_parameters`], in a sandbox process when so configured.
    pub(crate) fn render(
        &self,
        node: &NodeSpec,
        document: &Value,
        limits: &ExpressionLimits,
    ) -> Result<Value, NodeError> {
        let Evaluator::Process(pool) = self else {
            return render_parameters(node, document, limits);
        };
        if !contains_template(&node.parameters) {
            return Ok(node.parameters.clone());
        }
        let request = Request::Render {
            node,
            document,
            limits,
        };
        match pool.evaluate(&request, evaluation_deadline(limits)) {
            Ok(Reply::Rendered(value)) => Ok(value),
            Ok(reply) => Err(reply_error(reply, &node.id, limits)),
            Err(failure) => Err(sandbox_error(failure, &node.id, limits)),
        }
    }

    /// [`evaluate_programs`], in a sandbox process when so configured.
    pub(crate) fn evaluate(
        &self,
        node_id: &str,
        programs: Vec<ProgramSource>,
        document: Arc<Value>,
        limits: &ExpressionLimits,
    ) -> Result<Vec<Vec<Value>>, NodeError> {
        let Evaluator::Process(pool) = self else {
            return evaluate_programs(node_id, programs, document, limits);
        };
        let request = Request::Programs {
            node_id,
            programs: &programs,
            document: &document,
            limits,
        };
        match pool.evaluate(&request, evaluation_deadline(limits)) {
            Ok(Reply::Evaluated(outputs)) => Ok(outputs),
            Ok(reply) => Err(reply_error(reply, node_id, limits)),
            Err(failure) => Err(sandbox_error(failure, node_id, limits)),
        }
    }
}

/// How long a sandbox process may take to answer: the time limit, plus a grace period
/// for its meter to notice, after which the process is killed.
fn evaluation_deadline(limits: &ExpressionLimits) -> Duration {
    Duration::from_millis(limits.timeout_ms) + Duration::from_millis(500)
}

/// The error for a reply that carries no result.
fn reply_error(reply: Reply, node_id: &str, limits: &ExpressionLimits) -> NodeError {
    match reply {
        Reply::Failed(error) => error.into_node_error(),
        Reply::Exhausted(exhausted) => {
            sandbox_error(SandboxFailure::Exhausted(exhausted), node_id, limits)
        }
        Reply::Crashed => sandbox_error(SandboxFailure::Crashed, node_id, limits),
        Reply::Refused(reason) => {
            tracing::warn!(node_id, %reason, "the expression sandbox refused a request");
            sandbox_error(SandboxFailure::Unavailable, node_id, limits)
        }
        Reply::Rendered(_) | Reply::Evaluated(_) => {
            tracing::warn!(node_id, "the expression sandbox answered another request");
            sandbox_error(SandboxFailure::Unavailable, node_id, limits)
        }
    }
}

/// Whether a string holds a `{{ }}` template.
pub fn has_template(text: &str) -> bool {
    text.contains("{{")
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece<'t> {
    Text(&'t str),
    Expression(&'t str),
}

/// Splits `text` into literal text and `{{ … }}` expressions. The closing `}}` is the
/// first one outside jq strings and braces, so object literals such as `{{ {a: {b: 1}} }}`
/// work.
fn parse_template(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let body = &rest[start + 2..];
        let end = find_closing(body).ok_or_else(|| "`{{` without a matching `}}`".to_owned())?;
        let expression = body[..end].trim();
        if expression.is_empty() {
            return Err("empty `{{ }}` expression".to_owned());
        }
        pieces.push(Piece::Expression(expression));
        rest = &body[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

fn find_closing(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if in_string {
            match byte {
                b'\\' => index += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' if depth > 0 => depth -= 1,
                b'}' if bytes.get(index + 1) == Some(&b'}') => return Some(index),
                _ => {}
            }
        }
        index += 1;
    }
    None
}

/// Checks that every `{{ }}` expression in `text` compiles (save-time validation).
pub fn check_template(text: &str, max_program_bytes: usize) -> Result<(), String> {
    for piece in parse_template(text)? {
        if let Piece::Expression(expression) = piece {
            if expression.len() > max_program_bytes {
                return Err(format!(
                    "expression of {} bytes exceeds the {max_program_bytes}-byte limit",
                    expression.len()
                ));
            }
            jq::compile(expression).map_err(|message| {
                format!("expression `{{{{ {expression} }}}}` does not compile: {message}")
            })?;
        }
    }
    Ok(())
}

/// Checks that a jq program compiles (save-time validation).
pub fn check_program(program: &str) -> Result<(), String> {
    jq::compile(program).map(|_| ())
}

fn budget_message(exhausted: Exhausted, limits: &ExpressionLimits) -> String {
    match exhausted {
        Exhausted::Fuel => format!("evaluation exceeded its budget of {} steps", limits.fuel),
        Exhausted::Time => format!(
            "evaluation exceeded its time limit of {} ms",
            limits.timeout_ms
        ),
    }
}

fn sandbox_error(failure: SandboxFailure, node_id: &str, limits: &ExpressionLimits) -> NodeError {
    match failure {
        SandboxFailure::Exhausted(exhausted) => NodeError::permanent(format!(
            "node `{node_id}`: {}",
            budget_message(exhausted, limits)
        )),
        SandboxFailure::MemoryCap => NodeError::permanent(format!(
            "node `{node_id}`: expression exceeded its memory cap of {} bytes",
            limits.memory_cap_bytes
        )),
        SandboxFailure::Busy => NodeError::transient(format!(
            "node `{node_id}`: too many expression evaluations are running in this worker"
        )),
        SandboxFailure::Unavailable => NodeError::transient(format!(
            "node `{node_id}`: the expression sandbox is unavailable"
        )),
        SandboxFailure::Crashed => {
            NodeError::permanent(format!("node `{node_id}`: expression evaluation failed"))
        }
    }
}

fn collapse(mut outputs: Vec<Value>) -> Value {
    match outputs.len() {
        0 => Value::Null,
        1 => outputs.remove(0),
        _ => Value::Array(outputs),
    }
}

/// Renders a node's parameters: a string that is exactly one `{{ … }}` becomes the JSON
/// value of the expression (null if it yields nothing, an array if it yields several);
/// text with expressions interpolates them (strings raw, other values as JSON). jq
/// programs of `transform`, `if` and `switch` are left as they are.
///
/// This blocks the calling thread for up to the time limit: call it from a blocking
/// context.
pub fn render_parameters(
    node: &NodeSpec,
    document: &Value,
    limits: &ExpressionLimits,
) -> Result<Value, NodeError> {
    if !contains_template(&node.parameters) {
        return Ok(node.parameters.clone());
    }
    let node_copy = node.clone();
    let document = document.clone();
    let job_limits = limits.clone();
    let outcome = jq::on_thread(limits, move |meter| {
        render_with_meter(&node_copy, &document, &job_limits, meter)
    });
    match outcome {
        Ok(result) => result,
        Err(failure) => Err(sandbox_error(failure, &node.id, limits)),
    }
}

/// Renders `node`'s parameters on the current thread, spending `meter`.
fn render_with_meter(
    node: &NodeSpec,
    document: &Value,
    limits: &ExpressionLimits,
    meter: &Meter,
) -> Result<Value, NodeError> {
    let mut renderer = Renderer {
        node_id: &node.id,
        node_type: &node.node_type,
        input: jq::to_val(document),
        meter,
        limits,
    };
    let mut path = Vec::new();
    renderer.render(&node.parameters, &mut path)
}

pub(crate) fn contains_template(value: &Value) -> bool {
    match value {
        Value::String(text) => has_template(text),
        Value::Array(items) => items.iter().any(contains_template),
        Value::Object(fields) => fields.values().any(contains_template),
        _ => false,
    }
}

struct Renderer<'r> {
    node_id: &'r str,
    node_type: &'r str,
    input: jaq_json::Val,
    meter: &'r jq::Meter,
    limits: &'r ExpressionLimits,
}

impl Renderer<'_> {
    fn error(&self, path: &[PathSegment<'_>], message: String) -> NodeError {
        let parameter = format_path(path);
        NodeError::permanent(format!(
            "node `{}` parameter `{parameter}`: {message}",
            self.node_id
        ))
        .with_parameter(parameter)
    }

    fn render<'v>(
        &mut self,
        value: &'v Value,
        path: &mut Vec<PathSegment<'v>>,
    ) -> Result<Value, NodeError> {
        match value {
            Value::String(text) if has_template(text) => {
                let is_program = Catalog::standard_ref()
                    .get(self.node_type)
                    .is_some_and(|info| info.is_program_parameter(path));
                if is_program {
                    return Ok(value.clone());
                }
                self.render_string(text, path)
            }
            Value::Array(items) => {
                let mut rendered = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    path.push(PathSegment::Index(index));
                    let result = self.render(item, path);
                    path.pop();
                    rendered.push(result?);
                }
                Ok(Value::Array(rendered))
            }
            Value::Object(fields) => {
                let mut rendered = serde_json::Map::with_capacity(fields.len());
                for (key, field) in fields {
                    path.push(PathSegment::Key(key));
                    let result = self.render(field, path);
                    path.pop();
                    rendered.insert(key.clone(), result?);
                }
                Ok(Value::Object(rendered))
            }
            other => Ok(other.clone()),
        }
    }

    fn evaluate(
        &self,
        expression: &str,
        path: &[PathSegment<'_>],
    ) -> Result<Vec<Value>, NodeError> {
        if expression.len() > self.limits.max_program_bytes {
            return Err(self.error(
                path,
                format!(
                    "expression of {} bytes exceeds the {}-byte limit",
                    expression.len(),
                    self.limits.max_program_bytes
                ),
            ));
        }
        let program = jq::compile(expression).map_err(|message| {
            self.error(
                path,
                format!("expression `{{{{ {expression} }}}}` does not compile: {message}"),
            )
        })?;
        jq::run(
            &program,
            self.input.clone(),
            self.meter,
            self.limits.max_output_bytes,
        )
        .map_err(|message| {
            self.error(
                path,
                format!("expression `{{{{ {expression} }}}}` failed: {message}"),
            )
        })
    }

    fn render_string(&mut self, text: &str, path: &[PathSegment<'_>]) -> Result<Value, NodeError> {
        let pieces = parse_template(text).map_err(|message| self.error(path, message))?;
        if let [Piece::Expression(expression)] = pieces.as_slice() {
            return Ok(collapse(self.evaluate(expression, path)?));
        }
        let mut rendered = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(literal) => rendered.push_str(literal),
                Piece::Expression(expression) => match collapse(self.evaluate(expression, path)?) {
                    Value::String(inner) => rendered.push_str(&inner),
                    other => rendered.push_str(&other.to_string()),
                },
            }
            if rendered.len() > self.limits.max_output_bytes {
                return Err(self.error(
                    path,
                    format!(
                        "rendered text exceeds the {}-byte cap",
                        self.limits.max_output_bytes
                    ),
                ));
            }
        }
        Ok(Value::String(rendered))
    }
}

/// A jq program to evaluate, and the parameter it came from (for errors).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProgramSource {
    pub parameter: String,
    pub program: String,
}

/// Evaluates programs over `document` in one sandboxed evaluation, returning each
/// program's outputs. Blocks the calling thread for up to the time limit.
pub fn evaluate_programs(
    node_id: &str,
    programs: Vec<ProgramSource>,
    document: Arc<Value>,
    limits: &ExpressionLimits,
) -> Result<Vec<Vec<Value>>, NodeError> {
    let job_limits = limits.clone();
    let job_node_id = node_id.to_owned();
    let outcome = jq::on_thread(limits, move |meter| {
        programs_with_meter(&job_node_id, &programs, &document, &job_limits, meter)
    });
    match outcome {
        Ok(result) => result,
        Err(failure) => Err(sandbox_error(failure, node_id, limits)),
    }
}

/// Evaluates programs on the current thread, spending `meter`.
fn programs_with_meter(
    node_id: &str,
    programs: &[ProgramSource],
    document: &Value,
    limits: &ExpressionLimits,
    meter: &Meter,
) -> Result<Vec<Vec<Value>>, NodeError> {
    let input = jq::to_val(document);
    let mut results = Vec::with_capacity(programs.len());
    for source in programs {
        let fail = |message: String| {
            NodeError::permanent(format!(
                "node `{node_id}` parameter `{}`: {message}",
                source.parameter
            ))
            .with_parameter(source.parameter.clone())
        };
        if source.program.len() > limits.max_program_bytes {
            return Err(fail(format!(
                "jq program of {} bytes exceeds the {}-byte limit",
                source.program.len(),
                limits.max_program_bytes
            )));
        }
        let program = jq::compile(&source.program)
            .map_err(|message| fail(format!("invalid jq program: {message}")))?;
        let outputs = jq::run(&program, input.clone(), meter, limits.max_output_bytes)
            .map_err(|message| fail(format!("jq program failed: {message}")))?;
        results.push(outputs);
    }
    Ok(results)
}

/// jq truthiness: everything but `false` and `null` is true.
pub fn is_truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

/// The result of a program as one value: nothing is null, one output is itself, several
/// become an array.
pub fn single_value(outputs: Vec<Value>) -> Value {
    collapse(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_on_balanced_braces() {
        let pieces = parse_template("a {{ {x: {y: 1}} }} b {{ .z }}").expect("parses");
        assert_eq!(
            pieces,
            vec![
                Piece::Text("a "),
                Piece::Expression("{x: {y: 1}}"),
                Piece::Text(" b "),
                Piece::Expression(".z"),
            ]
        );
        assert!(parse_template("{{ .a ").is_err());
        assert!(parse_template("{{ }}").is_err());
        assert_eq!(
            parse_template(r#"{{ "}}" }}"#).expect("parses"),
            vec![Piece::Expression(r#""}}""#)]
        );
    }

    #[test]
    fn denied_words_and_filters_do_not_compile() {
        assert!(check_program("def f: f; f").is_err());
        assert!(check_program("env").is_err());
        assert!(check_program("$ENV").is_err());
        assert!(check_program("include \"x\"; .").is_err());
        let field_names = check_program(".def + .env + .a.include");
        assert!(field_names.is_ok(), "field names are fine: {field_names:?}");
        assert!(check_program("[range(3)] | map(. * 2)").is_ok());
    }
}
