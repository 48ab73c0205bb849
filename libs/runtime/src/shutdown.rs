//! Graceful shutdown: one signal, watched by every server of the process.
//!
//! On SIGTERM (or Ctrl-C) the trigger fires; servers mark themselves
//! NOT_SERVING, stop accepting, and let in-flight calls finish.

use tokio::sync::watch;

/// Fires once when the process should drain and stop.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            sender: watch::channel(false).0,
        }
    }

    /// Starts the drain.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Completes once the drain has started.
    pub fn signaled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            // An error means every sender is gone, which also means stop.
            let _ = receiver.wait_for(|triggered| *triggered).await;
        }
    }

    /// Triggers on SIGTERM or Ctrl-C. The handlers are in place when this
    /// returns, so a signal that arrives just after start-up (say, once the
    /// banner is read) drains the process instead of killing it outright.
    pub fn listen_for_signals(&self) {
        let shutdown = self.clone();
        let signal = wait_for_signal();
        tokio::spawn(async move {
            signal.await;
            tracing::info!("shutdown signal received, draining");
            shutdown.trigger();
        });
    }
}

/// Registers the handlers now; the future completes on the first signal.
#[cfg(unix)]
fn wait_for_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (terminate, interrupt) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn wait_for_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
