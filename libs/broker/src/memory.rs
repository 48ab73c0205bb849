//! The embedded queue: real and correct for one process. Ready jobs sit in
//! per-pool, per-workspace FIFO queues served round robin across the pool's
//! workspaces (see [`PoolQueue`]), delayed jobs in one heap ordered by due time, and
//! deliveries in an in-flight map whose deadlines sit in a second heap.
//! Nothing polls: a waiting consumer sleeps until the earliest due time or
//! deadline it could act on, or until an enqueue or release wakes it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{BrokerConfig, BrokerError, BrokerResult, Delivery, Dispatch, Job, PoolStats, metrics};

#[derive(Clone)]
pub struct InProcessQueue {
    shared: Arc<Shared>,
}

struct Shared {
    visibility_timeout: Duration,
    state: Mutex<State>,
    /// Woken on every enqueue and release, so that waiting consumers either
    /// take the new job or recompute how long to sleep.
    changed: Notify,
}

#[derive(Default)]
struct State {
    pools: HashMap<String, PoolQueue>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    in_flight: HashMap<u64, InFlight>,
    /// Deadlines of in-flight messages. Entries outlive their message when it
    /// is acknowledged or redelivered; they are recognised as stale by a
    /// deadline that no longer matches and dropped when they come due.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    next_sequence: u64,
    /// Pool index a receive starts from, rotated so that no pool is always
    /// served first.
    rotation: usize,
}

/// One pool's jobs. Ready jobs are kept per workspace, and `turns` holds each
/// workspace that has any exactly once, in the order they are served: a take
/// pops the workspace at the front, hands out its oldest job and puts it at
/// the back if it has more. So a workspace with 10,000 ready jobs delays
/// another workspace's first job by at most one job, and each step costs
/// O(1). A workspace whose queue empties is removed, freeing its memory.
#[derive(Default)]
struct PoolQueue {
    ready: HashMap<Uuid, VecDeque<Ready>>,
    turns: VecDeque<Uuid>,
    ready_len: u64,
    delayed: u64,
    in_flight: u64,
    reclaimed_total: u64,
}

impl PoolQueue {
    /// Queues a job behind its workspace's other ready jobs.
    fn push_back(&mut self, ready: Ready) {
        let workspace = ready.job.workspace_id;
        let queue = self.ready.entry(workspace).or_default();
        if queue.is_empty() {
            self.turns.push_back(workspace);
        }
        queue.push_back(ready);
        self.ready_len += 1;
    }

    /// Puts a job ahead of its workspace's other ready jobs (an expired
    /// delivery); a workspace with nothing else ready gets the next turn.
    fn push_front(&mut self, ready: Ready) {
        let workspace = ready.job.workspace_id;
        let queue = self.ready.entry(workspace).or_default();
        if queue.is_empty() {
            self.turns.push_front(workspace);
        }
        queue.push_front(ready);
        self.ready_len += 1;
    }

    /// The oldest ready job of the workspace whose turn it is.
    fn pop(&mut self) -> Option<Ready> {
        while let Some(workspace) = self.turns.pop_front() {
            let Some(queue) = self.ready.get_mut(&workspace) else {
                continue;
            };
            let Some(ready) = queue.pop_front() else {
                self.ready.remove(&workspace);
                continue;
            };
            if queue.is_empty() {
                self.ready.remove(&workspace);
                // A burst of many workspaces leaves a large table behind.
                if self.ready.capacity() > 64 && self.ready.capacity() > 4 * self.ready.len() {
                    self.ready.shrink_to(2 * self.ready.len());
                }
            } else {
                self.turns.push_back(workspace);
            }
            self.ready_len -= 1;
            return Some(ready);
        }
        None
    }
}

struct Ready {
    message_id: u64,
    job: Job,
    previous_deliveries: u32,
    ready_since: Instant,
}

struct Delayed {
    due: Instant,
    sequence: u64,
    job: Job,
    previous_deliveries: u32,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}

impl Eq for Delayed {}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

struct InFlight {
    job: Job,
    delivery_count: u32,
    deadline: Instant,
}

