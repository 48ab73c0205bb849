//! The SSRF corpus: every spelling of a local, private, metadata or otherwise
//! special address that an attacker tried from outside, sent through
//! `http.request` with the default egress policy. Each one must be refused as
//! egress, locally, before any connection is made; listeners on loopback
//! count connections to prove none was attempted.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tyboo_engine::{Engine, EngineConfig, ErrorClass};

use common::{context, engine_allowing, node, serve};

async fn counting_listener(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
    let address = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (address, accepted)
}

/// Spellings of 127.0.0.1 (the listener's port `p`) and of ::1 (port `q`).
fn loopback_spellings(p: u16, q: u16) -> Vec<String> {
    let v4 = [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "127.000.000.001",
        "0177.0.0.1",
        "0177.0000.0000.0001",
        "0177.1",
        "0x7f.0.0.1",
        "0x7F.0x0.0x0.0x1",
        "0x7f.1",
        "0x7f000001",
        "0X7F000001",
        "2130706433",
        "017700000001",
        "127.0.0.1.",
        "%31%32%37.0.0.1",
        "%31%32%37%2e%30%2e%30%2e%31",
        "\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}",
        "127\u{3002}0\u{3002}0\u{3002}1",
        "localhost",
        "LOCALHOST",
        "LocalHost",
        "user@127.0.0.1",
        "user:password@127.0.0.1",
        "example.com@127.0.0.1",
    ];
    let v6 = [
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[0000:0000:0000:0000:0000:0000:0000:0001]",
        "[::0:1]",
        "[0::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:127.0.0.1]",
        "[::FFFF:7F00:0001]",
        "[::127.0.0.1]",
        "[::7f00:1]",
        "[::ffff:0:127.0.0.1]",
        "[::ffff:0:7f00:1]",
        "[64:ff9b::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b:1::7f00:1]",
        "[2002:7f00:1::]",
        "[2002:7f00:0001::1]",
    ];
    let mut urls: Vec<String> = v4
        .iter()
        .map(|host| format!("http://{host}:{p}/"))
        .collect();
    urls.extend(v6.iter().map(|host| format!("http://{host}:{p}/")));
    // The same on the IPv6 listener's port, and over https.
    urls.push(format!("http://[::1]:{q}/"));
    urls.push(format!("http://[0:0:0:0:0:0:0:1]:{q}/"));
    urls.push(format!("https://127.0.0.1:{p}/"));
    urls.push(format!("https://[::1]:{q}/"));
    urls.push(format!("HTTP://127.0.0.1:{p}/"));
    urls.push(format!("http://127.0.0.1:{p}/../../etc/passwd"));
    urls.push(format!("http://127.0.0.1:{p}/?next=http://example.com"));
    urls.push(format!("http://127.0.0.1:{p}#@example.com/"));
    urls
}

/// Other special ranges: unspecified, private, shared, link-local,
/// metadata, documentation, benchmarking, multicast, broadcast, reserved,
/// and each of them carried inside IPv6.
const SPECIAL: &[&str] = &[
    "http://0/",
    "http://0.0.0.0/",
    "http://0x0/",
    "http://00000000/",
    "http://[::]/",
    "http://[0::0]/",
    "http://[::ffff:0.0.0.0]/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://012.0.0.1/",
    "http://167772161/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://0xac.16.0.1/",
    "http://192.168.0.1/",
    "http://192.168.255.255/",
    "http://3232235521/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://169.254.169.254/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[fd00:ec2::254]/",
    "http://169.254.0.1/",
    "http://[fe80::1]/",
    "http://[fe80::a9fe:a9fe]/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://192.0.0.1/",
    "http://192.0.2.1/",
    "http://198.51.100.1/",
    "http://203.0.113.1/",
    "http://198.18.0.1/",
    "http://198.19.255.254/",
    "http://[2001:db8::1]/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://[ff05::2]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[100::1]/",
    "http://[2001::1]/",
    "http://[2001:10::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:192.168.1.1]/",
    "http://[::10.0.0.1]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[64:ff9b:1::a00:1]/",
    "http://[2002:c0a8:101::]/",
    "http://[::ffff:0:a00:1]/",
];

