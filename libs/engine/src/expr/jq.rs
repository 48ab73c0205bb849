//! Compiling and running jq programs with jaq under a budget.
//!
//! jaq evaluates synchronously and offers no cancellation, so a runaway program is
//! bounded three ways:
//! 1. **Fuel.** Evaluation runs with its own data type whose context is cloned on every
//!    filter call, pipe, comma and variable binding; each clone spends one unit of fuel
//!    and every 1024 clones compare the clock with the deadline. `range`, the one
//!    generator that loops inside native code, is replaced by a copy that spends fuel
//!    per value. When fuel or time runs out the evaluator unwinds (without the panic
//!    hook), which frees everything the program built.
//! 2. **A dedicated thread** with a stack sized to the fuel, so the deepest value a
//!    program can build within its fuel can also be dropped (dropping nests) without
//!    overflowing. The caller waits for it with a
//!    deadline as a backstop; a thread still running past it is left to finish, and the
//!    number of live evaluator threads is capped so that such threads cannot pile up.
//! 3. **Language limits.** Programs cannot define functions, import modules, read the
//!    environment (`env`, `$ENV`), write to stderr or halt; their length is capped.
//!
//! What fuel cannot see is memory growth inside one core operation: a program that
//! doubles a string or array forty times, or repeats a string (`"x" * 1e12`), allocates
//! before it spends much fuel, and a failed allocation aborts the process. So workers
//! evaluate in sandbox processes with an address-space limit (see `pool` and `child`),
//! where such an abort ends only that process; the runner here is what both the sandbox
//! process and in-process evaluation (`sandbox = "thread"`) use.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jaq_core::data::{DataT, HasLut};
use jaq_core::load::lex::{Lexer, StrPart, Tok, Token};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::native::{Fun, v};
use jaq_core::{Compiler, Ctx, Exn, Lut, Vars};
use jaq_json::Val;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ExpressionLimits;

/// Data type of a fuelled evaluation: values are jaq's JSON values, and the context
/// carries the meter.
pub(crate) struct Fuelled;

impl DataT for Fuelled {
    type V<'a> = Val;
    type Data<'a> = FuelledData<'a>;
}

pub(crate) struct FuelledData<'a> {
    lut: &'a Lut<Fuelled>,
    meter: &'a Meter,
}

impl Clone for FuelledData<'_> {
    fn clone(&self) -> Self {
        self.meter.spend();
        FuelledData {
            lut: self.lut,
            meter: self.meter,
        }
    }
}

impl<'a> HasLut<'a, Fuelled> for FuelledData<'a> {
    fn lut(&self) -> &'a Lut<Fuelled> {
        self.lut
    }
}

pub(crate) type Program = jaq_core::Filter<Fuelled>;

/// Why an evaluation was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Exhausted {
    Fuel,
    Time,
}

pub(crate) struct Meter {
    remaining: Cell<u64>,
    deadline: Instant,
}

impl Meter {
    fn new(fuel: u64, deadline: Instant) -> Meter {
        Meter {
            remaining: Cell::new(fuel),
            deadline,
        }
    }

    fn spend(&self) {
        let remaining = self.remaining.get();
        if remaining == 0 {
            resume_unwind(Box::new(Exhausted::Fuel));
        }
        self.remaining.set(remaining - 1);
        if remaining.is_multiple_of(1024) && Instant::now() >= self.deadline {
            resume_unwind(Box::new(Exhausted::Time));
        }
    }
}

/// Natives left out or replaced: `env` reads the worker's environment (its secrets);
/// `debug`/`stderr` would write tenant data to the worker's stderr, so they keep their
/// pass-through meaning but print nothing; `halt` has no meaning inside a workflow;
/// `range` is replaced by a fuelled copy; `fromjson` by a parser with a depth limit
/// (jaq's own recurses without one, so a string of a million `[` would overflow).
const REPLACED_FILTERS: &[&str] = &[
    "env",
    "halt",
    "debug_empty",
    "stderr_empty",
    "range",
    "fromjson",
];
const DENIED_WORDS: &[&str] = &["def", "import", "include"];

