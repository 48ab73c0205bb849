//! The behaviour every `Dispatch` implementation owes its callers. Each case
//! takes the queue under test (and, where a second process matters, a second
//! handle onto the same queue) and runs unchanged against every backend.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tyboo_broker::{BrokerError, Delivery, Dispatch, Job};
use uuid::Uuid;

/// Visibility timeout of the queues under test, short so that redelivery
/// cases finish quickly.
pub const VISIBILITY: Duration = Duration::from_millis(400);
/// How late a due job or a woken consumer may be and still count as prompt.
const PROMPT: Duration = Duration::from_millis(200);

pub fn job(pool: &str, node_id: &str) -> Job {
    Job {
        pool: pool.to_owned(),
        execution_id: Uuid::now_v7(),
        node_id: node_id.to_owned(),
        attempt: 1,
        workspace_id: Uuid::now_v7(),
    }
}

fn pools(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn in_the(delay: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(delay).expect("small delay")
}

fn node_ids(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries
        .iter()
        .map(|delivery| delivery.job.node_id.as_str())
        .collect()
}

async fn receive(
    queue: &Arc<dyn Dispatch>,
    pool_names: &[&str],
    consumer: &str,
    max: usize,
    wait: Duration,
) -> Vec<Delivery> {
    queue
        .receive(&pools(pool_names), consumer, max, wait)
        .await
        .expect("receive")
}

pub async fn delivers_in_order_and_ack_removes(queue: Arc<dyn Dispatch>) {
    let jobs: Vec<Job> = ["n1", "n2", "n3"]
        .iter()
        .map(|node| job("default", node))
        .collect();
    for job in &jobs {
        queue.enqueue(job.clone(), None).await.expect("enqueue");
    }
    let deliveries = receive(&queue, &["default"], "c1", 10, Duration::from_secs(1)).await;
    assert_eq!(node_ids(&deliveries), ["n1", "n2", "n3"]);
    for (delivery, job) in deliveries.iter().zip(&jobs) {
        assert_eq!(&delivery.job, job, "a job arrives exactly as enqueued");
        assert_eq!(delivery.delivery_count, 1);
    }
    let distinct_ids: HashSet<&str> = deliveries
        .iter()
        .map(|delivery| delivery.id.as_str())
        .collect();
    assert_eq!(distinct_ids.len(), 3, "message ids are distinct");
    for delivery in &deliveries {
        queue.ack(delivery).await.expect("ack");
    }
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.delayed, stats.in_flight), (0, 0, 0));
    let after_visibility = VISIBILITY + Duration::from_millis(300);
    let again = receive(&queue, &["default"], "c1", 10, after_visibility).await;
    assert!(
        again.is_empty(),
        "acknowledged jobs never come back: {again:?}"
    );
}

