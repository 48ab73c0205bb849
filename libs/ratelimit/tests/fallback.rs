//! The fallback limiter against a private `redis-server` that this test
//! starts on a free loopback port, kills mid-run and starts again: checks
//! never fail, the local share answers during the outage, and each answer
//! from it is counted. Skipped when `redis-server` is not installed.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::process::{Child, Command};
use tyboo_ratelimit::{
    FallbackLimiter, ManualClock, Quota, RateLimiter, RedisLimiter, RedisLimiterConfig, metrics,
};

fn redis_server_installed() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

async fn start_redis(port: u16) -> Child {
    let server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not listen on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_locally_while_redis_is_down_and_returns_to_it() {
    if !redis_server_installed() {
        eprintln!("redis-server is not on PATH; skipping");
        return;
    }
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics_handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
    metrics::describe();

    let port = free_port();
    let mut server = start_redis(port).await;
    let clock = ManualClock::starting_now();
    let config = RedisLimiterConfig {
        command_timeout_ms: 200,
        ..RedisLimiterConfig::default()
    };
    let url = format!("redis://127.0.0.1:{port}");
    let shared = RedisLimiter::connect(&url, &config, Arc::new(clock.clone()))
        .await
        .expect("connect to the private redis");
    let retry = Duration::from_secs(1);
    let limiter = FallbackLimiter::new(Arc::new(shared), 0.5, retry, Arc::new(clock.clone()))
        .expect("fallback limiter");
    // 6 per minute, burst 10; half of it is 3 per minute, burst 5.
    let quota = Quota::per_minute(6, 10).expect("valid quota");

    for remaining in (6..10).rev() {
        let decision = limiter.check("k", &quota, 1).await.expect("check");
        assert_eq!(
            (decision.allowed, decision.limit, decision.remaining),
            (true, 10, remaining)
        );
    }
    assert!(!limiter.is_degraded());

    server.kill().await.expect("kill redis-server");
    for remaining in (0..5).rev() {
        let decision = limiter
            .check("k", &quota, 1)
            .await
            .expect("no error while redis is down");
        assert_eq!(
            (decision.allowed, decision.limit, decision.remaining),
            (true, 5, remaining),
            "the local share answers, from a fresh state"
        );
    }
    let refused = limiter
        .check("k", &quota, 1)
        .await
        .expect("no error while redis is down");
    assert!(!refused.allowed, "the local share limits too");
    assert!(limiter.is_degraded());
    let rendered = metrics_handle.render();
    assert!(
        rendered
            .lines()
            .any(|line| line == format!("{} 6", metrics::FALLBACK_TOTAL)),
        "every local answer is counted:\n{rendered}"
    );

    let _restarted = start_redis(port).await;
    let mut recovered = None;
    for _ in 0..100 {
        clock.advance(retry);
        let decision = limiter.check("k", &quota, 1).await.expect("check");
        if !limiter.is_degraded() {
            recovered = Some(decision);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decision = recovered.expect("redis answers again after its restart");
    assert_eq!(
        (decision.allowed, decision.limit, decision.remaining),
        (true, 10, 9),
        "the restarted redis holds no state for the key"
    );
}
