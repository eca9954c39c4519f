//! Sockets this process inherited: `fd:N` endpoints, systemd socket activation
//! (`sd_listen_fds(3)`), and the one place where a descriptor number becomes an owned
//! descriptor.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::any::{AnyDatagram, AnyListener, AnyStream};
use crate::conn::Connection;
use crate::endpoint::Endpoint;
use crate::error::{Error, Family, Result};
use crate::inet::{TcpListener, TcpStream, UdpSocket};
use crate::sys::{self, SocketType};
use crate::unix::{UnixDatagram, UnixListener, UnixSeqpacket, UnixSeqpacketListener, UnixStream};
use crate::AnyConnection;

/// Why an inherited socket could not be taken: the `fd:N` and `systemd:` endpoints and
/// [`child::connection`](crate::child::connection). Wrapped by
/// [`Error::Inherit`](crate::Error::Inherit).
///
/// Before msgsock owns a descriptor number it checks that the number is open, is a socket, is
/// not close-on-exec (everything this process opens through std or msgsock is, so a descriptor
/// that is not was inherited, and nothing here owns it) and has not been adopted before: each
/// number is adopted at most once per process, so two owners can never close it under each
/// other, even after it was closed and the number reused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InheritError {
    /// The descriptor is not open.
    #[error("descriptor {fd} is not open")]
    NotOpen {
        /// The descriptor number.
        fd: RawFd,
    },
    /// The descriptor is open but is not a socket.
    #[error("descriptor {fd} is not a socket")]
    NotASocket {
        /// The descriptor number.
        fd: RawFd,
    },
    /// The descriptor is close-on-exec, so it was not inherited: something in this process
    /// opened it and owns it.
    #[error("descriptor {fd} is close-on-exec, so it was not inherited: something in this process owns it")]
    NotInherited {
        /// The descriptor number.
        fd: RawFd,
    },
    /// The descriptor number was adopted before by this process (it may be closed by now, or
    /// reused for something else).
    #[error("descriptor {fd} was already adopted by this process")]
    AlreadyTaken {
        /// The descriptor number.
        fd: RawFd,
    },
    /// `bind` was given a socket that does not listen (`SO_ACCEPTCONN`).
    #[error("descriptor {fd} is not a listening socket: connect to it instead")]
    NotListening {
        /// The descriptor number.
        fd: RawFd,
    },
    /// `connect` was given a listening socket.
    #[error("descriptor {fd} is a listening socket: bind it instead")]
    Listening {
        /// The descriptor number.
        fd: RawFd,
    },
    /// `connect` was given a socket that is neither listening nor connected to a peer
    /// (`getpeername(2)` fails), over which nothing could be sent.
    #[error("descriptor {fd} is not connected to a peer")]
    NotConnected {
        /// The descriptor number.
        fd: RawFd,
    },
    /// `bind_datagram` was given a socket that is not a datagram socket.
    #[error("descriptor {fd} is not a datagram socket")]
    NotDatagram {
        /// The descriptor number.
        fd: RawFd,
    },
    /// A socket of a family other than Unix-domain, IPv4 or IPv6, or of a type other than
    /// stream, datagram or (Unix) SEQPACKET.
    #[error("descriptor {fd} is a {what} socket, which msgsock does not support")]
    Unsupported {
        /// The descriptor number.
        fd: RawFd,
        /// Its family or type.
        what: String,
    },
    /// An environment variable the protocol needs is not set.
    #[error("{var} is not set")]
    MissingVar {
        /// The variable.
        var: &'static str,
    },
    /// An environment variable does not hold what the protocol says.
    #[error("{var}={value:?} is invalid: {why}")]
    InvalidVar {
        /// The variable.
        var: &'static str,
        /// Its value, lossily decoded.
        value: String,
        /// What it should hold.
        why: &'static str,
    },
    /// `LISTEN_PID` names another process: the sockets were passed to a parent, not to us.
    #[error("LISTEN_PID={listen_pid} names another process (this is {pid})")]
    OtherProcess {
        /// The pid in `LISTEN_PID`.
        listen_pid: u32,
        /// This process's pid.
        pid: u32,
    },
    /// No passed socket has the name `systemd:NAME` asked for.
    #[error("no socket named {name:?} was passed (passed: {})", names.join(", "))]
    NoSuchName {
        /// The name asked for.
        name: String,
        /// The names in `LISTEN_FDNAMES`.
        names: Vec<String>,
    },
    /// `systemd:` asked for the first socket, and none was passed (`LISTEN_FDS=0`).
    #[error("no sockets were passed (LISTEN_FDS=0)")]
    NonePassed,
}