pub async fn serves_pools_fairly(queue: Arc<dyn Dispatch>) {
    let mut jobs = Vec::new();
    for index in 0..10 {
        jobs.push((job("alpha", &format!("a{index}")), None));
        jobs.push((job("beta", &format!("b{index}")), None));
    }
    jobs.push((job("gamma", "g0"), None));
    jobs.push((job("gamma", "g1"), None));
    queue.enqueue_many(jobs).await.expect("enqueue");

    let count_by_pool = |deliveries: &[Delivery]| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for delivery in deliveries {
            *counts.entry(delivery.job.pool.clone()).or_default() += 1;
        }
        counts
    };
    let all_three = ["alpha", "beta", "gamma"];
    let first = receive(&queue, &all_three, "c1", 6, Duration::from_secs(1)).await;
    assert_eq!(first.len(), 6);
    let counts = count_by_pool(&first);
    assert_eq!(counts.get("alpha"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("beta"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("gamma"), Some(&2), "{counts:?}");

    let second = receive(&queue, &all_three, "c1", 4, Duration::from_secs(1)).await;
    let counts = count_by_pool(&second);
    assert_eq!(
        counts.get("alpha"),
        Some(&2),
        "an empty pool leaves its share to the others: {counts:?}"
    );
    assert_eq!(counts.get("beta"), Some(&2), "{counts:?}");

    let alpha_order: Vec<&str> = first
        .iter()
        .chain(&second)
        .filter(|delivery| delivery.job.pool == "alpha")
        .map(|delivery| delivery.job.node_id.as_str())
        .collect();
    assert_eq!(
        alpha_order,
        ["a0", "a1", "a2", "a3"],
        "each pool stays in order"
    );
}

pub async fn delivers_only_requested_pools(queue: Arc<dyn Dispatch>) {
    queue
        .enqueue(job("ai", "llm"), None)
        .await
        .expect("enqueue");
    queue
        .enqueue(job("data", "sql"), None)
        .await
        .expect("enqueue");
    let deliveries = receive(&queue, &["data"], "c1", 10, Duration::from_millis(300)).await;
    assert_eq!(node_ids(&deliveries), ["sql"]);
    queue.ack(&deliveries[0]).await.expect("ack");
    let more = receive(&queue, &["data"], "c1", 10, Duration::from_millis(200)).await;
    assert!(
        more.is_empty(),
        "the ai job is not handed to a data worker: {more:?}"
    );
    let ai_stats = queue.stats("ai").await.expect("stats");
    assert_eq!((ai_stats.ready, ai_stats.in_flight), (1, 0));
}

pub async fn delayed_job_waits_for_its_time(queue: Arc<dyn Dispatch>) {
    let due = in_the(Duration::from_millis(600));
    queue
        .enqueue(job("default", "later"), Some(due))
        .await
        .expect("enqueue");
    queue
        .enqueue(
            job("default", "past"),
            Some(Utc::now() - chrono::Duration::seconds(5)),
        )
        .await
        .expect("enqueue");

    let early = receive(&queue, &["default"], "c1", 10, Duration::from_millis(250)).await;
    assert_eq!(
        node_ids(&early),
        ["past"],
        "a due time in the past means now"
    );
    queue.ack(&early[0]).await.expect("ack");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.delayed), (0, 1));

    let not_yet = receive(&queue, &["default"], "c1", 10, Duration::from_millis(150)).await;
    assert!(not_yet.is_empty(), "delivered before its time: {not_yet:?}");

    let late = receive(&queue, &["default"], "c1", 10, Duration::from_secs(3)).await;
    let received_at = Utc::now();
    assert_eq!(node_ids(&late), ["later"]);
    assert!(
        received_at >= due - chrono::Duration::milliseconds(5),
        "delivered {} ms early",
        (due - received_at).num_milliseconds()
    );
    let lateness = (received_at - due).to_std().unwrap_or_default();
    assert!(lateness <= PROMPT, "delivered {lateness:?} after its time");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.delayed, stats.in_flight), (0, 1));
}

pub async fn unacked_delivery_comes_back(queue: Arc<dyn Dispatch>) {
    queue
        .enqueue(job("default", "n1"), None)
        .await
        .expect("enqueue");
    let first = receive(&queue, &["default"], "c1", 1, Duration::from_secs(1)).await;
    assert_eq!(first.len(), 1);
    let handed_out_at = Instant::now();

    let hidden = receive(&queue, &["default"], "c2", 1, Duration::from_millis(100)).await;
    assert!(
        hidden.is_empty(),
        "still within its visibility timeout: {hidden:?}"
    );

    let again = receive(&queue, &["default"], "c2", 1, Duration::from_secs(3)).await;
    assert_eq!(again.len(), 1);
    assert!(handed_out_at.elapsed() >= VISIBILITY - Duration::from_millis(20));
    assert_eq!(again[0].job, first[0].job);
    assert_eq!(again[0].id, first[0].id, "a redelivery is the same message");
    assert_eq!(again[0].delivery_count, 2);
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.in_flight, stats.reclaimed_total), (1, 1));

    queue.ack(&again[0]).await.expect("ack");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight), (0, 0));
}

pub async fn ack_is_idempotent(queue: Arc<dyn Dispatch>) {
    queue
        .enqueue(job("default", "n1"), None)
        .await
        .expect("enqueue");
    let deliveries = receive(&queue, &["default"], "c1", 1, Duration::from_secs(1)).await;
    assert_eq!(deliveries.len(), 1);
    queue.ack(&deliveries[0]).await.expect("first ack");
    queue.ack(&deliveries[0]).await.expect("second ack");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight), (0, 0));
    let after_visibility = VISIBILITY + Duration::from_millis(300);
    let again = receive(&queue, &["default"], "c1", 1, after_visibility).await;
    assert!(again.is_empty(), "{again:?}");

    let mut forged = deliveries[0].clone();
    forged.id = "not-an-id".to_owned();
    assert!(matches!(
        queue.ack(&forged).await,
        Err(BrokerError::Invalid(_))
    ));
}

