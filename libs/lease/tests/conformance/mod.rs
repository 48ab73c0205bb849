//! The behaviour every `ConcurrencyLeases` implementation owes its callers.
//! Each case takes the leases under test, a second handle onto the same
//! leases (another process, for Redis), and the manual clock both read, and
//! runs unchanged against every backend.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tyboo_lease::{Acquire, AcquireAll, ConcurrencyLeases, Lease, LeaseError, ManualClock};

pub struct Subject {
    pub leases: Arc<dyn ConcurrencyLeases>,
    pub other_process: Arc<dyn ConcurrencyLeases>,
    pub clock: ManualClock,
}

/// Where every test clock starts: any whole millisecond would do.
pub fn start() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_900_000_000_000).expect("valid time")
}

const TTL: Duration = Duration::from_secs(1);

fn after(duration: Duration) -> DateTime<Utc> {
    start() + chrono::Duration::from_std(duration).expect("small duration")
}

async fn acquire(
    leases: &Arc<dyn ConcurrencyLeases>,
    key: &str,
    holder: &str,
    limit: u32,
) -> Acquire {
    leases
        .acquire(key, holder, limit, TTL)
        .await
        .expect("acquire")
}

async fn held(leases: &Arc<dyn ConcurrencyLeases>, key: &str) -> u32 {
    leases.held(key).await.expect("held")
}

async fn holder_names(leases: &Arc<dyn ConcurrencyLeases>, key: &str) -> Vec<String> {
    leases
        .holders(key)
        .await
        .expect("holders")
        .into_iter()
        .map(|lease| lease.holder)
        .collect()
}

fn granted_until(at: DateTime<Utc>) -> Acquire {
    Acquire::Granted { expires_at: at }
}

pub async fn limit_is_respected_exactly(subject: Subject) {
    let leases = &subject.leases;
    for holder in ["h1", "h2", "h3"] {
        assert_eq!(
            acquire(leases, "ws", holder, 3).await,
            granted_until(after(TTL))
        );
    }
    assert_eq!(
        acquire(leases, "ws", "h4", 3).await,
        Acquire::Full { held: 3, limit: 3 }
    );
    assert_eq!(
        acquire(&subject.other_process, "ws", "h4", 3).await,
        Acquire::Full { held: 3, limit: 3 },
        "a second process sees the same slots"
    );
    assert_eq!(held(leases, "ws").await, 3);
    assert_eq!(
        acquire(leases, "ws", "h4", 4).await,
        granted_until(after(TTL)),
        "the limit is the caller's, per request"
    );
    leases.release("ws", "h1").await.expect("release");
    assert_eq!(
        acquire(leases, "ws", "h5", 4).await,
        granted_until(after(TTL)),
        "a released slot is free at once"
    );
    assert_eq!(held(leases, "ws").await, 4);
}

pub async fn concurrent_acquirers_get_exactly_the_limit(subject: Subject) {
    let tasks: Vec<_> = (0..200)
        .map(|index| {
            let leases = if index % 2 == 0 {
                subject.leases.clone()
            } else {
                subject.other_process.clone()
            };
            tokio::spawn(async move {
                let holder = format!("h{index}");
                let answer = leases
                    .acquire("ws", &holder, 5, TTL)
                    .await
                    .expect("acquire");
                (holder, answer)
            })
        })
        .collect();
    let mut granted = HashSet::new();
    for task in futures::future::join_all(tasks).await {
        let (holder, answer) = task.expect("acquirer task");
        match answer {
            Acquire::Granted { expires_at } => {
                assert_eq!(expires_at, after(TTL));
                granted.insert(holder);
            }
            Acquire::Full { held, limit } => assert_eq!((held, limit), (5, 5)),
        }
    }
    assert_eq!(granted.len(), 5, "granted: {granted:?}");
    assert_eq!(held(&subject.leases, "ws").await, 5);
    let holders: HashSet<String> = holder_names(&subject.leases, "ws")
        .await
        .into_iter()
        .collect();
    assert_eq!(holders, granted);
}

pub async fn reacquire_renews_without_double_counting(subject: Subject) {
    let leases = &subject.leases;
    assert_eq!(
        acquire(leases, "ws", "h1", 2).await,
        granted_until(after(TTL))
    );
    subject.clock.advance(Duration::from_millis(300));
    let renewed_until = after(TTL + Duration::from_millis(300));
    assert_eq!(
        acquire(leases, "ws", "h1", 2).await,
        granted_until(renewed_until),
        "acquiring again renews"
    );
    assert_eq!(held(leases, "ws").await, 1, "one holder, one slot");
    assert_eq!(
        acquire(leases, "ws", "h2", 2).await,
        granted_until(renewed_until)
    );
    assert_eq!(
        acquire(leases, "ws", "h3", 2).await,
        Acquire::Full { held: 2, limit: 2 }
    );
    assert_eq!(
        acquire(&subject.other_process, "ws", "h1", 2).await,
        granted_until(renewed_until),
        "a holder renews on a full key"
    );
    assert_eq!(
        acquire(leases, "ws", "h1", 1).await,
        granted_until(renewed_until),
        "a holder renews even over a limit lowered below the slots held"
    );
    assert_eq!(held(leases, "ws").await, 2);
}

