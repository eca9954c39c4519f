//! The `rust-version` in Cargo.toml is a promise: it may name only a toolchain that CI builds and
//! tests with. CI has one toolchain, so the claim must be that toolchain's `major.minor`.

use std::process::Command;

/// `major.minor` of a version such as `1.95.0` or `1.95`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
fn rust_version_is_the_toolchain_ci_tests_with() {
    let claimed = env!("CARGO_PKG_RUST_VERSION");
    let claimed = major_minor(claimed).expect("Cargo.toml has a rust-version of the form 1.NN");
    // `rustc --version` prints "rustc 1.95.0 (59807616e 2026-04-14)".
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("--version")
        .output()
        .expect("run rustc --version");
    assert!(out.status.success(), "rustc --version failed");
    let text = String::from_utf8(out.stdout).expect("utf-8 version");
    let running = text
        .split_whitespace()
        .nth(1)
        .and_then(major_minor)
        .unwrap_or_else(|| panic!("unexpected rustc --version output: {text}"));
    assert_eq!(
        claimed, running,
        "Cargo.toml claims rust-version {}.{} but this run proves only {}.{}: claim what CI tests",
        claimed.0, claimed.1, running.0, running.1
    );
}
