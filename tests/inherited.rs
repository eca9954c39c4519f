//! Sockets a child process inherits: a connected pair from `CommandExt::spawn_connected`, `fd:N`
//! endpoints, and systemd socket activation. Each test re-runs this test binary as the child
//! (`--exact child_process --include-ignored`), naming the child's role in an environment
//! variable; the child plays its part and prints `CHILD DONE`.

mod common;
mod inheriting;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use msgsock::{CommandExt, Endpoint, Error, InheritError};

use crate::common::{guard_timeouts, tempdir, ChildGuard, GUARD_TIMEOUT};
use crate::inheriting::*;

/// The child half of the tests below; ignored in a normal run, started by them.
#[test]
#[ignore = "the child process of the inherited-socket tests; they run it"]
fn child_process() {
    let role = std::env::var(ROLE_VAR).unwrap_or_else(|_| {
        panic!("{ROLE_VAR} is not set: this test is run by the inherited-socket tests")
    });
    match role.as_str() {
        "pair-echo" => {
            let mut conn = msgsock::child::connection().expect("the inherited pair");
            assert!(
                std::env::var_os(msgsock::child::FD_VAR).is_none(),
                "MSGSOCK_FD is cleared once taken"
            );
            assert_close_on_exec(conn.as_fd());
            guard_timeouts(&conn);
            // Until "bye" (then exit, closing the child's end) or the parent's close.
            while let Some(msg) = conn.recv().unwrap() {
                if msg == b"bye" {
                    break;
                }
                conn.send(&reversed(&msg)).unwrap();
            }
        }
        "pair-errors" => pair_errors(),
        "fd-listener" => {
            let endpoint: Endpoint = "fd:3".parse().unwrap();
            let listener = msgsock::bind(&endpoint).expect("adopt the listener on fd 3");
            assert_close_on_exec(listener.as_fd());
            // The same number cannot be adopted twice: a second owner would close it under us.
            let again = msgsock::connect(&endpoint).unwrap_err();
            assert!(
                matches!(again, Error::Inherit(InheritError::AlreadyTaken { fd: 3 })),
                "{again:?}"
            );
            let mut conn = listener.accept().unwrap();
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a message");
            conn.send(&reversed(&msg)).unwrap();
            assert_eq!(conn.recv().unwrap(), None);
        }
        "fd-datagram" => {
            let mut conn = msgsock::connect(&"fd:3".parse().unwrap()).expect("adopt fd 3");
            assert!(conn.is_datagram());
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a datagram");
            conn.send(&reversed(&msg)).unwrap();
        }
        "fd-packet" => {
            // A connected SEQPACKET socket: a message connection with packet boundaries, its
            // empty message told from end of file.
            let mut conn = msgsock::connect(&"fd:3".parse().unwrap()).expect("adopt fd 3");
            assert!(conn.as_seqpacket().is_some(), "a packet connection");
            assert_close_on_exec(conn.as_fd());
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a packet");
            conn.send(&reversed(&msg)).unwrap();
            assert_eq!(conn.recv().unwrap().as_deref(), Some(&b""[..]));
            assert_eq!(conn.recv().unwrap(), None);
        }
        "fd-packet-listener" => {
            let listener = msgsock::bind(&"fd:3".parse().unwrap()).expect("adopt the listener");
            let mut conn = listener.accept().unwrap();
            assert!(conn.as_seqpacket().is_some(), "a packet connection");
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a packet");
            conn.send(&reversed(&msg)).unwrap();
        }
        "fd-not-listening" => {
            // A connected stream is not a listener; nothing else changes hands.
            let err = msgsock::bind(&"fd:3".parse().unwrap()).unwrap_err();
            assert!(
                matches!(err, Error::Inherit(InheritError::NotListening { fd: 3 })),
                "{err:?}"
            );
        }
        "systemd" => {
            let listener =
                msgsock::bind(&"systemd:control".parse().unwrap()).expect("systemd:control");
            for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
                assert!(std::env::var_os(var).is_none(), "{var} is cleared");
            }
            assert_close_on_exec(listener.as_fd());
            // The first passed socket is `systemd:`; fd 3 is `web`, fd 4 `control`.
            let first = msgsock::bind(&"systemd:".parse().unwrap()).expect("systemd:");
            assert_eq!(first.as_raw_fd(), 3);
            assert_eq!(listener.as_raw_fd(), 4);
            let missing = msgsock::bind(&"systemd:nope".parse().unwrap()).unwrap_err();
            assert!(
                matches!(&missing, Error::Inherit(InheritError::NoSuchName { name, .. }) if name == "nope"),
                "{missing:?}"
            );
            let mut conn = listener.accept().unwrap();
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a message");
            conn.send(&reversed(&msg)).unwrap();
        }
        "systemd-other-pid" => {
            let err = msgsock::bind(&"systemd:".parse().unwrap()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Inherit(InheritError::OtherProcess { listen_pid: 1, .. })
                ),
                "{err:?}"
            );
        }
        "systemd-same-name" => {
            // Two sockets named `web`, a datagram socket on 3 and a listener on 4, as one
            // `.socket` unit with two listen lines passes them: each call takes the first of
            // the name it can use that is not taken yet.
            let listener = msgsock::bind(&"systemd:web".parse().unwrap()).expect("a listener");
            assert_eq!(listener.as_raw_fd(), 4);
            let socket = msgsock::bind_datagram(&"systemd:web".parse().unwrap()).expect("fd 3");
            assert_eq!(socket.as_raw_fd(), 3);
            let err = msgsock::bind(&"systemd:web".parse().unwrap()).unwrap_err();
            assert!(
                matches!(err, Error::Inherit(InheritError::AlreadyTaken { fd: 4 })),
                "{err:?}"
            );
        }
        "fd-nonblocking" => {
            // The parent left the socket in non-blocking mode; a blocking connection must
            // not inherit that, or its receives would not wait.
            let mut conn = msgsock::connect(&"fd:3".parse().unwrap()).expect("adopt fd 3");
            assert!(!is_nonblocking(conn.as_fd()), "still non-blocking");
            guard_timeouts(&conn);
            let msg = conn.recv().unwrap().expect("a message");
            conn.send(&reversed(&msg)).unwrap();
        }
        "fd-unconnected" => {
            // Neither listening nor connected: nothing to connect over.
            for fd in [3, 4] {
                let endpoint: Endpoint = format!("fd:{fd}").parse().unwrap();
                let err = msgsock::connect(&endpoint).unwrap_err();
                assert!(
                    matches!(err, Error::Inherit(InheritError::NotConnected { fd: n }) if n == fd),
                    "fd {fd}: {err:?}"
                );
            }
            let err = msgsock::child::connection().unwrap_err();
            assert!(
                matches!(err, Error::Inherit(InheritError::NotConnected { fd: 3 })),
                "{err:?}"
            );
        }
        other => panic!("unknown role {other:?}"),
    }
    println!("{DONE}");
}