impl InheritError {
    /// The [`io::ErrorKind`] that fits: `NotFound` for what was not passed, `InvalidInput`
    /// for a socket or variable that is not what the call needs.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            InheritError::NotOpen { .. }
            | InheritError::MissingVar { .. }
            | InheritError::NoSuchName { .. }
            | InheritError::NonePassed => io::ErrorKind::NotFound,
            InheritError::AlreadyTaken { .. } => io::ErrorKind::AlreadyExists,
            _ => io::ErrorKind::InvalidInput,
        }
    }
}

/// Every descriptor number this process adopted, never removed: once adopted, a number could
/// be closed and reused by an unrelated open, which must not be adopted in its place.
static ADOPTED: Mutex<BTreeSet<RawFd>> = Mutex::new(BTreeSet::new());

/// Takes ownership of the inherited socket on descriptor `fd`, after `check` approved it, and
/// makes it close-on-exec so that children do not inherit it in turn. The only function that
/// turns a number into an [`OwnedFd`].
///
/// # Errors
///
/// [`InheritError`] as its docs say, or whatever `check` returns; the descriptor is left as it
/// was (not adopted) on every error.
#[allow(unsafe_code)]
pub(crate) fn adopt(
    fd: RawFd,
    check: impl FnOnce(BorrowedFd<'_>) -> Result<()>,
) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(InheritError::NotOpen { fd }.into());
    }
    let mut adopted = ADOPTED.lock().unwrap_or_else(PoisonError::into_inner);
    if adopted.contains(&fd) {
        return Err(InheritError::AlreadyTaken { fd }.into());
    }
    // SAFETY: the borrow ends with this function and is only given to fstat(2), fcntl(2) and
    // getsockopt(2), which do not close it; if `fd` is not open they fail with EBADF, which is
    // reported, and no memory is touched.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let is_socket = sys::is_socket(borrowed).map_err(|e| {
        if sys::is_bad_fd(&e) {
            InheritError::NotOpen { fd }.into()
        } else {
            Error::Io(e)
        }
    })?;
    if !is_socket {
        return Err(InheritError::NotASocket { fd }.into());
    }
    if sys::is_cloexec(borrowed)? {
        return Err(InheritError::NotInherited { fd }.into());
    }
    check(borrowed)?;
    // SAFETY: `fd` is an open socket that was not close-on-exec. Everything std and msgsock
    // open is close-on-exec, so it was inherited through exec, and nothing in this process
    // owns it: no std or msgsock object holds it, and `ADOPTED` (held locked) says no earlier
    // adoption took it. From here on `ADOPTED` keeps any later call from taking it again.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    adopted.insert(fd);
    sys::set_cloexec(owned.as_fd())?;
    Ok(owned)
}

/// What an inherited socket is, from its family, `SO_TYPE` and `SO_ACCEPTCONN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Listener {
        unix: bool,
    },
    Stream {
        unix: bool,
    },
    Datagram {
        unix: bool,
    },
    /// A Unix `SOCK_SEQPACKET` socket, listening or connected.
    Packet {
        listening: bool,
    },
}