/// Schemes other than http and https never leave.
const SCHEMES: &[&str] = &[
    "file:///etc/passwd",
    "ftp://127.0.0.1/",
    "gopher://127.0.0.1:6379/_INFO",
    "dict://127.0.0.1:6379/INFO",
    "ldap://127.0.0.1/",
    "data:text/plain,hello",
];

#[tokio::test]
async fn every_spelling_of_a_special_address_is_refused_before_connecting() {
    let (v4, accepted_v4) = counting_listener("127.0.0.1").await;
    let (v6, accepted_v6) = counting_listener("::1").await;
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let mut corpus = loopback_spellings(v4.port(), v6.port());
    corpus.extend(SPECIAL.iter().map(|url| (*url).to_owned()));
    corpus.extend(SCHEMES.iter().map(|url| (*url).to_owned()));
    assert!(corpus.len() >= 104, "{} spellings", corpus.len());

    let mut accepted_urls = Vec::new();
    for url in &corpus {
        let spec = node("call", "http.request", json!({"url": url}));
        match engine.run_node(&spec, &context("call", vec![])).await {
            Ok(output) => accepted_urls.push(format!("{url}: ran, {output:?}")),
            Err(error) => {
                let refused_here = if url.starts_with("http") || url.starts_with("HTTP") {
                    error.message.contains("egress refused")
                } else {
                    error.message.contains("must be an http or https URL")
                };
                if !refused_here || error.class != ErrorClass::Permanent {
                    accepted_urls.push(format!("{url}: {:?} {}", error.class, error.message));
                }
            }
        }
    }
    assert!(
        accepted_urls.is_empty(),
        "not refused as egress:\n{}",
        accepted_urls.join("\n")
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted_v4.load(Ordering::SeqCst), 0);
    assert_eq!(accepted_v6.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_to_any_spelling_of_a_refused_address_are_not_followed() {
    let (forbidden, accepted) = counting_listener("127.0.0.2").await;
    let port = forbidden.port();
    let targets = targets_for_router(port);
    let shared = targets.clone();
    let router = Router::new().route(
        "/hop/{index}",
        get(
            move |axum::extract::Path(index): axum::extract::Path<usize>| {
                let target = shared.get(index).cloned().unwrap_or_default();
                async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
            },
        ),
    );
    let allowed = serve(router).await;
    // Only the test server itself is allowed, not the rest of 127.0.0.0/8.
    let engine = engine_allowing(&["127.0.0.1/32"]);
    for (index, target) in targets.iter().enumerate() {
        let spec = node(
            "call",
            "http.request",
            json!({"url": format!("http://{allowed}/hop/{index}")}),
        );
        let error = engine
            .run_node(&spec, &context("call", vec![]))
            .await
            .expect_err(target);
        assert_eq!(
            error.class,
            ErrorClass::Permanent,
            "{target}: {}",
            error.message
        );
        // A redirect to another scheme is not followed at all: the node
        // sees the 302 itself.
        let not_followed = target.starts_with("file:") && error.message.contains("302");
        assert!(
            error.message.contains("egress refused") || not_followed,
            "{target}: {}",
            error.message
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

fn targets_for_router(port: u16) -> Vec<String> {
    vec![
        format!("http://127.0.0.2:{port}/"),
        format!("http://2130706434:{port}/"),
        format!("http://0x7f000002:{port}/"),
        format!("http://0177.0.0.2:{port}/"),
        format!("http://[::ffff:127.0.0.2]:{port}/"),
        format!("http://[::ffff:7f00:2]:{port}/"),
        format!("http://[64:ff9b::7f00:2]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/".to_owned(),
        "http://0/".to_owned(),
        "file:///etc/passwd".to_owned(),
    ]
}
