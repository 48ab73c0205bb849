//! Logs (pretty or JSON `tracing` events) and the process's Prometheus registry.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive; sqlx logs every statement at INFO, hence
    /// its lower default.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,sqlx=warn,sea_orm=warn,h2=warn,hyper=warn,tower=warn".to_owned(),
        }
    }
}

impl LogConfig {
    /// Rejects a filter `tracing` cannot read; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        EnvFilter::try_new(&self.filter).map(drop).map_err(|error| {
            format!("filter: is not a log filter such as `info,sqlx=warn` ({error})")
        })
    }
}

/// Installs the process-wide log subscriber; later calls are no-ops, so
/// tests that start several meshes in one process can all call it.
///
/// Logs go to stderr, and carry ANSI colours only when stderr is a terminal
/// (and `NO_COLOR` is unset), so a file or a log collector never receives
/// escape codes. Stdout is left to what the process tells its operator.
pub fn init_logging(config: &LogConfig) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed: keep the first one.
    drop(result);
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once for the process and describes the
/// shared metrics.
pub fn init_metrics() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        crate::grpc_metrics::describe();
        handle
    })
}

/// The process's metrics in the Prometheus text format.
pub fn render_metrics() -> String {
    init_metrics().render()
}

/// Serves `/metrics` and `/healthz` on the admin port until `shutdown` fires.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    shutdown: crate::shutdown::Shutdown,
) -> std::io::Result<()> {
    use axum::routing::get;
    init_metrics();
    let router = axum::Router::new()
        .route("/metrics", get(|| async { render_metrics() }))
        .route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.signaled())
        .await
}