fn kind(fd: BorrowedFd<'_>, number: RawFd) -> Result<Kind> {
    let unsupported = |what| Error::from(InheritError::Unsupported { fd: number, what });
    let unix = sys::socket_family(fd)?.map_err(unsupported)? == Family::Unix;
    Ok(match sys::socket_type(fd)?.map_err(unsupported)? {
        SocketType::Stream if sys::is_listening(fd)? => Kind::Listener { unix },
        SocketType::Stream => Kind::Stream { unix },
        SocketType::Datagram => Kind::Datagram { unix },
        SocketType::SeqPacket if unix => Kind::Packet {
            listening: sys::is_listening(fd)?,
        },
        // An internet SEQPACKET socket (SCTP) carries no messages of ours.
        SocketType::SeqPacket => return Err(unsupported("SeqPacket".into())),
    })
}

/// The inherited socket `endpoint` names, once `want` approved its kind, in blocking mode.
fn take(
    endpoint: &Endpoint,
    want: impl Fn(Kind, BorrowedFd<'_>, RawFd) -> Result<()>,
) -> Result<(OwnedFd, Kind)> {
    let mut found = None;
    let mut check = |fd: BorrowedFd<'_>, number: RawFd| {
        let k = kind(fd, number)?;
        want(k, fd, number)?;
        found = Some(k);
        Ok(())
    };
    let fd = match endpoint {
        Endpoint::Fd(number) => adopt(*number, |fd| check(fd, *number))?,
        Endpoint::Systemd(name) => systemd_take(name, check)?,
        _ => unreachable!("only fd: and systemd: endpoints are inherited"),
    };
    // On Apple targets, the crate's no-SIGPIPE promise needs the option on the socket itself.
    sys::no_sigpipe(fd.as_fd())?;
    // The mode is the open file's, so a parent may have left it non-blocking; the blocking
    // types wait in their calls (the tokio ones set it back).
    sys::set_blocking(fd.as_fd())?;
    Ok((fd, found.expect("the check ran")))
}

/// Adopts the listening socket an `fd:N` or `systemd:` endpoint names; no socket file is made
/// or removed.
pub(crate) fn bind(endpoint: &Endpoint) -> Result<AnyListener> {
    let (fd, kind) = take(endpoint, |k, _, fd| match k {
        Kind::Listener { .. } | Kind::Packet { listening: true } => Ok(()),
        _ => Err(InheritError::NotListening { fd }.into()),
    })?;
    Ok(match kind {
        Kind::Listener { unix: true } => AnyListener::Unix(UnixListener::from(fd)),
        Kind::Packet { .. } => AnyListener::Seqpacket(UnixSeqpacketListener::from(fd)),
        _ => AnyListener::Tcp(TcpListener::from(std::net::TcpListener::from(fd))),
    })
}

/// Adopts the datagram socket an `fd:N` or `systemd:` endpoint names.
pub(crate) fn bind_datagram(endpoint: &Endpoint) -> Result<AnyDatagram> {
    let (fd, kind) = take(endpoint, |k, _, fd| match k {
        Kind::Datagram { .. } => Ok(()),
        _ => Err(InheritError::NotDatagram { fd }.into()),
    })?;
    datagram(fd, kind)
}

fn datagram(fd: OwnedFd, kind: Kind) -> Result<AnyDatagram> {
    Ok(match kind {
        Kind::Datagram { unix: true } => AnyDatagram::Unix(UnixDatagram::from(fd)),
        _ => AnyDatagram::Udp(UdpSocket::from(std::net::UdpSocket::from(fd))),
    })
}

/// What `connect` needs: a socket connected to a peer, not a listener.
fn connected(k: Kind, socket: BorrowedFd<'_>, fd: RawFd) -> Result<()> {
    match k {
        Kind::Listener { .. } | Kind::Packet { listening: true } => {
            Err(InheritError::Listening { fd }.into())
        }
        _ if !sys::is_connected(socket)? => Err(InheritError::NotConnected { fd }.into()),
        _ => Ok(()),
    }
}

