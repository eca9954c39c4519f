//! Abstract Unix socket names (Linux): `unix:@name` and `unixgram:@name` live in the abstract
//! namespace, never in the filesystem; a listener takes only its own uid unless opened.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod common;
mod echo_process;
mod procs;

use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream as StdUnixStream};
use std::path::Path;

use msgsock::Endpoint;

/// A name no other test (or test run) uses.
fn unique(tag: &str) -> String {
    format!("msgsock-test-{tag}-{}", std::process::id())
}

#[test]
fn unix_at_name_binds_in_the_abstract_namespace_not_the_cwd(
) -> Result<(), Box<dyn std::error::Error>> {
    let name = unique("stream");
    let endpoint: Endpoint = format!("unix:@{name}").parse()?;
    let listener = msgsock::bind(&endpoint)?;
    // No file named `@name` appears in the current directory.
    assert!(
        !common::exists_nofollow(Path::new(&format!("@{name}"))),
        "unix:@{name} made a file in the current directory"
    );
    // A peer that knows nothing of msgsock reaches it by its abstract name.
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let _raw = StdUnixStream::connect_addr(&addr)?;
    let _server = listener.accept()?;
    let mut client = msgsock::connect(&endpoint)?;
    let mut server2 = listener.accept()?;
    client.send(b"hi")?;
    assert_eq!(server2.recv()?.as_deref(), Some(&b"hi"[..]));
    assert_eq!(listener.local_endpoint()?, endpoint);
    Ok(())
}

/// The uid the other-user peer runs as (`nobody`).
const OTHER_UID: u32 = 65534;
/// Names the abstract socket the peer process connects to.
const NAME_VAR: &str = "MSGSOCK_TEST_ABSTRACT_NAME";

/// The other-user peer: connects to the abstract name in `NAME_VAR`, says so, then reads until
/// the server closes and prints how many bytes came. Ignored in a normal run; the uid tests
/// below start it as uid 65534.
#[test]
#[ignore = "the other-uid process of abstract_listener_*; they run it"]
fn abstract_peer_process() {
    let name = std::env::var(NAME_VAR).expect("run by the abstract listener tests");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let mut stream = StdUnixStream::connect_addr(&addr).expect("connect to the abstract name");
    println!("PEER CONNECTED uid {}", nix::unistd::geteuid());
    let mut got = Vec::new();
    // A refused connection is closed unread: a reset is as good as end of file here.
    let _ = stream.read_to_end(&mut got);
    println!("PEER CLOSED after {} bytes", got.len());
}

/// Starts the peer process as uid 65534 against `name`; returns it and its stdout lines.
fn spawn_other_uid_peer(name: &str) -> (common::ChildGuard, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = common::ChildGuard::new(
        common::this_test_as_child("abstract_peer_process")
            .env(NAME_VAR, name)
            .stderr(std::process::Stdio::inherit())
            .uid(OTHER_UID)
            .gid(OTHER_UID)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the peer"),
    );
    let stdout = child.child().stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            // libtest may print `test NAME ... ` on the same line, before ours.
            if let Some(at) = line.find("PEER ") {
                if tx.send(line[at..].to_string()).is_err() {
                    break;
                }
            }
        }
    });
    (child, lines)
}

/// A generous bound that proves "does not hang"; each step takes milliseconds.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

#[test]
fn abstract_listener_refuses_another_uid_by_default() -> Result<(), Box<dyn std::error::Error>> {
    if !common::root_or_skip("abstract_listener_refuses_another_uid_by_default") {
        return Ok(());
    }
    let name = unique("refuse");
    let listener = msgsock::UnixListener::bind_abstract(&name)?;
    let (child, lines) = spawn_other_uid_peer(&name);
    assert_eq!(
        lines.recv_timeout(PATIENCE)?,
        format!("PEER CONNECTED uid {OTHER_UID}")
    );
    // The other uid's connection is queued first; ours after it is the one handed out.
    let _own = msgsock::UnixStream::connect_abstract(&name)?;
    let (server, _) = listener.accept()?;
    let cred = server.peer_cred()?;
    assert_eq!(cred.pid, std::process::id() as i32);
    assert_eq!(cred.uid, nix::unistd::geteuid().as_raw());
    // And the refused peer was closed without a byte.
    assert_eq!(lines.recv_timeout(PATIENCE)?, "PEER CLOSED after 0 bytes");
    let output = child.wait_with_output();
    assert!(output.status.success(), "{}", common::describe(&output));
    Ok(())
}

#[test]
fn abstract_listener_opened_admits_another_uid() -> Result<(), Box<dyn std::error::Error>> {
    if !common::root_or_skip("abstract_listener_opened_admits_another_uid") {
        return Ok(());
    }
    let name = unique("open");
    let listener = msgsock::UnixListener::bind_abstract(&name)?.allow_any_uid();
    let (child, lines) = spawn_other_uid_peer(&name);
    let (server, _) = listener.accept()?;
    assert_eq!(server.peer_cred()?.uid, OTHER_UID);
    let mut server = msgsock::Connection::new(server);
    server.send(b"welcome")?;
    drop(server);
    assert_eq!(
        lines.recv_timeout(PATIENCE)?,
        format!("PEER CONNECTED uid {OTHER_UID}")
    );
    // A 4-byte header and the 7-byte message.
    assert_eq!(lines.recv_timeout(PATIENCE)?, "PEER CLOSED after 11 bytes");
    let output = child.wait_with_output();
    assert!(output.status.success(), "{}", common::describe(&output));
    Ok(())
}