/// In the child: each way `MSGSOCK_FD` can be wrong is its own typed error. The parent passed
/// a regular file on fd 3.
fn pair_errors() {
    use msgsock::child::{connection, FD_VAR};
    let err_of = |value: Option<&str>| {
        match value {
            Some(v) => std::env::set_var(FD_VAR, v),
            None => std::env::remove_var(FD_VAR),
        }
        let err = connection().unwrap_err();
        assert!(std::env::var_os(FD_VAR).is_none(), "cleared even on error");
        match err {
            Error::Inherit(e) => e,
            other => panic!("want an inherit error, got {other:?}"),
        }
    };
    assert_eq!(err_of(None), InheritError::MissingVar { var: FD_VAR });
    for garbled in ["", "x3", "+3", "-1", "99999999999"] {
        assert!(
            matches!(err_of(Some(garbled)), InheritError::InvalidVar { value, .. } if value == garbled),
            "{garbled:?}"
        );
    }
    assert_eq!(err_of(Some("900")), InheritError::NotOpen { fd: 900 });
    assert_eq!(err_of(Some("3")), InheritError::NotASocket { fd: 3 });
    // A socket this process made itself is close-on-exec: it was not inherited, and something
    // here owns it.
    let (own, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let own_fd = own.as_raw_fd().to_string();
    assert_eq!(
        err_of(Some(&own_fd)),
        InheritError::NotInherited {
            fd: own.as_raw_fd()
        }
    );
    // fd:N checks the same way.
    let err = msgsock::connect(&format!("fd:{own_fd}").parse().unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::Inherit(InheritError::NotInherited { .. })),
        "{err:?}"
    );
    let err = msgsock::connect(&"fd:900".parse().unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::Inherit(InheritError::NotOpen { fd: 900 })),
        "{err:?}"
    );
}

/// The inode of a socket, as `/proc/PID/fd` shows it (`socket:[INODE]`).
fn socket_inode(fd: std::os::fd::BorrowedFd<'_>) -> u64 {
    nix::sys::stat::fstat(fd).unwrap().st_ino
}

#[test]
fn a_spawned_child_talks_over_the_inherited_pair() {
    talk_over_spawned_pair("pair-echo");
}