fn stream(fd: OwnedFd, unix: bool) -> Connection<AnyStream> {
    Connection::new(if unix {
        AnyStream::Unix(UnixStream::from(std::os::unix::net::UnixStream::from(fd)))
    } else {
        AnyStream::Tcp(TcpStream::from(std::net::TcpStream::from(fd)))
    })
}

/// Wraps the connected socket an `fd:N` or `systemd:` endpoint names: a stream as a framed
/// connection, a datagram socket as a datagram connection.
pub(crate) fn connect(endpoint: &Endpoint) -> Result<AnyConnection> {
    let (fd, kind) = take(endpoint, connected)?;
    Ok(match kind {
        Kind::Stream { unix } => stream(fd, unix).into(),
        Kind::Packet { .. } => UnixSeqpacket::from(fd).into(),
        _ => datagram(fd, kind)?.into(),
    })
}

/// As [`connect`], for a connected stream only.
pub(crate) fn connect_stream(endpoint: &Endpoint) -> Result<Connection<AnyStream>> {
    let (fd, kind) = take(endpoint, |k, socket, fd| {
        connected(k, socket, fd)?;
        match k {
            Kind::Stream { .. } => Ok(()),
            _ => Err(crate::any::wrong_type(endpoint, crate::SocketType::Stream)),
        }
    })?;
    Ok(stream(fd, matches!(kind, Kind::Stream { unix: true })))
}

/// `sd_listen_fds(3)`: passed descriptors start at 3.
const SD_LISTEN_FDS_START: RawFd = 3;
/// More sockets than any service is given, so a garbled `LISTEN_FDS` cannot make us walk
/// millions of descriptors.
const MAX_LISTEN_FDS: usize = 4096;

/// The sockets systemd passed, read once per process.
#[derive(Debug)]
struct Passed {
    names: Vec<String>,
    /// Each passed descriptor, adopted; `None` once handed out; the error if it could not be.
    fds: Vec<Option<Result<OwnedFd, InheritError>>>,
}

static PASSED: OnceLock<std::result::Result<Mutex<Passed>, InheritError>> = OnceLock::new();

/// An environment variable, taken out of the environment.
pub(crate) fn take_var(var: &'static str) -> Option<String> {
    let value = std::env::var_os(var)?;
    // Edition 2021's remove_var is safe, but not thread-safe against C code calling getenv(3)
    // on another thread: hence the docs of `systemd:` and `child::connection` ask for a call
    // early in main.
    std::env::remove_var(var);
    Some(value.to_string_lossy().into_owned())
}