#[test]
fn abstract_datagram_sender_is_reported_and_answered() -> Result<(), Box<dyn std::error::Error>> {
    let server_name = unique("dgram-srv");
    let server = msgsock::bind_datagram(&format!("unixgram:@{server_name}").parse()?)?;
    assert_eq!(
        server.local_endpoint()?.to_string(),
        format!("unixgram:@{server_name}")
    );
    let client_name = unique("dgram-cli");
    let client = msgsock::UnixDatagram::bind_abstract(&client_name)?;
    client.set_read_timeout(Some(PATIENCE))?;
    client.send_to_addr(
        b"ping",
        &SocketAddr::from_abstract_name(server_name.as_bytes())?,
    )?;
    let mut buf = Vec::new();
    let (_, from) = server.recv_from(&mut buf)?;
    let from = from.expect("an abstract sender has an address");
    assert_eq!(from.to_string(), format!("unixgram:@{client_name}"));
    server.send_to(b"pong", &from)?;
    assert_eq!(client.recv()?, b"pong");

    // An unnamed sender has no address to answer: `None`, not a made-up endpoint.
    let unnamed = msgsock::UnixDatagram::unbound()?;
    unnamed.connect_abstract(&server_name)?;
    unnamed.send(b"anon")?;
    let (_, from) = server.recv_from(&mut buf)?;
    assert_eq!((buf.as_slice(), from), (&b"anon"[..], None));
    Ok(())
}

#[test]
fn abstract_names_are_checked_before_any_system_call() {
    let long = "n".repeat(msgsock::MAX_ABSTRACT_NAME_LEN + 1);
    let too_long = |e: msgsock::Error| {
        matches!(
            e,
            msgsock::Error::Endpoint(msgsock::ParseEndpointError::AbstractNameTooLong {
                len: 108,
                max: 107
            })
        )
    };
    assert!(too_long(
        msgsock::UnixListener::bind_abstract(&long).unwrap_err()
    ));
    assert!(too_long(
        msgsock::UnixStream::connect_abstract(&long).unwrap_err()
    ));
    assert!(too_long(
        msgsock::UnixDatagram::bind_abstract(&long).unwrap_err()
    ));
    // The longest name works.
    let longest = format!("{}{}", unique("max"), "n".repeat(107));
    let longest = &longest[..msgsock::MAX_ABSTRACT_NAME_LEN];
    let listener = msgsock::UnixListener::bind_abstract(longest).unwrap();
    assert_eq!(
        listener.local_endpoint().unwrap().as_abstract_name(),
        Some(longest.as_bytes())
    );
    // A name in use is the same error as a path in use.
    assert!(matches!(
        msgsock::UnixListener::bind_abstract(longest),
        Err(msgsock::Error::AddrInUse { .. })
    ));
}

#[test]
fn echo_answers_an_abstract_datagram_sender() -> Result<(), Box<dyn std::error::Error>> {
    let server_name = unique("echo-srv");
    let mut echo = echo_process::EchoProcess::start(&format!("unixgram:@{server_name}"));
    assert_eq!(
        echo.endpoint().to_string(),
        format!("unixgram:@{server_name}")
    );
    let client = msgsock::UnixDatagram::bind_abstract(unique("echo-cli"))?;
    client.set_read_timeout(Some(PATIENCE))?;
    client.connect_abstract(&server_name)?;
    client.send(b"echo me")?;
    let reply = client.recv();
    assert_eq!(reply?, b"echo me", "echo stderr: {}", echo.stderr());
    echo.assert_running();
    Ok(())
}

/// The async listener asks the same uid question as the blocking one before it hands a
/// connection out: an abstract name bound through `msgsock::tokio::bind` refuses another uid too.
#[cfg(feature = "tokio")]
#[test]
fn async_abstract_listener_refuses_another_uid_by_default() -> Result<(), Box<dyn std::error::Error>>
{
    if !common::root_or_skip("async_abstract_listener_refuses_another_uid_by_default") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let name = unique("async-refuse");
        let endpoint: msgsock::Endpoint = format!("unix:@{name}").parse()?;
        let listener = msgsock::tokio::bind(&endpoint).await?;
        let (child, lines) = spawn_other_uid_peer(&name);
        assert_eq!(
            lines.recv_timeout(PATIENCE)?,
            format!("PEER CONNECTED uid {OTHER_UID}")
        );
        let _own = msgsock::tokio::connect(&endpoint).await?;
        let server = tokio::time::timeout(PATIENCE, listener.accept()).await??;
        let cred = server.as_stream().expect("a stream").peer_cred()?;
        assert_eq!(
            cred.pid,
            std::process::id() as i32,
            "the other uid was handed out"
        );
        assert_eq!(lines.recv_timeout(PATIENCE)?, "PEER CLOSED after 0 bytes");
        let output = child.wait_with_output();
        assert!(output.status.success(), "{}", common::describe(&output));
        Ok(())
    })
}

/// `msgsock::tokio::connect` takes an abstract datagram endpoint as the blocking connect does.
#[cfg(feature = "tokio")]
#[test]
fn async_connect_to_an_abstract_datagram_name() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let name = unique("async-dgram");
        let endpoint: msgsock::Endpoint = format!("unixgram:@{name}").parse()?;
        let server = msgsock::bind_datagram(&endpoint)?;
        let mut client = msgsock::tokio::connect(&endpoint).await?;
        client.send(b"ping").await?;
        let mut buf = Vec::new();
        let (n, from) = server.recv_from(&mut buf)?;
        assert_eq!(&buf[..n], b"ping");
        server.send_to(b"pong", &from.expect("the client has an address"))?;
        let reply = tokio::time::timeout(PATIENCE, client.recv()).await??;
        assert_eq!(reply.as_deref(), Some(&b"pong"[..]));
        Ok(())
    })
}
