//! A parent and its child exchanging messages over an inherited socket pair: no socket file,
//! no port, no `unsafe`.
//!
//! ```text
//! cargo run --example parent_child
//! ```
//!
//! The parent spawns this same program as its child with
//! [`CommandExt::spawn_connected`](msgsock::CommandExt::spawn_connected), which hands the
//! child one end of a connected pair on descriptor 3 and names it in `MSGSOCK_FD`. The child
//! takes it with `msgsock::child::connection()` and answers each message with its reversal
//! until the parent closes its end; then both exit.

use std::process::{Command, ExitCode};

use msgsock::CommandExt;

fn main() -> ExitCode {
    let result = if std::env::var_os(msgsock::child::FD_VAR).is_some() {
        child()
    } else if std::env::args_os().len() > 1 {
        Err("usage: parent_child (takes no arguments)".into())
    } else {
        parent()
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parent_child: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn parent() -> Result {
    let (mut child, mut conn) = Command::new(std::env::current_exe()?).spawn_connected()?;
    for msg in ["hello", "from the parent", "世界"] {
        conn.send(msg.as_bytes())?;
        let reply = conn.recv()?.ok_or("the child closed the pair")?;
        println!(
            "parent sent {msg:?}, child replied {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    // Closing our end is the child's end of stream.
    drop(conn);
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the child failed: {status}").into());
    }
    println!("child {} exited: {status}", child.id());
    Ok(())
}

fn child() -> Result {
    let mut conn = msgsock::child::connection()?;
    while let Some(msg) = conn.recv()? {
        let reversed: String = String::from_utf8_lossy(&msg).chars().rev().collect();
        conn.send(reversed.as_bytes())?;
    }
    Ok(())
}
