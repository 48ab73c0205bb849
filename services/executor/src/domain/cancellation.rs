//! In-process cancellation: a worker running a step of an execution listens
//! here, and a cancel (or time-out) committed in this process wakes it at
//! once. Workers in other processes notice through their heartbeat, which
//! finds the step no longer theirs.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;
use uuid::Uuid;

#[derive(Default)]
pub struct CancellationRegistry {
    executions: Mutex<HashMap<Uuid, watch::Sender<bool>>>,
}

impl CancellationRegistry {
    /// A receiver that turns true when the execution is stopped.
    pub fn listen(&self, execution_id: Uuid) -> watch::Receiver<bool> {
        let mut executions = self.lock();
        executions
            .entry(execution_id)
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// Wakes every listener of the execution.
    pub fn cancel(&self, execution_id: Uuid) {
        if let Some(sender) = self.lock().remove(&execution_id) {
            sender.send_replace(true);
        }
    }

    /// Forgets an execution nobody listens to any more, so the map holds
    /// only executions with a step running in this process.
    pub fn release(&self, execution_id: Uuid) {
        let mut executions = self.lock();
        if executions
            .get(&execution_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            executions.remove(&execution_id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Sender<bool>>> {
        self.executions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listeners_wake_on_cancel_and_idle_entries_are_dropped() {
        let registry = CancellationRegistry::default();
        let execution_id = Uuid::now_v7();
        let mut receiver = registry.listen(execution_id);
        registry.cancel(execution_id);
        receiver.wait_for(|stopped| *stopped).await.unwrap();

        let other = Uuid::now_v7();
        let receiver = registry.listen(other);
        drop(receiver);
        registry.release(other);
        assert!(registry.lock().is_empty());
    }
}