pub async fn expiry_frees_the_slot_at_exactly_its_ttl(subject: Subject) {
    let leases = &subject.leases;
    assert_eq!(
        acquire(leases, "ws", "crashed", 1).await,
        granted_until(after(TTL))
    );
    subject.clock.advance(TTL - Duration::from_millis(1));
    assert_eq!(
        acquire(leases, "ws", "waiting", 1).await,
        Acquire::Full { held: 1, limit: 1 },
        "one millisecond before its expiry the lease still holds"
    );
    assert_eq!(held(leases, "ws").await, 1);
    subject.clock.advance(Duration::from_millis(1));
    assert_eq!(
        held(leases, "ws").await,
        0,
        "at its expiry the lease is gone"
    );
    assert_eq!(
        acquire(&subject.other_process, "ws", "waiting", 1).await,
        granted_until(after(TTL * 2))
    );
    assert_eq!(holder_names(leases, "ws").await, ["waiting"]);
}

pub async fn renew_extends_and_fails_after_expiry(subject: Subject) {
    let leases = &subject.leases;
    acquire(leases, "ws", "h1", 1).await;
    subject.clock.advance(Duration::from_millis(600));
    assert!(leases.renew("ws", "h1", TTL).await.expect("renew"));
    let renewed_until = after(Duration::from_millis(1_600));
    assert_eq!(
        leases.holders("ws").await.expect("holders"),
        [Lease {
            holder: "h1".to_owned(),
            expires_at: renewed_until
        }]
    );
    subject.clock.advance(Duration::from_millis(600));
    assert_eq!(
        acquire(leases, "ws", "h2", 1).await,
        Acquire::Full { held: 1, limit: 1 },
        "the renewed lease outlives its first ttl"
    );
    subject.clock.advance(Duration::from_millis(400));
    assert!(
        !subject
            .other_process
            .renew("ws", "h1", TTL)
            .await
            .expect("renew"),
        "a lease cannot be renewed at or after its expiry"
    );
    assert_eq!(
        held(leases, "ws").await,
        0,
        "a refused renewal takes no slot"
    );
    assert!(
        !leases.renew("ws", "never", TTL).await.expect("renew"),
        "a holder without a lease cannot renew one"
    );
    acquire(leases, "ws", "h2", 1).await;
    leases.release("ws", "h2").await.expect("release");
    assert!(
        !leases.renew("ws", "h2", TTL).await.expect("renew"),
        "a released lease cannot be renewed"
    );
}

pub async fn release_is_idempotent(subject: Subject) {
    let leases = &subject.leases;
    leases
        .release("ws", "nobody")
        .await
        .expect("releasing what is not held");
    acquire(leases, "ws", "h1", 2).await;
    acquire(leases, "ws", "h2", 2).await;
    leases.release("ws", "h1").await.expect("release");
    leases.release("ws", "h1").await.expect("release again");
    subject
        .other_process
        .release("ws", "h1")
        .await
        .expect("release from another process");
    assert_eq!(holder_names(leases, "ws").await, ["h2"], "only h1 went");
    leases.release("ws", "h2").await.expect("release");
    assert_eq!(held(leases, "ws").await, 0);
    assert!(leases.holders("ws").await.expect("holders").is_empty());
}

