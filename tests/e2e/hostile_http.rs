//! Malformed and abusive HTTP/2 and HTTP/1 at the edge, written frame by
//! frame: rapid reset, CONTINUATION floods and slow bodies. Each attack must
//! cost its own connection (or request) only; the edge keeps serving
//! everybody else.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sandbox::Sandbox;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap();
    let mut bytes = length.to_be_bytes()[1..].to_vec();
    bytes.extend([kind, flags]);
    bytes.extend((stream & 0x7fff_ffff).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// HPACK "literal header field without indexing, new name" for short
/// names and values.
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        block.push(u8::try_from(name.len()).unwrap());
        block.extend_from_slice(name.as_bytes());
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    block
}

fn health_check_headers() -> Vec<u8> {
    header_block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/grpc.health.v1.Health/Check"),
        (":authority", "edge"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ])
}

/// The (type, flags, stream) of every whole frame in `bytes`.
fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32)> {
    let mut found = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 9 {
        let length = usize::try_from(u32::from_be_bytes([
            0,
            bytes[at],
            bytes[at + 1],
            bytes[at + 2],
        ]))
        .unwrap();
        if bytes.len() < at + 9 + length {
            break;
        }
        let stream = u32::from_be_bytes(bytes[at + 5..at + 9].try_into().unwrap()) & 0x7fff_ffff;
        found.push((bytes[at + 3], bytes[at + 4], stream));
        at += 9 + length;
    }
    found
}

async fn h2_connection(edge: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(edge).await.unwrap();
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    stream
}

/// Reads frames until the edge sends GOAWAY or closes; returns the GOAWAY's
/// error code if one came. Fails if neither happens within `within`.
async fn until_goaway_or_close(stream: &mut TcpStream, within: Duration) -> Option<u32> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buffer = Vec::new();
    loop {
        while buffer.len() >= 9 {
            let length =
                usize::try_from(u32::from_be_bytes([0, buffer[0], buffer[1], buffer[2]])).unwrap();
            if buffer.len() < 9 + length {
                break;
            }
            if buffer[3] == GOAWAY && length >= 8 {
                return Some(u32::from_be_bytes(buffer[13..17].try_into().unwrap()));
            }
            buffer.drain(..9 + length);
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(read)) => buffer.extend_from_slice(&chunk[..read]),
            Err(_) => panic!("the edge neither sent GOAWAY nor closed within {within:?}"),
        }
    }
}

async fn edge_still_serves(sandbox: &Sandbox) {
    let response = sandbox
        .http
        .get(sandbox.url("/healthz"))
        .send()
        .await
        .expect("the edge still answers");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn rapid_reset_costs_the_attacker_its_connection() {
    let sandbox = Sandbox::start().await;
    let mut attacker = h2_connection(sandbox.edge).await;
    let headers = health_check_headers();
    let mut burst = Vec::new();
    for index in 0..2_000u32 {
        let stream = 1 + 2 * index;
        burst.extend(frame(HEADERS, END_HEADERS, stream, &headers));
        burst.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    // The edge may hang up before the burst is written; that is the point.
    let _ = attacker.write_all(&burst).await;
    let code = until_goaway_or_close(&mut attacker, Duration::from_secs(10)).await;
    // ENHANCE_YOUR_CALM (0xb) when it says why; a plain close is also fine.
    assert!(
        code.is_none_or(|code| code == 0xb || code == 0x1),
        "{code:?}"
    );
    edge_still_serves(&sandbox).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off() {
    let sandbox = Sandbox::start().await;
    let mut attacker = h2_connection(sandbox.edge).await;
    let headers = health_check_headers();
    let _ = attacker.write_all(&frame(HEADERS, 0, 1, &headers)).await;
    // Endless header blocks that never end: 16 KiB of junk headers a frame.
    let value = "j".repeat(120);
    let junk = header_block(&[("x-junk", value.as_str()); 120]);
    let continuation = frame(CONTINUATION, 0, 1, &junk);
    let mut cut_off = false;
    for _ in 0..4_000 {
        if attacker.write_all(&continuation).await.is_err() {
            cut_off = true;
            break;
        }
    }
    if !cut_off {
        until_goaway_or_close(&mut attacker, Duration::from_secs(10)).await;
    }
    edge_still_serves(&sandbox).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_at_the_request_deadline() {
    let sandbox = Sandbox::start_with(|config| {
        config.edge.request_timeout_ms = 1_000;
    })
    .await;
    let mut slow = TcpStream::connect(sandbox.edge).await.unwrap();
    slow.write_all(
        format!(
            "POST /v1/workflows HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{",
            sandbox.owner_key
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = tokio::time::Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // One byte every 100 ms would take 100 s; the deadline answers first.
    loop {
        tokio::select! {
            read = slow.read(&mut buffer) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        answer.extend_from_slice(&buffer[..read]);
                        if answer.windows(4).any(|window| window == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if slow.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the trickling body kept its request open"
        );
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty()
            || answer.starts_with("HTTP/1.1 504")
            || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    edge_still_serves(&sandbox).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn a_well_formed_h2_health_check_still_works() {
    // The control for the frames above: the same HEADERS, with a body,
    // are answered.
    let sandbox = Sandbox::start().await;
    let mut client = h2_connection(sandbox.edge).await;
    client
        .write_all(&frame(HEADERS, END_HEADERS, 1, &health_check_headers()))
        .await
        .unwrap();
    // An empty HealthCheckRequest: a zero-length gRPC message.
    client
        .write_all(&frame(0x0, END_STREAM, 1, &[0, 0, 0, 0, 0]))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let answered = loop {
        if frames(&seen)
            .iter()
            .any(|(kind, _, stream)| *kind == HEADERS && *stream == 1)
        {
            break true;
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, client.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => seen.extend_from_slice(&chunk[..read]),
            _ => break false,
        }
    };
    assert!(answered, "no answer to a well-formed request");
    sandbox.stop().await;
}
