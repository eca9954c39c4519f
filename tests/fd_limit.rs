//! A receive at the descriptor limit (`MSG_CTRUNC`), on every kind of Unix socket that carries
//! descriptors, blocking and async: [`Error::FdsTruncated`] in place of the message that lost
//! them, every descriptor of it that did arrive closed, and the next receive gets the next
//! message with its own descriptors.
//!
//! Each test lowers `RLIMIT_NOFILE` in a child process (this test binary run again, its role in
//! an environment variable), so the test process's own limit is untouched. The parent sends;
//! the child receives and checks. Linux: the open descriptors are read from `/proc/self/fd`.
#![cfg(any(target_os = "linux", target_os = "android"))]

mod common;

use std::os::fd::OwnedFd;
use std::path::Path;

use msgsock::{Connection, Error, UnixDatagram, UnixListener, UnixSeqpacketListener};

use crate::common::{
    assert_child_done, borrowed, describe, files, this_test_as_child, ChildGuard, DONE,
    GUARD_TIMEOUT,
};

const ROLE_VAR: &str = "MSGSOCK_FD_CHILD_ROLE";
const PATH_VAR: &str = "MSGSOCK_FD_CHILD_PATH";
/// How many descriptors the truncated message carries; the child has room for fewer.
const MANY: usize = 16;
/// How many more descriptors the child leaves room for: fewer than [`MANY`].
const ROOM: usize = 2;

/// The open descriptors of this process.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    fds
}

/// Lowers `RLIMIT_NOFILE` and fills the free numbers below it, so that this process has room
/// for exactly [`ROOM`] more descriptors. The fillers stay open for the process's life.
fn leave_room_for_few() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, highest + 1 + ROOM as u64, hard).unwrap();
    let mut fillers = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        fillers.push(file);
    }
    fillers.truncate(fillers.len() - ROOM);
    std::mem::forget(fillers);
}

/// What every role checks, with `recv` its receive with descriptors: the receive that hits the
/// limit is `FdsTruncated` naming the descriptors that were closed, hands none out and leaves
/// none open; the next one gets the next message, `after`, with its one descriptor.
fn at_the_limit(
    mut recv: impl FnMut(&mut Vec<u8>, &mut Vec<OwnedFd>) -> Result<Option<usize>, Error>,
) {
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    let before = open_fds();
    let err = recv(&mut buf, &mut fds).expect_err("a receive at the descriptor limit");
    assert_truncated(err, &fds, &before);
    assert_eq!(recv(&mut buf, &mut fds).unwrap(), Some(5));
    assert_eq!((buf.as_slice(), fds.len()), (&b"after"[..], 1));
}

/// [`at_the_limit`] for an async receive, each bounded by [`GUARD_TIMEOUT`] so that a lost
/// message fails instead of hanging.
#[cfg(feature = "tokio")]
async fn at_the_limit_async(
    mut recv: impl AsyncFnMut(&mut Vec<u8>, &mut Vec<OwnedFd>) -> Result<Option<usize>, Error>,
) {
    use tokio::time::timeout;
    let (mut buf, mut fds) = (Vec::new(), Vec::new());
    let before = open_fds();
    let got = timeout(GUARD_TIMEOUT, recv(&mut buf, &mut fds))
        .await
        .unwrap();
    assert_truncated(
        got.expect_err("a receive at the descriptor limit"),
        &fds,
        &before,
    );
    let got = timeout(GUARD_TIMEOUT, recv(&mut buf, &mut fds))
        .await
        .unwrap();
    assert_eq!(got.unwrap(), Some(5));
    assert_eq!((buf.as_slice(), fds.len()), (&b"after"[..], 1));
}