impl InProcessQueue {
    pub fn new(config: &BrokerConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                visibility_timeout: config.visibility_timeout(),
                state: Mutex::new(State::default()),
                changed: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue half-updated
        // in a way later calls would trip over, so keep serving.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Converts a wall-clock due time into the monotonic clock the timers use.
fn due_instant(not_before: Option<DateTime<Utc>>, now: Instant) -> Option<Instant> {
    let due_in = not_before? - Utc::now();
    let due_in = due_in.to_std().ok().filter(|delay| !delay.is_zero())?;
    Some(now + due_in)
}

impl State {
    fn next_sequence(&mut self) -> u64 {
        self.next_sequence += 1;
        self.next_sequence
    }

    fn push(&mut self, job: Job, previous_deliveries: u32, due: Option<Instant>, now: Instant) {
        let sequence = self.next_sequence();
        let pool = self.pools.entry(job.pool.clone()).or_default();
        match due {
            Some(due) => {
                pool.delayed += 1;
                self.delayed.push(Reverse(Delayed {
                    due,
                    sequence,
                    job,
                    previous_deliveries,
                }));
            }
            None => pool.push_back(Ready {
                message_id: sequence,
                job,
                previous_deliveries,
                ready_since: now,
            }),
        }
    }

    /// Moves due delayed jobs to the back of their workspace's queue and
    /// expired deliveries to the front, ahead of jobs that were never tried.
    fn settle(&mut self, now: Instant) {
        while self
            .delayed
            .peek()
            .is_some_and(|Reverse(delayed)| delayed.due <= now)
        {
            let Some(Reverse(delayed)) = self.delayed.pop() else {
                break;
            };
            let pool = self.pools.entry(delayed.job.pool.clone()).or_default();
            pool.delayed -= 1;
            pool.push_back(Ready {
                message_id: delayed.sequence,
                job: delayed.job,
                previous_deliveries: delayed.previous_deliveries,
                ready_since: delayed.due,
            });
        }
        while self
            .deadlines
            .peek()
            .is_some_and(|Reverse((deadline, _))| *deadline <= now)
        {
            let Some(Reverse((deadline, message_id))) = self.deadlines.pop() else {
                break;
            };
            let expired = self
                .in_flight
                .get(&message_id)
                .is_some_and(|in_flight| in_flight.deadline == deadline);
            if !expired {
                continue;
            }
            let Some(in_flight) = self.in_flight.remove(&message_id) else {
                continue;
            };
            let pool = self.pools.entry(in_flight.job.pool.clone()).or_default();
            pool.in_flight -= 1;
            pool.reclaimed_total += 1;
            metrics::record_reclaimed(&in_flight.job.pool, 1);
            pool.push_front(Ready {
                message_id,
                job: in_flight.job,
                previous_deliveries: in_flight.delivery_count,
                ready_since: deadline,
            });
        }
    }

    /// Takes up to `max` jobs, one per pool in turn, so that a long queue in
    /// one pool cannot starve the others; within a pool, one per workspace in
    /// turn.
    fn take(&mut self, pools: &[String], max: usize, deadline: Instant) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        if pools.is_empty() {
            return deliveries;
        }
        self.rotation = self.rotation.wrapping_add(1);
        let start = self.rotation % pools.len();
        let mut exhausted = vec![false; pools.len()];
        while deliveries.len() < max && exhausted.iter().any(|done| !done) {
            for offset in 0..pools.len() {
                if deliveries.len() >= max {
                    break;
                }
                let index = (start + offset) % pools.len();
                if exhausted[index] {
                    continue;
                }
                let Some(pool) = self.pools.get_mut(&pools[index]) else {
                    exhausted[index] = true;
                    continue;
                };
                let Some(ready) = pool.pop() else {
                    exhausted[index] = true;
                    continue;
                };
                pool.in_flight += 1;
                let delivery_count = ready.previous_deliveries.saturating_add(1);
                self.in_flight.insert(
                    ready.message_id,
                    InFlight {
                        job: ready.job.clone(),
                        delivery_count,
                        deadline,
                    },
                );
                self.deadlines.push(Reverse((deadline, ready.message_id)));
                deliveries.push(Delivery {
                    id: ready.message_id.to_string(),
                    job: ready.job,
                    delivery_count,
                });
            }
        }
        deliveries
    }

    /// The earliest moment something could become deliverable without an
    /// enqueue or release.
    fn next_change(&self) -> Option<Instant> {
        let next_due = self.delayed.peek().map(|Reverse(delayed)| delayed.due);
        let next_deadline = self
            .deadlines
            .peek()
            .map(|Reverse((deadline, _))| *deadline);
        match (next_due, next_deadline) {
            (Some(due), Some(deadline)) => Some(due.min(deadline)),
            (due, deadline) => due.or(deadline),
        }
    }

    /// Removes a delivery from the in-flight map; `None` when it was already
    /// acknowledged, released or handed to someone else after expiring.
    fn settle_delivery(&mut self, delivery: &Delivery) -> BrokerResult<Option<InFlight>> {
        let message_id: u64 = delivery
            .id
            .parse()
            .map_err(|_| BrokerError::Invalid(format!("unknown message id {:?}", delivery.id)))?;
        let Some(in_flight) = self.in_flight.remove(&message_id) else {
            return Ok(None);
        };
        if let Some(pool) = self.pools.get_mut(&in_flight.job.pool) {
            pool.in_flight -= 1;
        }
        Ok(Some(in_flight))
    }
}

#[async_trait]
impl Dispatch for InProcessQueue {
    async fn enqueue(&self, job: Job, not_before: Option<DateTime<Utc>>) -> BrokerResult<()> {
        self.enqueue_many(vec![(job, not_before)]).await
    }