/// A decimal number with digits only, as the variables hold.
pub(crate) fn parse_number<T: std::str::FromStr>(
    var: &'static str,
    value: &str,
    why: &'static str,
) -> std::result::Result<T, InheritError> {
    let invalid = || InheritError::InvalidVar {
        var,
        value: value.into(),
        why,
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    value.parse().map_err(|_| invalid())
}

/// Reads, checks and clears `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`, and adopts every
/// passed descriptor (making each close-on-exec), as `sd_listen_fds_with_names(3)` with
/// `unset_environment` does.
fn read_passed() -> std::result::Result<Passed, InheritError> {
    let pid = take_var("LISTEN_PID");
    let fds = take_var("LISTEN_FDS");
    let names = take_var("LISTEN_FDNAMES");
    let pid = pid.ok_or(InheritError::MissingVar { var: "LISTEN_PID" })?;
    let listen_pid: u32 = parse_number("LISTEN_PID", &pid, "expected a process id")?;
    if listen_pid != std::process::id() {
        return Err(InheritError::OtherProcess {
            listen_pid,
            pid: std::process::id(),
        });
    }
    let fds = fds.ok_or(InheritError::MissingVar { var: "LISTEN_FDS" })?;
    let count: usize = parse_number("LISTEN_FDS", &fds, "expected a number of descriptors")?;
    if count > MAX_LISTEN_FDS {
        return Err(InheritError::InvalidVar {
            var: "LISTEN_FDS",
            value: fds,
            why: "more descriptors than msgsock adopts (4096)",
        });
    }
    // Without LISTEN_FDNAMES every socket is named "unknown", as sd_listen_fds_with_names does.
    let names: Vec<String> = match names {
        Some(names) if count > 0 => names.split(':').map(String::from).collect(),
        Some(_) => Vec::new(),
        None => vec!["unknown".into(); count],
    };
    if names.len() != count {
        return Err(InheritError::InvalidVar {
            var: "LISTEN_FDNAMES",
            value: names.join(":"),
            why: "expected one name per descriptor in LISTEN_FDS",
        });
    }
    let fds = (0..count)
        .map(|i| {
            let fd = SD_LISTEN_FDS_START + i as RawFd;
            Some(adopt(fd, |_| Ok(())).map_err(|e| match e {
                Error::Inherit(e) => e,
                other => InheritError::Unsupported {
                    fd,
                    what: format!("unreadable ({other})"),
                },
            }))
        })
        .collect();
    Ok(Passed { names, fds })
}

/// Hands out the first passed socket named `name` (of any name for `""`) that `check` approves
/// and that was not handed out before: a `.socket` unit with several listen lines passes them
/// all under its one name, so each call takes the next. A socket `check` refuses stays for a
/// call that wants it.
fn systemd_take(
    name: &str,
    mut check: impl FnMut(BorrowedFd<'_>, RawFd) -> Result<()>,
) -> Result<OwnedFd> {
    let passed = PASSED
        .get_or_init(|| read_passed().map(Mutex::new))
        .as_ref()
        .map_err(|e| Error::Inherit(e.clone()))?;
    let mut passed = passed.lock().unwrap_or_else(PoisonError::into_inner);
    let Passed { names, fds } = &mut *passed;
    if fds.is_empty() && name.is_empty() {
        return Err(InheritError::NonePassed.into());
    }
    // The first refusal is the error if no socket of the name will do.
    let mut refused = None;
    let mut last_taken = None;
    for (index, slot) in fds.iter_mut().enumerate() {
        if !name.is_empty() && names[index] != name {
            continue;
        }
        let number = SD_LISTEN_FDS_START + index as RawFd;
        match slot {
            None => last_taken = Some(number),
            Some(Err(e)) => {
                refused.get_or_insert_with(|| Error::from(e.clone()));
            }
            Some(Ok(fd)) => match check(fd.as_fd(), number) {
                Ok(()) => return Ok(slot.take().and_then(Result::ok).expect("a socket")),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            },
        }
    }
    Err(match (refused, last_taken) {
        (Some(e), _) => e,
        (None, Some(fd)) => InheritError::AlreadyTaken { fd }.into(),
        (None, None) => InheritError::NoSuchName {
            name: name.into(),
            names: names.clone(),
        }
        .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds the crate serves, told apart by family, type and `SO_ACCEPTCONN`.
    #[test]
    fn kind_reads_family_type_and_listening() -> Result<()> {
        let (a, _b) = std::os::unix::net::UnixStream::pair()?;
        assert_eq!(kind(a.as_fd(), 0)?, Kind::Stream { unix: true });
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        assert_eq!(kind(udp.as_fd(), 0)?, Kind::Datagram { unix: false });
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        assert_eq!(kind(tcp.as_fd(), 0)?, Kind::Listener { unix: false });
        let (p, _q) = sys::unix_pair(SocketType::SeqPacket)?;
        assert_eq!(kind(p.as_fd(), 0)?, Kind::Packet { listening: false });
        Ok(())
    }

    /// A family the crate does not serve is refused by name.
    #[cfg(target_os = "linux")]
    #[test]
    fn kind_names_an_unsupported_family() -> Result<()> {
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
        let netlink = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(io::Error::from)?;
        let err = kind(netlink.as_fd(), 7).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Inherit(InheritError::Unsupported { fd: 7, what }) if what == "Netlink"
            ),
            "{err:?}"
        );
        Ok(())
    }
}