fn assert_truncated(err: Error, fds: &[OwnedFd], before: &[String]) {
    assert!(
        matches!(err, Error::FdsTruncated { closed } if closed == ROOM),
        "{err:?}"
    );
    assert!(fds.is_empty(), "descriptors handed out with the error");
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// The child half of the tests; ignored in a normal run, started by them. Each role connects,
/// lowers its limit, says `limited`, and checks what the parent sends then: a message with too
/// many descriptors, `after` with one, and on a connection `plain` and the close.
#[test]
#[ignore = "the child process of the descriptor-limit tests; they run it"]
fn child_process() {
    let role = std::env::var(ROLE_VAR).expect(ROLE_VAR);
    let path = std::env::var(PATH_VAR).expect(PATH_VAR);
    match role.as_str() {
        "stream" => {
            let mut conn = Connection::new(msgsock::UnixStream::connect(&path).unwrap());
            conn.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
            leave_room_for_few();
            conn.send(b"limited").unwrap();
            at_the_limit(|buf, fds| conn.recv_into_with_fds(buf, fds));
            assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"plain"[..]));
            assert_eq!(conn.recv().unwrap(), None);
        }
        "datagram" => {
            let socket = UnixDatagram::bind_temp().unwrap();
            socket.connect(&path).unwrap();
            socket.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
            leave_room_for_few();
            socket.send(b"limited").unwrap();
            at_the_limit(|buf, fds| socket.recv_into_with_fds(buf, fds).map(Some));
        }
        "seqpacket" => {
            let socket = msgsock::UnixSeqpacket::connect(&path).unwrap();
            socket.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
            leave_room_for_few();
            socket.send(b"limited").unwrap();
            at_the_limit(|buf, fds| socket.recv_into_with_fds(buf, fds));
            assert_eq!(socket.recv().unwrap().as_deref(), Some(&b"plain"[..]));
            assert_eq!(socket.recv().unwrap(), None);
        }
        #[cfg(feature = "tokio")]
        async_role => async_child(async_role, &path),
        #[cfg(not(feature = "tokio"))]
        other => panic!("unknown role {other:?}"),
    }
    println!("{DONE}");
}

/// The async roles: the same receives through the tokio drivers.
#[cfg(feature = "tokio")]
fn async_child(role: &str, path: &str) {
    use msgsock::tokio::{AsyncConnection, AsyncDatagram, AsyncSeqpacket};
    use tokio::time::timeout;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match role {
            "async_stream" => {
                let stream = tokio::net::UnixStream::connect(path).await.unwrap();
                let mut conn = AsyncConnection::new(stream);
                leave_room_for_few();
                conn.send(b"limited").await.unwrap();
                at_the_limit_async(async |buf, fds| conn.recv_into_with_fds(buf, fds).await).await;
                let got = timeout(GUARD_TIMEOUT, conn.recv()).await.unwrap();
                assert_eq!(got.unwrap().as_deref(), Some(&b"plain"[..]));
                assert_eq!(conn.recv().await.unwrap(), None);
            }
            "async_datagram" => {
                let socket = UnixDatagram::bind_temp().unwrap();
                socket.connect(path).unwrap();
                let socket = AsyncDatagram::from_blocking(socket.into()).unwrap();
                leave_room_for_few();
                socket.send(b"limited").await.unwrap();
                at_the_limit_async(async |buf, fds| {
                    socket.recv_into_with_fds(buf, fds).await.map(Some)
                })
                .await;
            }
            "async_seqpacket" => {
                let socket = msgsock::UnixSeqpacket::connect(path).unwrap();
                let socket = AsyncSeqpacket::from_blocking(socket).unwrap();
                leave_room_for_few();
                socket.send(b"limited").await.unwrap();
                at_the_limit_async(async |buf, fds| socket.recv_into_with_fds(buf, fds).await)
                    .await;
                let got = timeout(GUARD_TIMEOUT, socket.recv()).await.unwrap();
                assert_eq!(got.unwrap().as_deref(), Some(&b"plain"[..]));
                assert_eq!(socket.recv().await.unwrap(), None);
            }
            other => panic!("unknown role {other:?}"),
        }
    });
}

