//! SO_PEERCRED: a server learns who connected.

use msgsock::{Connection, UnixListener, UnixStream};

#[test]
fn accepted_connection_reports_the_client_process() -> Result<(), Box<dyn std::error::Error>> {
    let listener = UnixListener::bind_temp()?;
    let client = Connection::new(UnixStream::connect(listener.path())?);
    let (server, _) = listener.accept()?;
    let cred = server.peer_cred()?;
    assert_eq!(cred.pid, std::process::id() as i32);
    assert_eq!(cred.uid, nix::unistd::geteuid().as_raw());
    assert_eq!(cred.gid, nix::unistd::getegid().as_raw());
    // And the other way round.
    assert_eq!(client.get_ref().peer_cred()?, cred);
    Ok(())
}
