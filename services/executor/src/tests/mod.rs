//! The conformance suite: the same cases run on SQLite (a temporary file)
//! always, and on PostgreSQL (a fresh database per test) when
//! `TYBOO_TEST_POSTGRES_URL` is set. Executions run end to end on the
//! in-process queue with real workers, against small local HTTP servers.

mod breakers;
mod concurrency;
mod executions;
mod harness;
mod quota;
mod recovery;
mod triggers;
mod usage;
mod workflows;

/// Declares each case once per backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::tests::harness::on_sqlite(super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::tests::harness::on_postgres(super::$case).await;
                }
            )*
        }
    };
}
pub(crate) use conformance;
