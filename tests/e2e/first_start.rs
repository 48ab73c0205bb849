//! A first start that fails never locks anyone out, a first key lost before
//! its first use is printed anew, and what the binary tells its operator
//! about bad configuration, ports, help and logs.

use std::process::{Output, Stdio};

use crate::process::{send_sigterm, start, start_with, tyboo};
use crate::sandbox::TestStore;

async fn run(command: &mut tokio::process::Command) -> Output {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What no message for an operator shows: source locations, backtraces,
/// debug chains, figment's profile.
fn assert_no_internals(text: &str) {
    for internal in [
        ".rs:",
        "stack backtrace",
        "Caused by",
        "global.",
        "alloc::",
        "Error {",
    ] {
        assert!(!text.contains(internal), "`{internal}` in: {text}");
    }
}

async fn me_status(edge: &str, key: &str) -> u16 {
    crate::sandbox::http_client()
        .get(format!("http://{edge}/v1/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_first_start_with_a_bad_egress_range_writes_nothing_and_the_next_prints_a_key() {
    let store = TestStore::create().await;
    let output = run(tyboo(&store)
        .env("RUST_BACKTRACE", "1")
        .env(
            "TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS",
            "[10.0.0.0/33]",
        )
        .arg("up"))
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "executor.engine.egress.allow_cidrs (TYBOO_EXECUTOR__ENGINE__EGRESS__ALLOW_CIDRS)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
    assert_eq!(stderr.matches("allow_cidrs").count(), 1, "once: {stderr}");
    assert_no_internals(&stderr);
    assert!(output.stdout.is_empty(), "nothing announced");

    // Fixed, the next start is the first start: it prints a working key.
    let mut running = start(&store).await;
    let key = running.api_key.clone().expect("the key is printed");
    assert_eq!(me_status(&running.edge, &key).await, 200);
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}

#[tokio::test]
async fn ports_in_use_are_all_reported_before_anything_is_written() {
    let store = TestStore::create().await;
    let edge_taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin_taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let edge_address = edge_taken.local_addr().unwrap().to_string();
    let admin_address = admin_taken.local_addr().unwrap().to_string();
    let output = run(tyboo(&store)
        .env("TYBOO_LISTEN__EDGE", &edge_address)
        .env("TYBOO_LISTEN__ADMIN", &admin_address)
        .arg("up"))
    .await;
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!(
            "listen.edge (TYBOO_LISTEN__EDGE) {edge_address}: already in use"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "listen.admin (TYBOO_LISTEN__ADMIN) {admin_address}: already in use"
        )),
        "{stderr}"
    );
    assert_no_internals(&stderr);
    drop((edge_taken, admin_taken));

    // No organization was created by the failed start.
    let mut running = start(&store).await;
    let key = running
        .api_key
        .clone()
        .expect("the first start is this one");
    assert_eq!(me_status(&running.edge, &key).await, 200);
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}

#[tokio::test]
async fn an_unused_first_key_is_printed_anew_on_restart_until_it_is_used() {
    let store = TestStore::create().await;
    let mut first = start(&store).await;
    let lost_key = first.api_key.clone().expect("first start prints a key");
    send_sigterm(&first.child);
    assert!(first.child.wait().await.unwrap().success());

    // The key was lost before anyone used it: the restart prints a new one
    // for the same workspace, and the lost one no longer works.
    let mut second = start(&store).await;
    let key = second
        .api_key
        .clone()
        .expect("an unused first key is replaced");
    assert_ne!(key, lost_key);
    assert_eq!(second.workspace_id, first.workspace_id);
    assert_eq!(me_status(&second.edge, &lost_key).await, 401);
    assert_eq!(me_status(&second.edge, &key).await, 200);
    send_sigterm(&second.child);
    assert!(second.child.wait().await.unwrap().success());

    // Used once: no restart prints a key again, and the key keeps working.
    let mut third = start(&store).await;
    assert_eq!(third.api_key, None);
    assert_eq!(me_status(&third.edge, &key).await, 200);
    send_sigterm(&third.child);
    assert!(third.child.wait().await.unwrap().success());
    store.remove().await;
}

#[tokio::test]
async fn a_bad_value_is_named_once_by_key_and_variable_without_internals() {
    let store = TestStore::create().await;
    let output = run(tyboo(&store)
        .env("RUST_BACKTRACE", "1")
        .env("TYBOO_EDGE__MAX_BODY_BYTES", "abc")
        .env("TYBOO_TENANCY__MAX_NAME_LENGTH", "0")
        .arg("up"))
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr
            .contains("edge.max_body_bytes (TYBOO_EDGE__MAX_BODY_BYTES): expected a whole number"),
        "{stderr}"
    );
    assert!(stderr.contains("found string \"abc\""), "{stderr}");
    assert_eq!(
        stderr.matches("max_body_bytes").count(),
        1,
        "once: {stderr}"
    );
    assert_no_internals(&stderr);

    // A value of the right type that validation refuses, named the same way.
    let output = run(tyboo(&store)
        .env("TYBOO_TENANCY__MAX_NAME_LENGTH", "0")
        .env("TYBOO_ENDPOINTS__VAULT", "not a url")
        .arg("up"))
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "tenancy.max_name_length (TYBOO_TENANCY__MAX_NAME_LENGTH): must be between 1 and 200"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("endpoints.vault (TYBOO_ENDPOINTS__VAULT): must be an http:// URL"),
        "{stderr}"
    );
    assert_no_internals(&stderr);
    store.remove().await;
}

#[tokio::test]
async fn dump_config_needs_no_command_and_no_text_names_the_hidden_one() {
    let store = TestStore::create().await;
    let output = run(tyboo(&store).arg("--dump-config")).await;
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("[listen]"));

    for arguments in [
        vec!["--help"],
        vec!["help"],
        vec!["expression"],
        vec!["expression-sandboxes"],
        vec![],
    ] {
        let output = run(tyboo(&store).args(&arguments)).await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(&output)
        );
        assert!(text.contains("Usage"), "{arguments:?}: {text}");
        // Clap echoes what was typed; nothing else may name the command.
        let rest = arguments
            .iter()
            .fold(text.clone(), |rest, argument| rest.replace(argument, ""));
        assert!(!rest.contains("sandbox"), "{arguments:?}: {text}");
        assert!(!rest.contains("similar"), "{arguments:?}: {text}");
    }
    store.remove().await;
}

#[tokio::test]
async fn logs_to_a_file_carry_no_colour_and_the_banner_is_whole_on_stdout() {
    let store = TestStore::create().await;
    let log = store.data_dir.join("tyboo.log");
    let mut running = start_with(&store, |command| {
        crate::process::log_to_file(command, &log, "info");
        command.env("TYBOO_LOG__FORMAT", "pretty");
    })
    .await;
    // The banner was read whole from stdout (start_with parses it), so no
    // log line sits inside it; the log itself went to the file.
    assert!(running.api_key.is_some());
    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("tenancy serving"), "{logged}");
    assert!(!logged.contains('\u{1b}'), "ANSI escapes in: {logged}");
    assert!(!logged.contains("Tyboo Studio is running"), "{logged}");
    store.remove().await;
}