fn spawn_child(role: &str, path: &Path) -> ChildGuard {
    let child = this_test_as_child("child_process")
        .env(ROLE_VAR, role)
        .env(PATH_VAR, path)
        .spawn()
        .expect("spawn the child");
    ChildGuard::new(child)
}

/// Fails with the child's output unless its first message is `limited` (it is at its limit).
fn assert_started(got: Option<&[u8]>, child: ChildGuard) -> ChildGuard {
    if got != Some(&b"limited"[..]) {
        panic!(
            "the child did not start:\n{}",
            describe(&child.wait_with_output())
        );
    }
    child
}

/// The sending side for a stream child `role`: the message that loses its descriptors, one
/// with a descriptor, a plain one, then the close.
fn stream_at_the_limit(role: &str) {
    let dir = common::tempdir();
    let path = dir.path().join("limit.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let child = spawn_child(role, &path);
    let (stream, _) = listener.accept().unwrap();
    let mut conn = Connection::new(stream);
    conn.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    let child = assert_started(conn.recv().ok().flatten().as_deref(), child);
    let (many, one) = (files(MANY), files(1));
    conn.send_with_fds(b"lost", &borrowed(&many)).unwrap();
    conn.send_with_fds(b"after", &borrowed(&one)).unwrap();
    conn.send(b"plain").unwrap();
    drop(conn);
    assert_child_done(child);
}

/// The sending side for a datagram child `role`, replying to the child's bound path.
fn datagram_at_the_limit(role: &str) {
    let dir = common::tempdir();
    let path = dir.path().join("limit.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    let child = spawn_child(role, &path);
    let mut buf = Vec::new();
    let from = socket
        .recv_from_endpoint(&mut buf)
        .ok()
        .and_then(|(_, from)| from);
    let child = assert_started(Some(&buf), child);
    let from = from.and_then(|f| f.as_unix_path().map(Path::to_owned));
    let from = from.expect("the child's path");
    let (many, one) = (files(MANY), files(1));
    socket
        .send_to_with_fds(b"lost", &borrowed(&many), &from)
        .unwrap();
    socket
        .send_to_with_fds(b"after", &borrowed(&one), &from)
        .unwrap();
    assert_child_done(child);
}

/// The sending side for a SEQPACKET child `role`, as for a stream.
fn seqpacket_at_the_limit(role: &str) {
    let dir = common::tempdir();
    let path = dir.path().join("limit.sock");
    let listener = UnixSeqpacketListener::bind(&path).unwrap();
    let child = spawn_child(role, &path);
    let (socket, _) = listener.accept().unwrap();
    socket.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    let child = assert_started(socket.recv().ok().flatten().as_deref(), child);
    let (many, one) = (files(MANY), files(1));
    socket.send_with_fds(b"lost", &borrowed(&many)).unwrap();
    socket.send_with_fds(b"after", &borrowed(&one)).unwrap();
    socket.send(b"plain").unwrap();
    drop(socket);
    assert_child_done(child);
}

#[test]
fn a_stream_receive_at_the_descriptor_limit_is_an_error_and_leaks_nothing() {
    stream_at_the_limit("stream");
}

#[test]
fn a_datagram_receive_at_the_descriptor_limit_is_an_error_and_leaks_nothing() {
    datagram_at_the_limit("datagram");
}

#[test]
fn a_seqpacket_receive_at_the_descriptor_limit_is_an_error_and_leaks_nothing() {
    seqpacket_at_the_limit("seqpacket");
}

#[cfg(feature = "tokio")]
mod with_tokio {
    #[test]
    fn a_stream_receive_at_the_descriptor_limit_is_an_error_and_leaks_nothing() {
        super::stream_at_the_limit("async_stream");
    }

    #[test]
    fn a_datagram_receive_at_the_descriptor_limit_is_an_error_and_leaks_nothing() {
        super::datagram_at_the_limit("async_datagram");
    }

    #[test]
    fn a_seqpacket_receive_at_the_descriptor_limit_is_an_error_and_leaks_nothing() {
        super::seqpacket_at_the_limit("async_seqpacket");
    }
}