fn natives() -> impl Iterator<Item = Fun<Fuelled>> {
    jaq_core::funs::<Fuelled>()
        .chain(jaq_std::funs::<Fuelled>())
        .chain(jaq_json::funs::<Fuelled>())
        .filter(|(name, _, _)| !REPLACED_FILTERS.contains(name))
        .chain(replacements::<Fuelled>())
}

/// Data that carries a meter, so natives can spend fuel.
pub(crate) trait Metered<'a> {
    fn meter(&self) -> &'a Meter;
}

impl<'a> Metered<'a> for FuelledData<'a> {
    fn meter(&self) -> &'a Meter {
        self.meter
    }
}

fn replacements<D>() -> impl Iterator<Item = Fun<D>>
where
    D: for<'a> DataT<V<'a> = Val>,
    for<'a> D::Data<'a>: Metered<'a>,
{
    let silent: jaq_core::RunPtr<D> = |_| Box::new(std::iter::empty());
    let from_json: jaq_core::RunPtr<D> = |cv| {
        let parsed = match &cv.1 {
            Val::TStr(bytes) | Val::BStr(bytes) => serde_json::from_slice::<Value>(bytes)
                .map(|value| to_val(&value))
                .map_err(|error| jaq_core::Error::str(format!("cannot parse as JSON: {error}"))),
            other => Err(jaq_core::Error::str(format!(
                "fromjson needs a string, not {other}"
            ))),
        };
        Box::new(std::iter::once(parsed.map_err(Exn::from)))
    };
    let halt: jaq_core::RunPtr<D> = |_| {
        let error = jaq_core::Error::str("halt is not available in workflow expressions");
        Box::new(std::iter::once(Err(Exn::from(error))))
    };
    [
        jaq_core::native::run::<D>(("debug_empty", v(0), silent)),
        jaq_core::native::run::<D>(("stderr_empty", v(0), silent)),
        jaq_core::native::run::<D>(("halt", v(1), halt)),
        jaq_core::native::run::<D>(("fromjson", v(0), from_json)),
        fuelled_range::<D>(),
    ]
    .into_iter()
}

/// `range/3` with the semantics of jaq's own, spending fuel per value.
fn fuelled_range<D>() -> Fun<D>
where
    D: for<'a> DataT<V<'a> = Val>,
    for<'a> D::Data<'a>: Metered<'a>,
{
    let run: jaq_core::RunPtr<D> = |mut cv| {
        let by = cv.0.pop_var();
        let to = cv.0.pop_var();
        let from = cv.0.pop_var();
        let meter = cv.0.data().meter();
        let ascending = by.partial_cmp(&Val::from(0usize));
        let mut current: Result<Val, Exn<Val>> = Ok(from);
        Box::new(std::iter::from_fn(move || {
            meter.spend();
            match current.clone() {
                Ok(value) => {
                    let more = match ascending {
                        Some(std::cmp::Ordering::Greater) => value < to,
                        Some(std::cmp::Ordering::Less) => value > to,
                        _ => value != to,
                    };
                    more.then(|| {
                        std::mem::replace(&mut current, (value + by.clone()).map_err(Exn::from))
                    })
                }
                Err(error) => {
                    current = Ok(to.clone());
                    Some(Err(error))
                }
            }
        }))
    };
    jaq_core::native::run::<D>(("range", v(3), run))
}

fn reject_denied_words(tokens: &[Token<&str>], previous_is_dot: bool) -> Result<(), String> {
    let mut after_dot = previous_is_dot;
    for Token(text, kind) in tokens {
        match kind {
            Tok::Word if !after_dot && DENIED_WORDS.contains(text) => {
                return Err(format!("`{text}` is not allowed in expressions"));
            }
            Tok::Block(inner) => reject_denied_words(inner, false)?,
            Tok::Str(parts) => {
                for part in parts {
                    if let StrPart::Term(Token(_, Tok::Block(inner))) = part {
                        reject_denied_words(inner, false)?;
                    }
                }
            }
            _ => {}
        }
        after_dot = matches!(kind, Tok::Sym) && (*text == "." || *text == "?.");
    }
    Ok(())
}

