//! The README's grpcurl walk-through, run by a Python gRPC client that
//! learns every message type from server reflection alone.

use std::process::Command;

use crate::sandbox::Sandbox;

#[tokio::test]
async fn grpcurl_walkthrough_works_from_reflection_alone() {
    let sandbox = Sandbox::start().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/grpcurl/walkthrough.py"
    );
    let target = sandbox.tenancy.to_string();
    let key = sandbox.owner_key.clone();
    let workspace = sandbox.workspace_id.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &target, &key, &workspace])
            .output()
            .expect("python3 runs (CI installs grpcio and grpcio-reflection)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "walkthrough failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("walkthrough ok"), "{stdout}");
    sandbox.stop().await;
}
