//! A bounded pool of expression sandbox processes, used from blocking threads.
//!
//! Each evaluation leases one idle process (or starts one while fewer than the maximum
//! are alive), sends its request and waits for the reply with a deadline. A process that
//! dies mid-request (an allocation failed at its memory cap) or overruns the deadline
//! (killed) is discarded, and the next evaluation that needs one starts a replacement.
//! Callers wait for a free process at most the evaluation deadline, and only so many
//! wait at once; past either they get `Busy`, which the executor retries.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use super::jq::{Exhausted, SandboxFailure};
use super::wire::{self, Ready, Reply, Request};

/// How long a new process may take to start and report its limit.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process whose pipe closed may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How to start one sandbox process.
#[derive(Clone, Debug)]
pub(crate) struct Launcher {
    program: PathBuf,
    args: Vec<String>,
}

impl Launcher {
    /// `<command> expression-sandbox --memory-cap-bytes N --stack-bytes M`.
    pub(crate) fn expression_sandbox(
        command: &Path,
        memory_cap_bytes: usize,
        stack_bytes: usize,
    ) -> Launcher {
        Launcher {
            program: command.to_owned(),
            args: vec![
                "expression-sandbox".to_owned(),
                "--memory-cap-bytes".to_owned(),
                memory_cap_bytes.to_string(),
                "--stack-bytes".to_owned(),
                stack_bytes.to_string(),
            ],
        }
    }

    #[cfg(test)]
    pub(crate) fn new(program: impl Into<PathBuf>, args: Vec<String>) -> Launcher {
        Launcher {
            program: program.into(),
            args,
        }
    }
}

/// Why a request got no reply.
enum Lost {
    /// The process exited or its pipe broke.
    Died,
    /// No reply within the deadline; the process is killed.
    TimedOut,
}

/// One running sandbox process. A reader thread turns its stdout into reply frames;
/// dropping the process kills it, which ends the reader.
struct SandboxProcess {
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<io::Result<Vec<u8>>>,
}

impl SandboxProcess {
    fn start(launcher: &Launcher, max_reply_bytes: usize) -> io::Result<SandboxProcess> {
        let mut child = Command::new(&launcher.program)
            .args(&launcher.args)
            // The sandbox needs no configuration and must hold no secrets.
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Panic and abort messages can quote tenant data; keep them out of the logs.
            .stderr(Stdio::null())
            .spawn()?;
        let (Some(stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the sandbox process has no pipes"));
        };
        let (sender, replies) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("tyboo-jq-reader".to_owned())
            .spawn(move || {
                loop {
                    match wire::read_frame(&mut stdout, max_reply_bytes) {
                        Ok(Some(frame)) => {
                            if sender.send(Ok(frame)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(error) => {
                            let _ = sender.send(Err(error));
                            return;
                        }
                    }
                }
            });
        let mut process = SandboxProcess {
            child,
            stdin,
            replies,
        };
        reader?;
        let ready = match process.replies.recv_timeout(START_TIMEOUT) {
            Ok(Ok(frame)) => serde_json::from_slice::<Ready>(&frame)?,
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                let status = process.exit_status();
                return Err(io::Error::other(format!(
                    "the sandbox process did not report ready ({})",
                    describe(status)
                )));
            }
        };
        tracing::debug!(
            pid = process.child.id(),
            address_space_bytes = ready.address_space_bytes,
            limit_bytes = ready.limit_bytes,
            "expression sandbox process started"
        );
        Ok(process)
    }

    /// Whether an idle process can still take a request.
    fn is_usable(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
            && matches!(self.replies.try_recv(), Err(mpsc::TryRecvError::Empty))
    }

    fn exchange(&mut self, request: &[u8], deadline: Duration) -> Result<Vec<u8>, Lost> {
        if wire::write_frame(&mut self.stdin, request).is_err() {
            return Err(Lost::Died);
        }
        match self.replies.recv_timeout(deadline) {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(Lost::Died),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Lost::TimedOut),
        }
    }

    /// How the process ended, waiting briefly for it to finish exiting; `None` if it
    /// had to be killed.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        let give_up = Instant::now() + EXIT_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "still running".to_owned(), |status| status.to_string())
}

/// Whether a process that died mid-request died of its memory cap: killed by a signal
/// (an allocation failure aborts; the kernel's OOM killer kills) rather than exiting.
fn died_of_memory(status: Option<ExitStatus>) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.is_some_and(|status| status.signal().is_some())
    }
    #[cfg(not(unix))]
    {
        status.is_some_and(|status| !status.success())
    }
}

#[derive(Default)]
struct PoolState {
    idle: Vec<SandboxProcess>,
    /// Processes alive: idle, leased, or being started.
    live: usize,
    waiting: usize,
}