/// Compiles a program in the restricted dialect.
pub(crate) fn compile(program: &str) -> Result<Program, String> {
    let tokens = Lexer::new(program).lex().map_err(|errors| {
        let (expected, found) = &errors[0];
        format!("expected {} at `{}`", expected.as_str(), snippet(found))
    })?;
    reject_denied_words(&tokens, false)?;

    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: program,
                path: (),
            },
        )
        .map_err(|errors| {
            errors
                .into_iter()
                .next()
                .map(|(_, error)| match error {
                    jaq_core::load::Error::Io(items) => items
                        .first()
                        .map(|(_, message)| message.clone())
                        .unwrap_or_default(),
                    jaq_core::load::Error::Lex(items) => items
                        .first()
                        .map(|(expected, found)| {
                            format!("expected {} at `{}`", expected.as_str(), snippet(found))
                        })
                        .unwrap_or_default(),
                    jaq_core::load::Error::Parse(items) => items
                        .first()
                        .map(|(expected, found)| {
                            format!("expected {} at `{}`", expected.as_str(), snippet(found))
                        })
                        .unwrap_or_default(),
                })
                .unwrap_or_else(|| "invalid program".to_owned())
        })?;
    Compiler::default()
        .with_funs(natives())
        .compile(modules)
        .map_err(|errors| {
            errors
                .into_iter()
                .flat_map(|(_, undefined)| undefined)
                .next()
                .map(|(name, kind)| format!("undefined {} `{name}`", kind.as_str()))
                .unwrap_or_else(|| "invalid program".to_owned())
        })
}

fn snippet(text: &str) -> String {
    let mut shown: String = text.chars().take(20).collect();
    if shown.is_empty() {
        shown.push_str("end of program");
    }
    shown
}

/// Runs a compiled program on `input`, converting results to JSON within `max_bytes`.
pub(crate) fn run(
    program: &Program,
    input: Val,
    meter: &Meter,
    max_bytes: usize,
) -> Result<Vec<Value>, String> {
    let data = FuelledData {
        lut: &program.lut,
        meter,
    };
    let context = Ctx::<Fuelled>::new(data, Vars::new([]));
    let mut budget = max_bytes;
    let mut outputs = Vec::new();
    for result in program.id.run((context, input)) {
        match jaq_core::unwrap_valr(result) {
            Ok(value) => outputs.push(to_json(&value, 0, &mut budget, max_bytes)?),
            Err(error) => return Err(error.to_string()),
        }
    }
    Ok(outputs)
}

const MAX_DEPTH: usize = 128;

fn spend_bytes(budget: &mut usize, bytes: usize, max_bytes: usize) -> Result<(), String> {
    if bytes > *budget {
        return Err(format!("result exceeds the {max_bytes}-byte cap"));
    }
    *budget -= bytes;
    Ok(())
}

/// Converts a jaq value to JSON. Non-finite numbers become null as in jq; byte strings
/// and invalid UTF-8 become strings with replacement characters. `budget` tracks the
/// serialized size so a huge result is refused while it is converted.
fn to_json(
    value: &Val,
    depth: usize,
    budget: &mut usize,
    max_bytes: usize,
) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("result is nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(match value {
        Val::Null => {
            spend_bytes(budget, 4, max_bytes)?;
            Value::Null
        }
        Val::Bool(flag) => {
            spend_bytes(budget, 5, max_bytes)?;
            Value::Bool(*flag)
        }
        Val::Num(number) => {
            let text = number.to_string();
            spend_bytes(budget, text.len(), max_bytes)?;
            match number.as_isize() {
                Some(integer) => Value::from(integer as i64),
                None => serde_json::from_str::<serde_json::Number>(&text)
                    .ok()
                    .map(Value::Number)
                    .or_else(|| {
                        text.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(Value::Number)
                    })
                    .unwrap_or(Value::Null),
            }
        }
        Val::TStr(bytes) | Val::BStr(bytes) => {
            spend_bytes(budget, bytes.len() + 2, max_bytes)?;
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Arr(items) => {
            spend_bytes(budget, 2 + items.len(), max_bytes)?;
            let mut converted = Vec::with_capacity(items.len());
            for item in items.iter() {
                converted.push(to_json(item, depth + 1, budget, max_bytes)?);
            }
            Value::Array(converted)
        }
        Val::Obj(fields) => {
            spend_bytes(budget, 2 + fields.len(), max_bytes)?;
            let mut converted = serde_json::Map::with_capacity(fields.len());
            for (key, field) in fields.iter() {
                let key = match key {
                    Val::TStr(bytes) | Val::BStr(bytes) => {
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                    other => other.to_string(),
                };
                spend_bytes(budget, key.len() + 3, max_bytes)?;
                let field = to_json(field, depth + 1, budget, max_bytes)?;
                converted.insert(key, field);
            }
            Value::Object(converted)
        }
    })
}