    async fn enqueue_many(&self, jobs: Vec<(Job, Option<DateTime<Utc>>)>) -> BrokerResult<()> {
        for (job, _) in &jobs {
            job.validate()?;
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        {
            let mut state = self.lock();
            for (job, not_before) in jobs {
                metrics::record_enqueued(&job.pool, 1);
                state.push(job, 0, due_instant(not_before, now), now);
            }
        }
        self.shared.changed.notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        pools: &[String],
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> BrokerResult<Vec<Delivery>> {
        let mut unique_pools: Vec<String> = Vec::with_capacity(pools.len());
        for pool in pools {
            crate::validate_pool(pool)?;
            if !unique_pools.contains(pool) {
                unique_pools.push(pool.clone());
            }
        }
        let give_up_at = Instant::now() + wait;
        loop {
            // Registered before the state is checked, so an enqueue that lands
            // between the check and the sleep still wakes this consumer.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            let now = Instant::now();
            let wake_at = {
                let mut state = self.lock();
                state.settle(now);
                let deadline = now + self.shared.visibility_timeout;
                let deliveries = state.take(&unique_pools, max, deadline);
                if !deliveries.is_empty() || now >= give_up_at || max == 0 {
                    return Ok(deliveries);
                }
                state
                    .next_change()
                    .map_or(give_up_at, |next| next.min(give_up_at))
            };
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> BrokerResult<()> {
        let acked = self.lock().settle_delivery(delivery)?;
        if acked.is_some() {
            metrics::record_acked(&delivery.job.pool);
        }
        Ok(())
    }

    async fn release(
        &self,
        delivery: &Delivery,
        not_before: Option<DateTime<Utc>>,
    ) -> BrokerResult<()> {
        let now = Instant::now();
        {
            let mut state = self.lock();
            let Some(in_flight) = state.settle_delivery(delivery)? else {
                return Ok(());
            };
            let due = due_instant(not_before, now);
            state.push(in_flight.job, in_flight.delivery_count, due, now);
        }
        self.shared.changed.notify_waiters();
        Ok(())
    }

    async fn stats(&self, pool: &str) -> BrokerResult<PoolStats> {
        crate::validate_pool(pool)?;
        let now = Instant::now();
        let stats = {
            let mut state = self.lock();
            state.settle(now);
            state
                .pools
                .get(pool)
                .map_or_else(PoolStats::default, |queue| PoolStats {
                    ready: queue.ready_len,
                    delayed: queue.delayed,
                    in_flight: queue.in_flight,
                    oldest_ready_age: queue
                        .ready
                        .values()
                        .flatten()
                        .map(|ready| ready.ready_since)
                        .min()
                        .map(|oldest| now.saturating_duration_since(oldest)),
                    reclaimed_total: queue.reclaimed_total,
                })
        };
        metrics::record_stats(pool, &stats);
        Ok(stats)
    }
}