pub async fn acquire_all_is_all_or_nothing(subject: Subject) {
    let leases = &subject.leases;
    acquire(leases, "ws", "earlier", 2).await;
    acquire(leases, "user", "other", 1).await;
    subject.clock.advance(Duration::from_millis(100));
    let ws_before = leases.holders("ws").await.expect("holders");
    let user_before = leases.holders("user").await.expect("holders");

    let refused = leases
        .acquire_all(&[("ws", 2), ("user", 1), ("fresh", 3)], "execution", TTL)
        .await
        .expect("acquire all");
    assert_eq!(
        refused,
        AcquireAll::Full {
            index: 1,
            held: 1,
            limit: 1
        }
    );
    assert_eq!(leases.holders("ws").await.expect("holders"), ws_before);
    assert_eq!(leases.holders("user").await.expect("holders"), user_before);
    assert_eq!(
        held(leases, "fresh").await,
        0,
        "a free key is not taken either"
    );

    let refused_renewal = leases
        .acquire_all(&[("ws", 2), ("user", 1)], "earlier", TTL)
        .await
        .expect("acquire all");
    assert!(matches!(refused_renewal, AcquireAll::Full { index: 1, .. }));
    assert_eq!(
        leases.holders("ws").await.expect("holders"),
        ws_before,
        "a refused request renews nothing"
    );

    leases.release("user", "other").await.expect("release");
    let granted = subject
        .other_process
        .acquire_all(&[("ws", 2), ("user", 1)], "execution", TTL)
        .await
        .expect("acquire all");
    let until = after(TTL + Duration::from_millis(100));
    assert_eq!(granted, AcquireAll::Granted { expires_at: until });
    assert_eq!(holder_names(leases, "ws").await, ["earlier", "execution"]);
    assert_eq!(
        leases.holders("user").await.expect("holders"),
        [Lease {
            holder: "execution".to_owned(),
            expires_at: until
        }]
    );
    assert_eq!(
        leases
            .acquire_all(&[("ws", 2), ("user", 1)], "execution", TTL)
            .await
            .expect("acquire all"),
        AcquireAll::Granted { expires_at: until },
        "a holder of every key renews them all, full or not"
    );
    assert_eq!(
        (held(leases, "ws").await, held(leases, "user").await),
        (2, 1)
    );
}

pub async fn keys_are_isolated(subject: Subject) {
    let leases = &subject.leases;
    acquire(leases, "ws", "h1", 1).await;
    for key in ["ws:1", "w", "WS", "user"] {
        assert_eq!(
            acquire(leases, key, "h2", 1).await,
            granted_until(after(TTL)),
            "{key} shares nothing with ws"
        );
    }
    leases.release("ws:1", "h2").await.expect("release");
    assert_eq!(holder_names(leases, "ws").await, ["h1"]);
    assert_eq!(held(leases, "w").await, 1);
    leases.release("ws", "h1").await.expect("release");
    assert_eq!(held(leases, "user").await, 1);
    assert_eq!(held(leases, "ws:1").await, 0);
}

pub async fn holders_lists_only_live_ones(subject: Subject) {
    let leases = &subject.leases;
    let lease = |holder: &str, expires_at| Lease {
        holder: holder.to_owned(),
        expires_at,
    };
    leases
        .acquire("ws", "long", 5, TTL * 3)
        .await
        .expect("acquire");
    leases
        .acquire("ws", "short", 5, TTL)
        .await
        .expect("acquire");
    leases
        .acquire("ws", "b-tie", 5, TTL * 2)
        .await
        .expect("acquire");
    leases
        .acquire("ws", "a-tie", 5, TTL * 2)
        .await
        .expect("acquire");
    assert_eq!(
        leases.holders("ws").await.expect("holders"),
        [
            lease("short", after(TTL)),
            lease("a-tie", after(TTL * 2)),
            lease("b-tie", after(TTL * 2)),
            lease("long", after(TTL * 3)),
        ],
        "soonest expiry first, ties by holder"
    );
    subject.clock.advance(TTL * 2);
    assert_eq!(
        subject.other_process.holders("ws").await.expect("holders"),
        [lease("long", after(TTL * 3))]
    );
    assert_eq!(held(leases, "ws").await, 1);
    subject.clock.advance(TTL);
    assert!(leases.holders("ws").await.expect("holders").is_empty());
    assert!(
        leases
            .holders("never-used")
            .await
            .expect("holders")
            .is_empty()
    );
}

pub async fn invalid_requests_are_refused(subject: Subject) {
    let leases = &subject.leases;
    let refused = |result: Result<_, LeaseError>| matches!(result, Err(LeaseError::Invalid(_)));
    assert!(refused(leases.acquire("ws", "h", 0, TTL).await.map(drop)));
    assert!(refused(leases.acquire("", "h", 1, TTL).await.map(drop)));
    assert!(refused(leases.acquire("ws", "", 1, TTL).await.map(drop)));
    assert!(refused(
        leases.acquire("ws", "h", 1, Duration::ZERO).await.map(drop)
    ));
    assert!(refused(
        leases
            .acquire(&"k".repeat(257), "h", 1, TTL)
            .await
            .map(drop)
    ));
    assert!(refused(
        leases
            .acquire_all(&[("ws", 1), ("ws", 2)], "h", TTL)
            .await
            .map(drop)
    ));
    assert!(refused(leases.acquire_all(&[], "h", TTL).await.map(drop)));
    assert!(refused(
        leases
            .acquire_all(&[("ws", 1), ("user", 0)], "h", TTL)
            .await
            .map(drop)
    ));
    assert!(refused(
        leases.renew("ws", "h", Duration::ZERO).await.map(drop)
    ));
    assert!(refused(leases.held("").await.map(drop)));
    assert!(refused(leases.holders("a\u{0}b").await.map(drop)));
    assert_eq!(
        held(leases, "ws").await,
        0,
        "a refused request takes nothing"
    );
}