pub(crate) fn to_val(document: &Value) -> Val {
    // A serde_json value always deserializes into a jaq value.
    <Val as serde::Deserialize>::deserialize(document).unwrap_or(Val::Null)
}

/// Why a sandboxed job did not produce its result.
#[derive(Debug)]
pub(crate) enum SandboxFailure {
    Exhausted(Exhausted),
    /// The evaluation outgrew the memory cap of its sandbox process, which died of it.
    MemoryCap,
    /// Too many evaluations are running or waiting; retrying later can succeed.
    Busy,
    /// No sandbox process could be started or spoken to; retrying later can succeed.
    Unavailable,
    Crashed,
}

/// Stack one evaluation step may need in the worst case: a step can nest a value one
/// level deeper, and dropping a nested value takes a few frames per level.
const STACK_BYTES_PER_STEP: usize = 256;

/// Stack of the thread that evaluates under `limits`.
pub(crate) fn evaluator_stack_bytes(limits: &ExpressionLimits) -> usize {
    limits.stack_bytes.max(
        usize::try_from(limits.fuel)
            .unwrap_or(usize::MAX)
            .saturating_mul(STACK_BYTES_PER_STEP),
    )
}

/// Runs `job` on the current thread with a fresh meter. The thread must have
/// [`evaluator_stack_bytes`] of stack.
pub(crate) fn metered<R>(
    limits: &ExpressionLimits,
    job: impl FnOnce(&Meter) -> R,
) -> Result<R, SandboxFailure> {
    let meter = Meter::new(
        limits.fuel,
        Instant::now() + Duration::from_millis(limits.timeout_ms),
    );
    match catch_unwind(AssertUnwindSafe(|| job(&meter))) {
        Ok(result) => Ok(result),
        Err(payload) => match payload.downcast::<Exhausted>() {
            Ok(exhausted) => Err(SandboxFailure::Exhausted(*exhausted)),
            Err(_) => Err(SandboxFailure::Crashed),
        },
    }
}

static RUNNING_EVALUATORS: AtomicUsize = AtomicUsize::new(0);

struct RunningGuard;

impl Drop for RunningGuard {
    fn drop(&mut self) {
        RUNNING_EVALUATORS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `job` on its own evaluator thread in this process, and waits at most the time
/// budget (plus a grace period for the meter to notice) for its result.
pub(crate) fn on_thread<R, F>(limits: &ExpressionLimits, job: F) -> Result<R, SandboxFailure>
where
    R: Send + 'static,
    F: FnOnce(&Meter) -> R + Send + 'static,
{
    if RUNNING_EVALUATORS.fetch_add(1, Ordering::SeqCst) >= limits.max_concurrent_evaluations {
        RUNNING_EVALUATORS.fetch_sub(1, Ordering::SeqCst);
        return Err(SandboxFailure::Busy);
    }
    let guard = RunningGuard;
    let budget = Duration::from_millis(limits.timeout_ms);
    let job_limits = limits.clone();
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("tyboo-jq".to_owned())
        .stack_size(evaluator_stack_bytes(limits))
        .spawn(move || {
            let _guard = guard;
            let _ = sender.send(metered(&job_limits, job));
        });
    if spawned.is_err() {
        return Err(SandboxFailure::Busy);
    }
    match receiver.recv_timeout(budget + Duration::from_millis(250)) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(SandboxFailure::Exhausted(Exhausted::Time)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(SandboxFailure::Crashed),
    }
}