pub async fn release_now_and_later(queue: Arc<dyn Dispatch>) {
    queue
        .enqueue(job("default", "n1"), None)
        .await
        .expect("enqueue");
    let first = receive(&queue, &["default"], "c1", 1, Duration::from_secs(1)).await;
    assert_eq!(first.len(), 1);

    let released_at = Instant::now();
    queue.release(&first[0], None).await.expect("release now");
    let second = receive(&queue, &["default"], "c2", 1, Duration::from_secs(1)).await;
    assert!(
        released_at.elapsed() <= PROMPT,
        "took {:?}",
        released_at.elapsed()
    );
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].job, first[0].job);
    assert_eq!(
        second[0].delivery_count, 2,
        "a release counts as a delivery"
    );

    // Giving back a delivery that is no longer held must not duplicate it.
    queue.release(&first[0], None).await.expect("stale release");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight), (0, 1));

    let due = in_the(Duration::from_millis(400));
    queue
        .release(&second[0], Some(due))
        .await
        .expect("release later");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.delayed, stats.in_flight), (0, 1, 0));
    let not_yet = receive(&queue, &["default"], "c2", 1, Duration::from_millis(150)).await;
    assert!(not_yet.is_empty(), "{not_yet:?}");

    let third = receive(&queue, &["default"], "c2", 1, Duration::from_secs(3)).await;
    assert_eq!(third.len(), 1);
    assert!(Utc::now() >= due - chrono::Duration::milliseconds(5));
    assert_eq!(third[0].delivery_count, 3);
    queue.ack(&third[0]).await.expect("ack");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.delayed, stats.in_flight), (0, 0, 0));
}

pub async fn stats_count_each_state(queue: Arc<dyn Dispatch>) {
    let empty = queue
        .stats("default")
        .await
        .expect("stats of an unused pool");
    assert_eq!(empty, Default::default());

    let far = in_the(Duration::from_secs(3_600));
    queue
        .enqueue_many(vec![
            (job("default", "r1"), None),
            (job("default", "r2"), None),
            (job("default", "r3"), None),
            (job("default", "d1"), Some(far)),
            (job("default", "d2"), Some(far)),
            (job("ai", "other"), None),
        ])
        .await
        .expect("enqueue");
    let taken = receive(&queue, &["default"], "c1", 1, Duration::from_secs(1)).await;
    assert_eq!(node_ids(&taken), ["r1"]);
    tokio::time::sleep(Duration::from_millis(60)).await;

    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.delayed, stats.in_flight), (2, 2, 1));
    let age = stats.oldest_ready_age.expect("ready jobs have an age");
    assert!(age >= Duration::from_millis(50), "oldest ready age {age:?}");
    assert!(age < Duration::from_secs(30), "oldest ready age {age:?}");
    assert_eq!(stats.reclaimed_total, 0);

    let ai = queue.stats("ai").await.expect("stats");
    assert_eq!((ai.ready, ai.delayed, ai.in_flight), (1, 0, 0));
    assert!(matches!(
        queue.stats("no:such").await,
        Err(BrokerError::Invalid(_))
    ));
}

