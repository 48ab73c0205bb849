//! The expression sandbox process (`tyboo expression-sandbox`): evaluates requests from
//! its worker, one at a time, under an address-space limit.
//!
//! The limit is the address space the idle process holds (the mapped binary, the
//! evaluation thread's reserved stack, the allocator's arenas) plus the memory cap, so
//! the cap measures what a program allocates, not the process around it. A program that
//! allocates past it makes the allocation fail, which aborts this process only; the
//! worker sees the pipe close and reports the memory cap.

use std::io::{self, BufReader, BufWriter};

use rlimit::Resource;

use super::jq::{self, SandboxFailure};
use super::wire::{self, Ready, ReceivedRequest, Reply};
use super::{ExpressionLimits, programs_with_meter, render_with_meter};

/// Serves sandbox requests on stdin/stdout until stdin closes. `stack_bytes` is the
/// evaluation thread's stack: the worker passes what its limits need.
///
/// Call it from `main` before anything else starts: no async runtime, no logging to
/// stdout (stdout carries the frames).
pub fn serve_expression_sandbox(memory_cap_bytes: u64, stack_bytes: usize) -> io::Result<()> {
    // An abort at the cap must not leave a core file of up to the cap behind.
    Resource::CORE.set(0, 0)?;
    // The one thread that evaluates owns the deep stack; it is reserved before the
    // limit is set, so it counts in the idle address space and not against the cap.
    let evaluator = std::thread::Builder::new()
        .name("tyboo-jq".to_owned())
        .stack_size(stack_bytes)
        .spawn(move || serve(memory_cap_bytes, stack_bytes))?;
    evaluator
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the evaluation thread panicked")))
}

fn serve(memory_cap_bytes: u64, stack_bytes: usize) -> io::Result<()> {
    warm_up();
    let address_space_bytes = address_space_bytes()?;
    // An operator's lower hard limit stays in force.
    let (_, hard_limit_bytes) = Resource::AS.get()?;
    let limit_bytes = address_space_bytes
        .saturating_add(memory_cap_bytes)
        .min(hard_limit_bytes);
    Resource::AS.set(limit_bytes, limit_bytes)?;

    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let ready = Ready {
        address_space_bytes,
        limit_bytes,
    };
    wire::write_frame(&mut output, &serde_json::to_vec(&ready)?)?;
    let max_request_bytes = usize::try_from(memory_cap_bytes).unwrap_or(usize::MAX);
    while let Some(frame) = wire::read_frame(&mut input, max_request_bytes)? {
        let reply = match serde_json::from_slice::<ReceivedRequest>(&frame) {
            Ok(request) => {
                drop(frame);
                answer(request, stack_bytes)
            }
            Err(error) => Reply::Refused(format!("unreadable request: {error}")),
        };
        wire::write_frame(&mut output, &serde_json::to_vec(&reply)?)?;
    }
    Ok(())
}

/// Runs one evaluation the way the in-process evaluator does, on this thread.
fn answer(request: ReceivedRequest, stack_bytes: usize) -> Reply {
    let limits = match &request {
        ReceivedRequest::Render { limits, .. } | ReceivedRequest::Programs { limits, .. } => limits,
    };
    if jq::evaluator_stack_bytes(limits) > stack_bytes {
        return Reply::Refused(format!(
            "the limits need a {}-byte stack; this process has {stack_bytes}",
            jq::evaluator_stack_bytes(limits)
        ));
    }
    let outcome = match &request {
        ReceivedRequest::Render {
            node,
            document,
            limits,
        } => jq::metered(limits, |meter| {
            render_with_meter(node, document, limits, meter).map(Reply::Rendered)
        }),
        ReceivedRequest::Programs {
            node_id,
            programs,
            document,
            limits,
        } => jq::metered(limits, |meter| {
            programs_with_meter(node_id, programs, document, limits, meter).map(Reply::Evaluated)
        }),
    };
    match outcome {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => Reply::Failed(error.into()),
        Err(SandboxFailure::Exhausted(exhausted)) => Reply::Exhausted(exhausted),
        Err(_) => Reply::Crashed,
    }
}

/// Runs a small program once, so the allocator arena of this thread and the lazily
/// built parts of the evaluator exist before the idle address space is measured.
fn warm_up() {
    let limits = ExpressionLimits::default();
    let document = serde_json::json!({"input": [1, 2, 3]});
    let _ = jq::metered(&limits, |meter| {
        let program = jq::compile(".input | map(. * 2) | tostring")?;
        jq::run(&program, jq::to_val(&document), meter, 1024)
    });
}

/// The process's virtual size (`VmSize`), which `RLIMIT_AS` bounds.
fn address_space_bytes() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kilobytes| kilobytes.trim().parse::<u64>().ok())
        .map(|kilobytes| kilobytes * 1024)
        .ok_or_else(|| io::Error::other("no VmSize in /proc/self/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_space_is_read_from_proc() {
        let bytes = address_space_bytes().expect("reads /proc/self/status");
        assert!(bytes > 1024 * 1024, "{bytes}");
    }
}