pub(crate) struct SandboxPool {
    launcher: Launcher,
    max_processes: usize,
    max_waiting: usize,
    max_reply_bytes: usize,
    state: Mutex<PoolState>,
    released: Condvar,
    started: AtomicUsize,
}

impl SandboxPool {
    /// A pool of at most `max_processes`, with at most `max_waiting` callers waiting for
    /// one. Replies are bounded by the memory cap: a process cannot build a larger one.
    pub(crate) fn new(
        launcher: Launcher,
        max_processes: usize,
        max_waiting: usize,
        memory_cap_bytes: usize,
    ) -> SandboxPool {
        SandboxPool {
            launcher,
            max_processes: max_processes.max(1),
            max_waiting,
            max_reply_bytes: memory_cap_bytes,
            state: Mutex::new(PoolState::default()),
            released: Condvar::new(),
            started: AtomicUsize::new(0),
        }
    }

    /// Evaluates one request in a sandbox process, waiting at most `deadline` for a free
    /// process and then at most `deadline` for the reply.
    pub(crate) fn evaluate(
        &self,
        request: &Request<'_>,
        deadline: Duration,
    ) -> Result<Reply, SandboxFailure> {
        let payload = serde_json::to_vec(request).map_err(|error| {
            tracing::warn!(%error, "cannot encode an expression sandbox request");
            SandboxFailure::Unavailable
        })?;
        let reply = self.exchange(&payload, deadline)?;
        serde_json::from_slice(&reply).map_err(|error| {
            tracing::warn!(%error, "unreadable reply from an expression sandbox process");
            SandboxFailure::Unavailable
        })
    }

    fn exchange(&self, payload: &[u8], deadline: Duration) -> Result<Vec<u8>, SandboxFailure> {
        let mut lease = self.acquire(deadline)?;
        let process = lease.process.as_mut().ok_or(SandboxFailure::Unavailable)?;
        let outcome = match process.exchange(payload, deadline) {
            Ok(reply) => Ok(reply),
            Err(Lost::TimedOut) => Err(SandboxFailure::Exhausted(Exhausted::Time)),
            Err(Lost::Died) => {
                let status = process.exit_status();
                if died_of_memory(status) {
                    Err(SandboxFailure::MemoryCap)
                } else {
                    tracing::warn!(
                        status = %describe(status),
                        "an expression sandbox process exited during a request"
                    );
                    Err(SandboxFailure::Unavailable)
                }
            }
        };
        // A failed exchange leaves the lease to kill the process when it drops.
        if outcome.is_ok() {
            lease.release();
        }
        outcome
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire(&self, deadline: Duration) -> Result<Lease<'_>, SandboxFailure> {
        let give_up = Instant::now() + deadline;
        let mut state = self.lock();
        if state.waiting >= self.max_waiting {
            return Err(SandboxFailure::Busy);
        }
        state.waiting += 1;
        let outcome = loop {
            if let Some(mut process) = state.idle.pop() {
                if process.is_usable() {
                    break Ok(Some(process));
                }
                state.live -= 1;
                drop(process);
                continue;
            }
            if state.live < self.max_processes {
                state.live += 1;
                break Ok(None);
            }
            let now = Instant::now();
            if now >= give_up {
                break Err(SandboxFailure::Busy);
            }
            state = self
                .released
                .wait_timeout(state, give_up - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        state.waiting -= 1;
        drop(state);
        let process = match outcome? {
            Some(process) => process,
            // Started outside the lock: a start takes milliseconds and must not hold
            // up callers returning processes.
            None => match SandboxProcess::start(&self.launcher, self.max_reply_bytes) {
                Ok(process) => {
                    self.started.fetch_add(1, Ordering::Relaxed);
                    process
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        program = %self.launcher.program.display(),
                        "cannot start an expression sandbox process"
                    );
                    self.forget_one();
                    return Err(SandboxFailure::Unavailable);
                }
            },
        };
        Ok(Lease {
            pool: self,
            process: Some(process),
        })
    }

    /// Accounts for a process that is gone, so a caller may start its replacement.
    fn forget_one(&self) {
        self.lock().live -= 1;
        self.released.notify_one();
    }

    #[cfg(test)]
    fn processes_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn live_processes(&self) -> usize {
        self.lock().live
    }
}

/// A process taken from the pool: returned by [`Lease::release`] after a good reply,
/// killed and forgotten when dropped otherwise.
struct Lease<'p> {
    pool: &'p SandboxPool,
    process: Option<SandboxProcess>,
}

