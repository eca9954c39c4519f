//! The `parent_child` example, run as a real process (build it first with
//! `cargo build --examples`, or run a plain `cargo test`; see `procs`).

mod procs;

use std::process::Command;

use crate::procs::{example, Proc};

#[test]
fn parent_child_example_exchanges_messages_with_its_child() {
    let out = Proc::spawn(&mut Command::new(example("parent_child"))).finish();
    out.assert_clean_exit();
    for line in [
        r#"parent sent "hello", child replied "olleh""#,
        r#"parent sent "from the parent", child replied "tnerap eht morf""#,
        r#"parent sent "世界", child replied "界世""#,
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{line:?} in:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("child ") && l.ends_with("exited: exit status: 0")),
        "{}",
        out.stdout
    );
}

#[test]
fn parent_child_example_rejects_arguments() {
    let out = Proc::spawn(Command::new(example("parent_child")).arg("--bogus")).finish();
    assert!(!out.status.success());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("usage"), "{}", out.stderr);
}