#[test]
fn the_passed_socket_reaches_only_its_own_child() {
    // While a command holding a socket is being spawned, other threads spawn plain children:
    // none of them may see the socket (it is close-on-exec in the parent throughout).
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let inode = socket_inode(theirs.as_fd());
    let mut cmd = child_command("pair-echo");
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    let others: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                Command::new("sh")
                    .args([
                        "-c",
                        "for f in /proc/$$/fd/*; do stat -L -c %i \"$f\"; done; exit 0",
                    ])
                    .stderr(Stdio::null())
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    let mut conn = msgsock::Connection::new(msgsock::UnixStream::from(ours));
    guard_timeouts(&conn);
    conn.send(b"ping").unwrap();
    assert_eq!(conn.recv().unwrap().as_deref(), Some(&b"gnip"[..]));
    drop(conn);
    assert_child_done(child);
    for other in others {
        let out = other.join().unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            listed.lines().count() >= 3,
            "the lister saw its stdio: {listed}"
        );
        assert!(
            !listed.lines().any(|l| l.trim() == inode.to_string()),
            "another child inherited the socket:\n{listed}"
        );
    }
}

#[test]
fn a_missing_garbled_closed_or_non_socket_fd_is_a_typed_error() {
    let dir = tempdir();
    let file = std::fs::File::create(dir.path().join("not-a-socket")).unwrap();
    run_with_socket("pair-errors", OwnedFd::from(file));
}

#[test]
fn fd_endpoint_adopts_an_inherited_tcp_listener() {
    serve_through_passed_tcp_listener("fd-listener");
}

#[test]
fn fd_endpoint_wraps_an_inherited_datagram_socket() {
    datagram_through_passed_socket("fd-datagram");
}

/// `fd:N` adopts a connected SEQPACKET socket as a packet connection, and a listening one as a
/// listener whose connections are.
#[test]
fn fd_endpoint_adopts_inherited_seqpacket_sockets() {
    let (ours, theirs) = msgsock::UnixSeqpacket::pair().unwrap();
    let mut cmd = child_command("fd-packet");
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    ours.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    ours.send(b"packet").unwrap();
    assert_eq!(ours.recv().unwrap().as_deref(), Some(&b"tekcap"[..]));
    ours.send(b"").unwrap();
    drop(ours);
    assert_child_done(child);

    let dir = tempdir();
    let path = dir.path().join("p.sock");
    let listener = msgsock::UnixSeqpacketListener::bind(&path).unwrap();
    // The child's copy listens; ours stays open, so the file stays too.
    let fd = OwnedFd::from(listener.try_clone().unwrap());
    let mut cmd = child_command("fd-packet-listener");
    cmd.pass_socket(fd).unwrap();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    let client = msgsock::UnixSeqpacket::connect(&path).unwrap();
    client.set_read_timeout(Some(GUARD_TIMEOUT)).unwrap();
    client.send(b"to the child").unwrap();
    assert_eq!(
        client.recv().unwrap().as_deref(),
        Some(&b"dlihc eht ot"[..])
    );
    assert_child_done(child);
    drop(listener);
}

#[test]
fn fd_endpoint_refuses_to_bind_a_connected_socket() {
    let (_ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    run_with_socket("fd-not-listening", OwnedFd::from(theirs));
}

#[test]
fn systemd_activation_hands_over_named_sockets() {
    serve_through_systemd_sockets("systemd");
}

#[test]
fn systemd_sockets_for_another_pid_are_refused() {
    let dir = tempdir();
    let a = msgsock::UnixListener::bind(dir.path().join("a.sock")).unwrap();
    let b = msgsock::UnixListener::bind(dir.path().join("b.sock")).unwrap();
    assert_child_done(systemd_child(
        "systemd-other-pid",
        [a.into(), b.into()],
        Some("1"),
    ));
}

#[test]
fn systemd_sockets_of_one_name_are_handed_out_in_turn() {
    let dir = tempdir();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let listener = msgsock::UnixListener::bind(dir.path().join("web.sock")).unwrap();
    assert_child_done(systemd_child_named(
        "systemd-same-name",
        [socket.into(), listener.into()],
        "web:web",
        None,
    ));
}

#[test]
fn an_inherited_non_blocking_socket_is_adopted_blocking() {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let mut cmd = child_command("fd-nonblocking");
    cmd.pass_socket(OwnedFd::from(theirs)).unwrap();
    let child = ChildGuard::new(cmd.spawn().unwrap());
    drop(cmd);
    let mut conn = msgsock::Connection::new(msgsock::UnixStream::from(ours));
    guard_timeouts(&conn);
    conn.send(b"wait for me").unwrap();
    assert_eq!(conn.recv().unwrap(), Some(reversed(b"wait for me")));
    assert_child_done(child);
}

#[test]
fn connect_refuses_an_inherited_socket_that_is_not_connected() {
    // A TCP socket that was never connected, and an unconnected UDP socket.
    let tcp = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cmd = child_command("fd-unconnected");
    cmd.pass_socket(tcp).unwrap();
    cmd.pass_socket_as(OwnedFd::from(udp), 4).unwrap();
    assert_child_done(ChildGuard::new(cmd.spawn().unwrap()));
}
