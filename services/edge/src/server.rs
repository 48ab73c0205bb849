//! The edge's listener: every connection is admitted under a total and a
//! per-address cap, must send its first byte and then its request head
//! within `header_read_timeout_ms`, and is served as HTTP/1.1 or HTTP/2
//! (the gRPC face). Slow or silent clients cannot hold file descriptors
//! the way they can with a plain accept loop: 20,000 half-open connections
//! used to exhaust the process's descriptors and every new connection timed
//! out, silently. A failing `accept` is logged (at most once a second).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::EdgeConfig;
use crate::rate_limits::ClientAddress;

/// Connections refused at the door, by reason.
pub const CONNECTIONS_REFUSED: &str = "tyboo_edge_connections_refused_total";
/// Connections open now.
pub const CONNECTIONS_OPEN: &str = "tyboo_edge_connections_open";

/// Limits on the connections of one listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

impl ConnectionLimits {
    pub fn from_config(config: &EdgeConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
        }
    }
}

/// Open connections per peer address.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place under the per-address cap, given back on drop.
struct AddressSlot {
    table: PerAddress,
    address: IpAddr,
}

impl PerAddress {
    fn admit(&self, address: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut table = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = table.entry(address).or_insert(0);
        if *open >= cap {
            return None;
        }
        *open += 1;
        Some(AddressSlot {
            table: self.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut table = self
            .table
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(open) = table.get_mut(&self.address) {
            *open -= 1;
            if *open == 0 {
                table.remove(&self.address);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting and waits for the open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = PerAddress::default();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let mut last_accept_error: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: say so, and give the process a moment
                // rather than spinning on the same error.
                if last_accept_error.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::error!(%error, "the edge cannot accept connections");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            metrics::counter!(CONNECTIONS_REFUSED, "reason" => "max_connections").increment(1);
            drop(stream);
            continue;
        };
        let Some(slot) = per_address.admit(peer.ip(), limits.max_connections_per_ip) else {
            metrics::counter!(CONNECTIONS_REFUSED, "reason" => "max_connections_per_ip")
                .increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let address = ClientAddress(peer.ip());
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            router.clone(),
            move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(address);
                request
            },
        ));
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _held = (permit, slot);
            metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
            // A client must say something before it holds a connection:
            // HTTP/1 then has the head timeout, HTTP/2 its keep-alive.
            if first_byte(&stream, header_read_timeout).await {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let _ = watcher.watch(connection).await;
            } else {
                metrics::counter!(CONNECTIONS_REFUSED, "reason" => "header_read_timeout")
                    .increment(1);
            }
            metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Whether the peer sent at least one byte within `within`.
async fn first_byte(stream: &TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.peek(&mut byte)).await,
        Ok(Ok(read)) if read > 0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_cap_counts_open_connections() {
        let table = PerAddress::default();
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "::1".parse().unwrap();
        let first = table.admit(here, 2).unwrap();
        let second = table.admit(here, 2).unwrap();
        assert!(table.admit(here, 2).is_none());
        assert!(table.admit(there, 2).is_some());
        drop(first);
        let third = table.admit(here, 2).unwrap();
        drop((second, third));
        assert!(table.0.lock().unwrap().get(&here).is_none());
    }
}