pub async fn receive_waits_then_returns_empty(queue: Arc<dyn Dispatch>) {
    let started = Instant::now();
    let nothing = receive(&queue, &["default"], "c1", 5, Duration::from_millis(300)).await;
    let waited = started.elapsed();
    assert!(nothing.is_empty());
    assert!(
        waited >= Duration::from_millis(290),
        "returned after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(300) + PROMPT,
        "returned after {waited:?}"
    );

    // A waiting consumer is woken by an enqueue, not by the end of its wait.
    let waiting = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let deliveries = receive(&queue, &["default"], "c1", 5, Duration::from_secs(5)).await;
            (deliveries, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    queue
        .enqueue(job("default", "wake"), None)
        .await
        .expect("enqueue");
    let (deliveries, waited) = waiting.await.expect("receiver task");
    assert_eq!(node_ids(&deliveries), ["wake"]);
    assert!(
        waited < Duration::from_millis(100) + PROMPT,
        "woken after {waited:?}"
    );
}

/// Run with a visibility timeout far above the test's duration: the case is
/// about concurrency, not redelivery.
pub async fn concurrent_consumers_share_without_duplicates(queue: Arc<dyn Dispatch>) {
    const JOBS: usize = 200;
    const CONSUMERS: usize = 8;
    let jobs = (0..JOBS)
        .map(|index| (job("default", &format!("n{index}")), None))
        .collect();
    queue.enqueue_many(jobs).await.expect("enqueue");

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let acked = Arc::new(AtomicUsize::new(0));
    let mut consumers = tokio::task::JoinSet::new();
    for consumer_index in 0..CONSUMERS {
        let (queue, seen, acked) = (queue.clone(), seen.clone(), acked.clone());
        consumers.spawn(async move {
            let consumer = format!("c{consumer_index}");
            let give_up = Instant::now() + Duration::from_secs(20);
            while acked.load(Ordering::SeqCst) < JOBS && Instant::now() < give_up {
                let wait = Duration::from_millis(100);
                for delivery in receive(&queue, &["default"], &consumer, 5, wait).await {
                    seen.lock().await.push(delivery.job.node_id.clone());
                    queue.ack(&delivery).await.expect("ack");
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    while let Some(finished) = consumers.join_next().await {
        finished.expect("consumer task");
    }
    let seen = seen.lock().await;
    assert_eq!(seen.len(), JOBS, "each job delivered once");
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), JOBS, "no job delivered twice");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight), (0, 0));
}

/// `dead` and `survivor` are two handles onto the same queue; for Redis they
/// are separate connections, as two worker processes would have.
pub async fn dead_consumers_jobs_are_reclaimed(
    dead: Arc<dyn Dispatch>,
    survivor: Arc<dyn Dispatch>,
) {
    let jobs = (0..3)
        .map(|index| (job("default", &format!("n{index}")), None))
        .collect();
    dead.enqueue_many(jobs).await.expect("enqueue");
    let abandoned = receive(
        &dead,
        &["default"],
        "worker-dead",
        3,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(abandoned.len(), 3);
    drop(dead);

    let mut recovered = Vec::new();
    let give_up = Instant::now() + VISIBILITY * 10;
    while recovered.len() < 3 && Instant::now() < give_up {
        let wait = Duration::from_millis(500);
        recovered.extend(receive(&survivor, &["default"], "worker-alive", 3, wait).await);
    }
    let mut recovered_ids: Vec<&str> = recovered
        .iter()
        .map(|delivery| delivery.id.as_str())
        .collect();
    let mut abandoned_ids: Vec<&str> = abandoned
        .iter()
        .map(|delivery| delivery.id.as_str())
        .collect();
    recovered_ids.sort_unstable();
    abandoned_ids.sort_unstable();
    assert_eq!(recovered_ids, abandoned_ids);
    assert!(
        recovered
            .iter()
            .all(|delivery| delivery.delivery_count == 2)
    );
    let stats = survivor.stats("default").await.expect("stats");
    assert_eq!((stats.in_flight, stats.reclaimed_total), (3, 3));
    for delivery in &recovered {
        survivor.ack(delivery).await.expect("ack");
    }
    let stats = survivor.stats("default").await.expect("stats");
    assert_eq!(stats.in_flight, 0);
}

pub async fn invalid_jobs_are_refused(queue: Arc<dyn Dispatch>) {
    let refused = queue.enqueue(job("bad pool", "n1"), None).await;
    assert!(
        matches!(refused, Err(BrokerError::Invalid(_))),
        "{refused:?}"
    );
    let batch = vec![(job("default", "fine"), None), (job("default", ""), None)];
    let refused = queue.enqueue_many(batch).await;
    assert!(
        matches!(refused, Err(BrokerError::Invalid(_))),
        "{refused:?}"
    );
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!(stats.ready, 0, "a refused batch enqueues nothing");
    let refused = queue
        .receive(&pools(&["a:b"]), "c1", 1, Duration::ZERO)
        .await;
    assert!(
        matches!(refused, Err(BrokerError::Invalid(_))),
        "{refused:?}"
    );
}

fn job_of(workspace_id: Uuid, node_id: &str) -> Job {
    Job {
        workspace_id,
        ..job("default", node_id)
    }
}

pub async fn a_flooding_workspace_does_not_delay_another(queue: Arc<dyn Dispatch>) {
    let (flooding, other) = (Uuid::now_v7(), Uuid::now_v7());
    let flood = (0..2_000)
        .map(|index| (job_of(flooding, &format!("a{index}")), None))
        .collect();
    queue.enqueue_many(flood).await.expect("enqueue");
    queue
        .enqueue(job_of(other, "b0"), None)
        .await
        .expect("enqueue");
    let first = receive(&queue, &["default"], "c1", 2, Duration::from_secs(1)).await;
    assert_eq!(node_ids(&first), ["a0", "b0"]);
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight), (1_999, 2));
}

pub async fn workspaces_take_turns_in_order(queue: Arc<dyn Dispatch>) {
    let workspaces = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let mut jobs = Vec::new();
    for (name, workspace) in ["x", "y", "z"].iter().zip(workspaces) {
        for index in 0..3 {
            jobs.push((job_of(workspace, &format!("{name}{index}")), None));
        }
    }
    queue.enqueue_many(jobs).await.expect("enqueue");
    let all = receive(&queue, &["default"], "c1", 9, Duration::from_secs(1)).await;
    assert_eq!(
        node_ids(&all),
        ["x0", "y0", "z0", "x1", "y1", "z1", "x2", "y2", "z2"]
    );
}

/// Round robin holds for jobs that join late: one that was delayed, one
/// whose delivery lapsed, and one given back for later are each served
/// within a turn of becoming ready, not after the flood ahead of them; and
/// the pool's stats count every workspace's jobs.
pub async fn late_jobs_of_a_quiet_workspace_wait_one_turn(queue: Arc<dyn Dispatch>) {
    let (flooding, quiet) = (Uuid::now_v7(), Uuid::now_v7());
    let flood = (0..500)
        .map(|index| (job_of(flooding, &format!("a{index}")), None))
        .collect();
    queue.enqueue_many(flood).await.expect("enqueue");
    let due = in_the(Duration::from_millis(300));
    queue
        .enqueue(job_of(quiet, "b0"), Some(due))
        .await
        .expect("enqueue");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!((stats.ready, stats.delayed, stats.in_flight), (500, 1, 0));

    // Before its time only the flood is served.
    let early = receive(&queue, &["default"], "c1", 2, Duration::from_secs(1)).await;
    assert_eq!(node_ids(&early), ["a0", "a1"]);
    let mut flood_left: u64 = 500;
    for delivery in &early {
        queue.ack(delivery).await.expect("ack");
        flood_left -= 1;
    }
    tokio::time::sleep(Duration::from_millis(300) + PROMPT).await;

    // Once due it takes the next turn: it is in the next two, not behind
    // the 498 jobs enqueued before it.
    let ready = receive(&queue, &["default"], "c1", 2, Duration::from_secs(1)).await;
    assert!(node_ids(&ready).contains(&"b0"), "{:?}", node_ids(&ready));
    for delivery in ready.iter().filter(|delivery| delivery.job.node_id != "b0") {
        queue.ack(delivery).await.expect("ack");
        flood_left -= 1;
    }
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!(
        (stats.ready, stats.delayed, stats.in_flight),
        (flood_left, 0, 1)
    );

    // Not acknowledged: after its visibility timeout it comes back, again
    // within a turn.
    tokio::time::sleep(VISIBILITY + Duration::from_millis(100)).await;
    let again = receive(&queue, &["default"], "c2", 2, Duration::from_secs(1)).await;
    let redelivered = again
        .iter()
        .find(|delivery| delivery.job.node_id == "b0")
        .unwrap_or_else(|| panic!("b0 not redelivered in {:?}", node_ids(&again)));
    assert_eq!(redelivered.delivery_count, 2);
    for delivery in again.iter().filter(|delivery| delivery.job.node_id != "b0") {
        queue.ack(delivery).await.expect("ack");
        flood_left -= 1;
    }

    // Given back for later, it waits its time and then its turn once more.
    let later = in_the(Duration::from_millis(300));
    queue
        .release(redelivered, Some(later))
        .await
        .expect("release later");
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!(
        (stats.ready, stats.delayed, stats.in_flight),
        (flood_left, 1, 0)
    );
    assert_eq!(stats.reclaimed_total, 1);
    tokio::time::sleep(Duration::from_millis(300) + PROMPT).await;
    let back = receive(&queue, &["default"], "c1", 2, Duration::from_secs(1)).await;
    let returned = back
        .iter()
        .find(|delivery| delivery.job.node_id == "b0")
        .unwrap_or_else(|| panic!("b0 not served in {:?}", node_ids(&back)));
    assert_eq!(returned.delivery_count, 3);
    let stats = queue.stats("default").await.expect("stats");
    assert_eq!(
        (stats.ready, stats.delayed, stats.in_flight),
        (flood_left + 1 - back.len() as u64, 0, back.len() as u64)
    );
}