impl Lease<'_> {
    fn release(&mut self) {
        if let Some(process) = self.process.take() {
            self.pool.lock().idle.push(process);
            self.pool.released.notify_one();
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            drop(process);
            self.pool.forget_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::expr::ExpressionLimits;

    /// A shell command that writes one frame holding `payload` to stdout.
    fn print_frame(payload: &str) -> String {
        let length = u32::try_from(payload.len()).expect("small").to_be_bytes();
        let header: String = length.iter().map(|byte| format!("\\{byte:03o}")).collect();
        format!("printf '{header}%s' '{payload}'")
    }

    const READY: &str = r#"{"address_space_bytes":0,"limit_bytes":0}"#;

    /// A pool of one process running `script` after reporting ready.
    fn pool_running(script: &str, max_processes: usize) -> SandboxPool {
        let launcher = Launcher::new(
            "/bin/sh",
            vec![
                "-c".to_owned(),
                format!("ulimit -c 0; {}; {script}", print_frame(READY)),
            ],
        );
        SandboxPool::new(launcher, max_processes, 8, 1024 * 1024)
    }

    fn request(limits: &ExpressionLimits, document: &serde_json::Value) -> Vec<u8> {
        let request = Request::Programs {
            node_id: "t",
            programs: &[],
            document,
            limits,
        };
        serde_json::to_vec(&request).expect("encodes")
    }

    #[test]
    fn a_reply_is_returned_and_its_process_kept_for_the_next_request() {
        let script = format!(
            "{}; exec cat >/dev/null",
            print_frame(r#"{"evaluated":[[1]]}"#)
        );
        let pool = pool_running(&script, 2);
        let limits = ExpressionLimits::default();
        let document = json!({});
        let outcome = pool.evaluate(
            &Request::Programs {
                node_id: "t",
                programs: &[],
                document: &document,
                limits: &limits,
            },
            Duration::from_secs(5),
        );
        assert!(
            matches!(&outcome, Ok(Reply::Evaluated(outputs)) if outputs == &vec![vec![json!(1)]]),
            "{outcome:?}"
        );
        assert_eq!(pool.processes_started(), 1);
        assert_eq!(pool.live_processes(), 1);
        assert_eq!(pool.lock().idle.len(), 1);
    }

    #[test]
    fn a_process_that_aborts_is_reported_at_its_memory_cap_and_replaced() {
        // Reads the frame header, then aborts as a failed allocation would.
        let pool = pool_running("head -c 4 >/dev/null; kill -ABRT $$", 1);
        let payload = request(&ExpressionLimits::default(), &json!({"big": "x"}));
        for attempt in 1..=2 {
            let outcome = pool.exchange(&payload, Duration::from_secs(5));
            assert!(
                matches!(outcome, Err(SandboxFailure::MemoryCap)),
                "attempt {attempt}: {outcome:?}"
            );
            assert_eq!(pool.processes_started(), attempt);
            assert_eq!(pool.live_processes(), 0);
        }
    }

    #[test]
    fn a_process_that_exits_quietly_is_not_blamed_on_memory() {
        let pool = pool_running("exit 0", 1);
        let outcome = pool.exchange(b"{}", Duration::from_secs(5));
        assert!(
            matches!(outcome, Err(SandboxFailure::Unavailable)),
            "{outcome:?}"
        );
        assert_eq!(pool.live_processes(), 0);
    }

    #[test]
    fn a_process_past_the_deadline_is_killed() {
        let pool = pool_running("exec sleep 30", 1);
        let started = Instant::now();
        let outcome = pool.exchange(b"{}", Duration::from_millis(200));
        assert!(
            matches!(outcome, Err(SandboxFailure::Exhausted(Exhausted::Time))),
            "{outcome:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(pool.live_processes(), 0);
        assert!(pool.lock().idle.is_empty());
    }

    #[test]
    fn callers_wait_a_bounded_time_for_a_busy_pool() {
        let pool = Arc::new(pool_running("exec sleep 30", 1));
        let holder = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.exchange(b"{}", Duration::from_secs(1)))
        };
        while pool.processes_started() == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        let outcome = pool.exchange(b"{}", Duration::from_millis(200));
        assert!(matches!(outcome, Err(SandboxFailure::Busy)), "{outcome:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let held = holder.join().expect("joins");
        assert!(matches!(
            held,
            Err(SandboxFailure::Exhausted(Exhausted::Time))
        ));
    }

    #[test]
    fn a_command_that_cannot_start_is_unavailable() {
        let pool = SandboxPool::new(
            Launcher::new("/nonexistent/tyboo", Vec::new()),
            1,
            8,
            1024 * 1024,
        );
        let outcome = pool.exchange(b"{}", Duration::from_secs(1));
        assert!(
            matches!(outcome, Err(SandboxFailure::Unavailable)),
            "{outcome:?}"
        );
        assert_eq!(pool.live_processes(), 0);
    }
}
