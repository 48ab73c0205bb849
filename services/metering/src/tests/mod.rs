//! The conformance suite: the same cases run on SQLite (a temporary file)
//! always, and on PostgreSQL (a fresh database per test) when
//! `TYBOO_TEST_POSTGRES_URL` is set.

mod harness;
mod ledger;
mod usage;

/// Declares each case once per backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::tests::harness::on_sqlite(super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::tests::harness::on_postgres(super::$case).await;
                }
            )*
        }
    };
}
pub(crate) use conformance;
