// Included by `tests/fd_passing_echo.rs` (the blocking `echo`) and
// `tests/fd_passing_echo_async.rs` (`echo_async`): see `tests/procs` for how each picks its binary.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;

use msgsock::{Connection, UnixDatagram, UnixStream};

use crate::common::{describe, guard_timeouts, identity, ChildGuard};
use crate::echo_process::EchoProcess;

/// Writes through `returned`, which should be `reader`'s pipe's write end, and reads it back.
fn assert_same_pipe(reader: &std::io::PipeReader, writer: &std::io::PipeWriter, returned: OwnedFd) {
    assert_eq!(identity(returned.as_fd()), identity(writer.as_fd()));
    let mut returned = std::fs::File::from(returned);
    returned.write_all(b"through the echo").unwrap();
    let mut got = [0u8; 16];
    (&*reader).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"through the echo");
}

#[test]
fn echo_returns_descriptors_on_a_unix_stream() {
    let dir = common::tempdir();
    let echo = EchoProcess::start(&format!("unix:{}", dir.path().join("e.sock").display()));
    let path = echo.endpoint().as_unix_path().unwrap().to_owned();
    let mut conn = Connection::new(UnixStream::connect(&path).unwrap());
    guard_timeouts(&conn);
    let (reader, writer) = std::io::pipe().unwrap();
    let (_other_reader, other_writer) = std::io::pipe().unwrap();
    conn.send_with_fds(b"one", &[writer.as_fd()]).unwrap();
    conn.send(b"none").unwrap();
    conn.send_with_fds(b"two", &[other_writer.as_fd(), writer.as_fd()])
        .unwrap();
    let (msg, mut fds) = conn.recv_with_fds().unwrap().expect("a reply");
    assert_eq!(
        (msg.as_slice(), fds.len()),
        (&b"one"[..], 1),
        "{}",
        echo.stderr()
    );
    assert_same_pipe(&reader, &writer, fds.remove(0));
    let (msg, fds) = conn.recv_with_fds().unwrap().expect("a reply");
    assert_eq!((msg.as_slice(), fds.len()), (&b"none"[..], 0));
    let (msg, mut fds) = conn.recv_with_fds().unwrap().expect("a reply");
    assert_eq!(msg, b"two");
    assert_eq!(identity(fds[0].as_fd()), identity(other_writer.as_fd()));
    assert_same_pipe(&reader, &writer, fds.remove(1));
}

#[test]
fn echo_returns_descriptors_on_a_seqpacket_connection() {
    let dir = common::tempdir();
    let path = dir.path().join("p.sock");
    let echo = EchoProcess::start(&format!("unixpacket:{}", path.display()));
    let conn = msgsock::UnixSeqpacket::connect(&path).unwrap();
    guard_timeouts(&conn);
    let (reader, writer) = std::io::pipe().unwrap();
    conn.send_with_fds(b"one", &[writer.as_fd()]).unwrap();
    conn.send(b"none").unwrap();
    let (msg, mut fds) = conn.recv_with_fds().unwrap().expect("a reply");
    assert_eq!(
        (msg.as_slice(), fds.len()),
        (&b"one"[..], 1),
        "{}",
        echo.stderr()
    );
    assert_same_pipe(&reader, &writer, fds.remove(0));
    let (msg, fds) = conn.recv_with_fds().unwrap().expect("a reply");
    assert_eq!((msg.as_slice(), fds.len()), (&b"none"[..], 0));
}

#[test]
fn echo_returns_descriptors_on_a_unix_datagram_socket() {
    let dir = common::tempdir();
    let echo = EchoProcess::start(&format!("unixgram:{}", dir.path().join("e.sock").display()));
    let server = echo.endpoint().as_unix_path().unwrap().to_owned();
    let client = UnixDatagram::bind_temp().unwrap();
    client.connect(&server).unwrap();
    client
        .set_read_timeout(Some(common::GUARD_TIMEOUT))
        .unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    client
        .send_with_fds(b"datagram", &[writer.as_fd()])
        .unwrap();
    let (msg, mut fds) = client.recv_with_fds().unwrap();
    assert_eq!(
        (msg.as_slice(), fds.len()),
        (&b"datagram"[..], 1),
        "{}",
        echo.stderr()
    );
    assert_same_pipe(&reader, &writer, fds.remove(0));
}

/// Python's side: for each of three messages (with a pipe's write end, with nothing, with two
/// write ends), sends the frame with `socket.send_fds`, reads the reply's frame with
/// `socket.recv_fds`, and checks each returned descriptor is the same open file as the one sent
/// and that bytes written through it come out of the pipe.
const PY_PEER: &str = r#"
import os, socket, struct, sys
kind, path = sys.argv[1], sys.argv[2]
r1, w1 = os.pipe()
r2, w2 = os.pipe()
# What a returned descriptor wrote is there at once, or never: never wait for it.
os.set_blocking(r1, False)
os.set_blocking(r2, False)
plan = [(b"first", [w1]), (b"plain", []), (b"second", [w2, w1])]
def same(a, b):
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
ok = True
if kind == "stream":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    def exchange(msg, fds):
        socket.send_fds(s, [struct.pack("!I", len(msg)) + msg], fds)
        data, got = b"", []
        while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
            chunk, new, _, _ = socket.recv_fds(s, 65536, 16)
            if not chunk:
                sys.exit("the server closed the connection")
            data += chunk
            got += new
        return data[4:], got
else:
    here = os.path.join(os.path.dirname(path), "py-client.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.settimeout(60)
    s.bind(here)
    s.connect(path)
    def exchange(msg, fds):
        socket.send_fds(s, [msg], fds)
        data, got, _, _ = socket.recv_fds(s, 65536, 16)
        return data, got
for msg, fds in plan:
    reply, got = exchange(msg, fds)
    if reply != msg or len(got) != len(fds) or not all(same(a, b) for a, b in zip(got, fds)):
        print(f"{msg!r}: got {reply!r} with {len(got)} descriptors", file=sys.stderr)
        ok = False
    for fd in got:
        os.write(fd, msg)
        os.close(fd)
    for fd in fds:
        try:
            back = os.read(r1 if fd == w1 else r2, 100)
        except BlockingIOError:
            back = None
        if back != msg:
            print(f"{msg!r}: the pipe gave {back!r}", file=sys.stderr)
            ok = False
print("PY DONE")
sys.exit(0 if ok else 1)
"#;

fn python_peer(kind: &str, endpoint: &str) {
    let dir = common::tempdir();
    let echo = EchoProcess::start(&format!(
        "{endpoint}{}",
        dir.path().join("e.sock").display()
    ));
    let path = echo.endpoint().as_unix_path().unwrap().to_owned();
    let child = common::python3("Python's socket.send_fds is the reference peer")
        .arg("-c")
        .arg(PY_PEER)
        .arg(kind)
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let output = ChildGuard::new(child).wait_with_output();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("PY DONE"),
        "python peer:\n{}\necho: {}",
        describe(&output),
        echo.stderr()
    );
}

#[test]
fn echo_returns_descriptors_to_python_on_a_unix_stream() {
    python_peer("stream", "unix:");
}

#[test]
fn echo_returns_descriptors_to_python_on_a_unix_datagram_socket() {
    python_peer("datagram", "unixgram:");
}
