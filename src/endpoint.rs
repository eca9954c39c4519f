//! Endpoints as strings a person can type: `unix:/run/app.sock`, `tcp:127.0.0.1:8008`.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Family, ParseEndpointError, SocketType};

/// Where a server listens or a client connects, chosen at run time.
///
/// `FromStr` and `Display` round-trip, for every endpoint a string can name: a path or an
/// abstract name that is not UTF-8 (which [`bind_abstract`](crate::UnixListener::bind_abstract)
/// and a listener's `local_endpoint` can hold) is written lossily, as [`Path::display`] writes
/// it, and its text names another socket; reach it through the `Endpoint` value instead.
///
/// | string | meaning |
/// |---|---|
/// | `unix:/run/app.sock`, `unix:rel/app.sock` | Unix-domain stream socket at that path |
/// | `tcp:127.0.0.1:8008`, `tcp:[::1]:9000` | TCP on that IP address and port (`0` picks a free port) |
/// | `udp:127.0.0.1:8008`, `udp:[::1]:9000` | UDP on that IP address and port (`0` picks a free port) |
/// | `unixgram:/run/app.sock` | Unix-domain datagram socket at that path |
/// | `unixpacket:/run/app.sock` | Unix-domain `SOCK_SEQPACKET` socket at that path: a connection, one message per packet |
/// | `unix:@app`, `unixgram:@app`, `unixpacket:@app` | Unix-domain socket with the abstract name `app` (Linux); `unix:./@app` is a file |
/// | `tcp:localhost:8008`, `udp:db.example:53` | a host name, resolved when connecting |
/// | `fd:3` | a socket this process inherited on descriptor 3, connected or listening |
/// | `systemd:`, `systemd:web` | a socket passed by systemd socket activation: the first not yet taken, or the first of those named `web` |
///
/// A host name is kept as written ([`TcpHost`](Endpoint::TcpHost), [`UdpHost`](Endpoint::UdpHost))
/// and resolved only by `connect`, which tries every address the name resolves to in order, as
/// std's `TcpStream::connect` does. Binding stays exact: a listener binds the IP address it is
/// given, never a name (a name such as `localhost` may stand for several addresses, or for a
/// non-loopback one), so `bind` refuses a host name with [`Error::Bind`](crate::Error::Bind).
///
/// `fd:N` and `systemd:` name sockets that already exist: `bind` adopts a listening one and
/// `connect` a connected one, of any family and type, in blocking mode whatever mode it was
/// passed in; see [`Inherited`](crate::InheritError) for the checks. Several sockets may share
/// a name (systemd gives every socket of one `.socket` unit the unit's name): each `systemd:web`
/// takes the first of them that fits the call (a listener for `bind`, say) and was not taken
/// before. Their [`socket_type`](Self::socket_type) and [`family`](Self::family) are
/// known only once the socket is looked at.
///
/// # Examples
///
/// ```
/// use msgsock::Endpoint;
///
/// let ep: Endpoint = "tcp:[::1]:9000".parse()?;
/// assert_eq!(ep.as_inet().unwrap().port(), 9000);
/// assert_eq!(ep.to_string(), "tcp:[::1]:9000");
///
/// let ep: Endpoint = "unix:/run/app.sock".parse()?;
/// assert_eq!(ep.as_unix_path().unwrap(), std::path::Path::new("/run/app.sock"));
///
/// let ep: Endpoint = "tcp:localhost:8008".parse()?;
/// assert_eq!(ep.as_host().unwrap().host(), "localhost");
/// assert_eq!(ep.to_string(), "tcp:localhost:8008");
///
/// assert!("tcp:127.0.0.1:65536".parse::<Endpoint>().is_err());
/// # Ok::<(), msgsock::ParseEndpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A Unix-domain stream socket at a filesystem path.
    Unix(PathBuf),
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A UDP socket address.
    Udp(SocketAddr),
    /// A Unix-domain datagram socket at a filesystem path.
    UnixDatagram(PathBuf),
    /// A TCP host name and port, resolved when connecting.
    TcpHost(HostPort),
    /// A UDP host name and port, resolved when connecting.
    UdpHost(HostPort),
    /// A socket inherited on this descriptor number (`fd:N`).
    Fd(RawFd),
    /// A socket passed by systemd socket activation (`systemd:NAME`), by its name in
    /// `LISTEN_FDNAMES`, the first of that name not taken yet; the empty name is any name
    /// (`systemd:`).
    Systemd(String),
    /// A Unix-domain stream socket with an abstract name (`unix:@NAME`, Linux only): no file,
    /// and no file mode either, so its listener admits only its own uid unless told otherwise
    /// (see [`UnixListener::bind_abstract`](crate::UnixListener::bind_abstract)).
    UnixAbstract(Vec<u8>),
    /// A Unix-domain datagram socket with an abstract name (`unixgram:@NAME`, Linux only).
    UnixDatagramAbstract(Vec<u8>),
    /// A Unix-domain `SOCK_SEQPACKET` socket at a filesystem path (`unixpacket:PATH`): a
    /// connection that keeps message boundaries.
    UnixSeqpacket(PathBuf),
    /// A Unix-domain `SOCK_SEQPACKET` socket with an abstract name (`unixpacket:@NAME`, Linux
    /// only); its listener admits only its own uid unless told otherwise, as `unix:@NAME`'s.
    UnixSeqpacketAbstract(Vec<u8>),
}

/// A host name and a port, as written in `tcp:HOST:PORT` or `udp:HOST:PORT`.
///
/// It is resolved (`getaddrinfo(3)`, through std's [`ToSocketAddrs`]) only when connecting, so
/// the endpoint prints as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// The host name, as written.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl ToSocketAddrs for HostPort {
    type Iter = std::vec::IntoIter<SocketAddr>;

    /// Resolves the name, in the resolver's order.
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (self.host.as_str(), self.port).to_socket_addrs()
    }
}

impl Endpoint {
    /// The socket path, if this is a Unix-domain endpoint (stream, datagram or seqpacket).
    pub fn as_unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(p) | Endpoint::UnixDatagram(p) | Endpoint::UnixSeqpacket(p) => Some(p),
            _ => None,
        }
    }

    /// The abstract name (without the leading `@` or 0 byte), if this is an abstract Unix-domain
    /// endpoint, stream, datagram or seqpacket, as std's `SocketAddr::as_abstract_name`.
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        match self {
            Endpoint::UnixAbstract(n)
            | Endpoint::UnixDatagramAbstract(n)
            | Endpoint::UnixSeqpacketAbstract(n) => Some(n),
            _ => None,
        }
    }

    /// The IP socket address, if this is an internet endpoint (TCP or UDP) with an IP address;
    /// `None` for a host name (see [`as_host`](Self::as_host)).
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp(a) | Endpoint::Udp(a) => Some(*a),
            _ => None,
        }
    }

    /// The host name and port, if this is an internet endpoint written with a host name.
    pub fn as_host(&self) -> Option<&HostPort> {
        match self {
            Endpoint::TcpHost(h) | Endpoint::UdpHost(h) => Some(h),
            _ => None,
        }
    }

    /// The descriptor number, if this is an `fd:N` endpoint.
    pub fn as_fd_number(&self) -> Option<RawFd> {
        match self {
            Endpoint::Fd(fd) => Some(*fd),
            _ => None,
        }
    }

    /// The socket's name, if this is a `systemd:NAME` endpoint; `""` for `systemd:`, which
    /// takes a passed socket of any name.
    pub fn as_systemd_name(&self) -> Option<&str> {
        match self {
            Endpoint::Systemd(name) => Some(name),
            _ => None,
        }
    }

    /// Whether this names a datagram socket (`udp:` or `unixgram:`): one message per datagram,
    /// no connection to accept.
    pub fn is_datagram(&self) -> bool {
        self.socket_type() == SocketType::Datagram
    }

    /// The socket type: stream for `unix:` and `tcp:`, datagram for `udp:` and `unixgram:`,
    /// seqpacket for `unixpacket:`.
    /// An inherited socket (`fd:`, `systemd:`) says stream, its usual type, before it is
    /// adopted: `connect` then picks by the socket's own type (`SO_TYPE`).
    pub fn socket_type(&self) -> SocketType {
        match self {
            Endpoint::Unix(_)
            | Endpoint::UnixAbstract(_)
            | Endpoint::Tcp(_)
            | Endpoint::TcpHost(_)
            | Endpoint::Fd(_)
            | Endpoint::Systemd(_) => SocketType::Stream,
            Endpoint::Udp(_)
            | Endpoint::UdpHost(_)
            | Endpoint::UnixDatagram(_)
            | Endpoint::UnixDatagramAbstract(_) => SocketType::Datagram,
            Endpoint::UnixSeqpacket(_) | Endpoint::UnixSeqpacketAbstract(_) => {
                SocketType::SeqPacket
            }
        }
    }

    /// The address family: Unix-domain for paths, internet for hosts and ports. An inherited
    /// socket (`fd:`, `systemd:`) says Unix-domain, its usual family, before it is adopted.
    pub fn family(&self) -> Family {
        match self {
            Endpoint::Unix(_) | Endpoint::UnixDatagram(_) => Family::Unix,
            Endpoint::UnixAbstract(_) | Endpoint::UnixDatagramAbstract(_) => Family::Unix,
            Endpoint::UnixSeqpacket(_) | Endpoint::UnixSeqpacketAbstract(_) => Family::Unix,
            Endpoint::Fd(_) | Endpoint::Systemd(_) => Family::Unix,
            Endpoint::Tcp(_) | Endpoint::TcpHost(_) | Endpoint::Udp(_) | Endpoint::UdpHost(_) => {
                Family::Inet
            }
        }
    }

    /// The scheme: `"unix"`, `"tcp"`, `"udp"`, `"unixgram"`, `"unixpacket"`, `"fd"` or
    /// `"systemd"`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Unix(_) | Endpoint::UnixAbstract(_) => "unix",
            Endpoint::Tcp(_) | Endpoint::TcpHost(_) => "tcp",
            Endpoint::Udp(_) | Endpoint::UdpHost(_) => "udp",
            Endpoint::UnixDatagram(_) | Endpoint::UnixDatagramAbstract(_) => "unixgram",
            Endpoint::UnixSeqpacket(_) | Endpoint::UnixSeqpacketAbstract(_) => "unixpacket",
            Endpoint::Fd(_) => "fd",
            Endpoint::Systemd(_) => "systemd",
        }
    }
}

impl From<SocketAddr> for Endpoint {
    /// A TCP endpoint.
    fn from(addr: SocketAddr) -> Self {
        Endpoint::Tcp(addr)
    }
}

impl fmt::Display for Endpoint {
    /// Prints the form `FromStr` parses. A relative path that starts with `@` prints as
    /// `./@...`, so that it is not read back as an abstract name. A non-UTF-8 path or abstract
    /// name is printed lossily, and an abstract name with a NUL byte as it is: neither parses
    /// back to the same endpoint. An IPv6 address prints with its zone (`[fe80::1%2]`), which
    /// parses, but without its flow label, as `SocketAddrV6` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) | Endpoint::UnixDatagram(p) | Endpoint::UnixSeqpacket(p) => {
                let dot = if p.as_os_str().as_bytes().starts_with(b"@") {
                    "./"
                } else {
                    ""
                };
                write!(f, "{}:{dot}{}", self.scheme(), p.display())
            }
            // SocketAddr's Display already brackets IPv6 addresses.
            Endpoint::Tcp(a) | Endpoint::Udp(a) => write!(f, "{}:{a}", self.scheme()),
            Endpoint::TcpHost(h) | Endpoint::UdpHost(h) => write!(f, "{}:{h}", self.scheme()),
            Endpoint::UnixAbstract(n)
            | Endpoint::UnixDatagramAbstract(n)
            | Endpoint::UnixSeqpacketAbstract(n) => {
                write!(f, "{}:@{}", self.scheme(), String::from_utf8_lossy(n))
            }
            Endpoint::Fd(fd) => write!(f, "fd:{fd}"),
            Endpoint::Systemd(name) => write!(f, "systemd:{name}"),
        }
    }
}

impl FromStr for Endpoint {
    type Err = ParseEndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| ParseEndpointError::MissingScheme { input: s.into() })?;
        match scheme {
            "unix" => parse_unix(rest, Endpoint::Unix, Endpoint::UnixAbstract),
            "tcp" => parse_inet(rest).map(|a| a.either(Endpoint::Tcp, Endpoint::TcpHost)),
            "udp" => parse_inet(rest).map(|a| a.either(Endpoint::Udp, Endpoint::UdpHost)),
            "unixgram" => parse_unix(rest, Endpoint::UnixDatagram, Endpoint::UnixDatagramAbstract),
            "unixpacket" => parse_unix(
                rest,
                Endpoint::UnixSeqpacket,
                Endpoint::UnixSeqpacketAbstract,
            ),
            "fd" => parse_fd(rest).map(Endpoint::Fd),
            "systemd" => parse_systemd_name(rest).map(|n| Endpoint::Systemd(n.into())),
            _ => Err(ParseEndpointError::UnknownScheme {
                scheme: scheme.into(),
            }),
        }
    }
}

/// The longest abstract socket name: `sun_path` less the 0 byte that marks the abstract
/// namespace (`unix(7)`).
pub const MAX_ABSTRACT_NAME_LEN: usize = 107;

/// Parses what follows `unix:`, `unixgram:` or `unixpacket:`: `@NAME` is an abstract name, anything else a path
/// (so a file named `@NAME` is written `./@NAME`).
fn parse_unix(
    s: &str,
    path: fn(PathBuf) -> Endpoint,
    name: fn(Vec<u8>) -> Endpoint,
) -> Result<Endpoint, ParseEndpointError> {
    match s.strip_prefix('@') {
        Some(n) => parse_abstract_name(n.as_bytes()).map(|n| name(n.to_vec())),
        None => parse_path(s).map(path),
    }
}

/// Checks an abstract name: not empty (the kernel would pick one), no NUL (it would not print
/// as written), and at most [`MAX_ABSTRACT_NAME_LEN`] bytes.
pub(crate) fn parse_abstract_name(n: &[u8]) -> Result<&[u8], ParseEndpointError> {
    if n.is_empty() {
        Err(ParseEndpointError::EmptyPath)
    } else if n.contains(&0) {
        Err(ParseEndpointError::NulInPath)
    } else if n.len() > MAX_ABSTRACT_NAME_LEN {
        Err(ParseEndpointError::AbstractNameTooLong {
            len: n.len(),
            max: MAX_ABSTRACT_NAME_LEN,
        })
    } else {
        Ok(n)
    }
}

pub(crate) fn parse_path(s: &str) -> Result<PathBuf, ParseEndpointError> {
    if s.is_empty() {
        Err(ParseEndpointError::EmptyPath)
    } else if s.contains('\0') {
        Err(ParseEndpointError::NulInPath)
    } else {
        Ok(PathBuf::from(s))
    }
}

/// Parses a descriptor number: decimal digits only, in `RawFd`'s range.
pub(crate) fn parse_fd(s: &str) -> Result<RawFd, ParseEndpointError> {
    // RawFd::from_str accepts a sign; a descriptor number is digits only.
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse::<RawFd>().ok())
        .flatten()
        .ok_or_else(|| ParseEndpointError::InvalidFd { fd: s.into() })
}

/// The longest name systemd gives a passed socket (`FileDescriptorName=`, see
/// `fdname_is_valid()` in systemd's `src/basic/fd-util.c`).
const MAX_SYSTEMD_NAME_LEN: usize = 255;

/// Checks a `systemd:NAME` name as systemd does: printable ASCII without `:` (the separator
/// of `LISTEN_FDNAMES`), at most 255 bytes. Empty means the first socket.
pub(crate) fn parse_systemd_name(s: &str) -> Result<&str, ParseEndpointError> {
    if s.len() <= MAX_SYSTEMD_NAME_LEN && s.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        Ok(s)
    } else {
        Err(ParseEndpointError::InvalidName { name: s.into() })
    }
}

/// What `HOST:PORT` holds: an IP address, or a name to resolve later.
pub(crate) enum InetAddr {
    Ip(SocketAddr),
    Name(HostPort),
}

impl InetAddr {
    fn either(self, ip: fn(SocketAddr) -> Endpoint, name: fn(HostPort) -> Endpoint) -> Endpoint {
        match self {
            InetAddr::Ip(a) => ip(a),
            InetAddr::Name(h) => name(h),
        }
    }
}

/// Whether `host` can be a DNS name (RFC 1123 labels, and `_` as resolvers accept it), and is
/// not a malformed IPv4 address such as `256.0.0.1`, which no resolver should be asked about.
fn is_host_name(host: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    name.len() <= 253
        && name.split('.').all(label_ok)
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Parses `HOST:PORT` with an IPv4 host, a bracketed IPv6 host, or a host name.
pub(crate) fn parse_inet(s: &str) -> Result<InetAddr, ParseEndpointError> {
    let (host, port) = if let Some(after) = s.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or_else(|| ParseEndpointError::InvalidHost { host: s.into() })?;
        let port = tail
            .strip_prefix(':')
            .ok_or_else(|| ParseEndpointError::MissingPort { input: s.into() })?;
        // A zone (`%2`), as `SocketAddrV6`'s `Display` prints one: its number only, since an
        // interface's name would need a system call to look up.
        let (addr, zone) = host.split_once('%').unwrap_or((host, "0"));
        let zone = Some(zone)
            .filter(|z| !z.is_empty() && z.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|z| z.parse::<u32>().ok());
        let ip = addr.parse::<std::net::Ipv6Addr>().ok();
        let Some((ip, zone)) = ip.zip(zone) else {
            return Err(ParseEndpointError::InvalidHost { host: host.into() });
        };
        let addr = std::net::SocketAddrV6::new(ip, 0, 0, zone);
        (Some(SocketAddr::V6(addr)), port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| ParseEndpointError::MissingPort { input: s.into() })?;
        if host.is_empty() {
            return Err(ParseEndpointError::MissingHost { input: s.into() });
        }
        // An unbracketed IPv6 address is ambiguous (`::1:80`), so only IPv4 is accepted here.
        match host.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => (Some(SocketAddr::new(IpAddr::V4(ip), 0)), port),
            Err(_) if is_host_name(host) => (None, port),
            Err(_) => return Err(ParseEndpointError::InvalidHost { host: host.into() }),
        }
    };
    if port.is_empty() {
        return Err(ParseEndpointError::MissingPort { input: s.into() });
    }
    // u16::from_str accepts a leading '+'; a port is digits only.
    let port_num = port
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| port.parse::<u16>().ok())
        .flatten()
        .ok_or_else(|| ParseEndpointError::InvalidPort { port: port.into() })?;
    Ok(match host {
        Some(mut addr) => {
            addr.set_port(port_num);
            InetAddr::Ip(addr)
        }
        None => {
            // The host is the part before the port's colon.
            let name = &s[..s.len() - port.len() - 1];
            InetAddr::Name(HostPort {
                host: name.into(),
                port: port_num,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseEndpointError as E;

    fn parse(s: &str) -> Result<Endpoint, ParseEndpointError> {
        s.parse()
    }

    #[test]
    fn round_trips() {
        for s in [
            "unix:/run/app.sock",
            "unix:relative/dir/app.sock",
            "unix:app.sock",
            "tcp:127.0.0.1:8008",
            "tcp:0.0.0.0:0",
            "tcp:[::1]:9000",
            "tcp:[fe80::1]:65535",
            "tcp:[fe80::1%2]:80",
            "udp:[fe80::1%4294967295]:0",
            "udp:127.0.0.1:0",
            "udp:[::1]:9000",
            "unixgram:/run/app.sock",
            "unixgram:rel.sock",
            "tcp:localhost:8008",
            "tcp:localhost.:1",
            "udp:localhost:0",
            "tcp:db-1.internal.example:5432",
            "tcp:_srv.example:1",
            "tcp:1host:80",
            "fd:0",
            "fd:3",
            "fd:2147483647",
            "systemd:",
            "systemd:web",
            "systemd:my-app.socket",
            "unix:@app",
            "unixgram:@app",
            "unix:./@app",
            "unix:@with space/and:colon",
            "unixpacket:/run/app.sock",
            "unixpacket:rel.sock",
            "unixpacket:@app",
            "unixpacket:./@app",
        ] {
            let ep = parse(s).unwrap();
            assert_eq!(ep.to_string(), s);
            assert_eq!(parse(&ep.to_string()).unwrap(), ep);
        }
    }

    /// A name that is not UTF-8 has no string of its own: `Display` writes it lossily, and the
    /// text parses to another name, as the type's docs say.
    #[test]
    fn a_name_that_is_not_utf8_is_displayed_lossily() {
        let ep = Endpoint::UnixAbstract(vec![b'a', 0xff]);
        assert_eq!(ep.to_string(), "unix:@a\u{fffd}");
        assert_ne!(parse(&ep.to_string()).unwrap(), ep);
    }

    /// An IPv6 zone parses as `SocketAddrV6` prints it, by number; anything else in its place
    /// is an invalid host.
    #[test]
    fn ipv6_zones_are_numbers() {
        let ep = parse("tcp:[fe80::1%2]:80").unwrap();
        let want = std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 80, 0, 2);
        assert_eq!(ep, Endpoint::Tcp(want.into()));
        assert_eq!(Endpoint::Tcp(want.into()).to_string(), "tcp:[fe80::1%2]:80");
        for bad in [
            "[fe80::1%]:80",
            "[fe80::1%eth0]:80",
            "[fe80::1%-1]:80",
            "[fe80::1%4294967296]:80",
            "[fe80::1%2%3]:80",
        ] {
            assert!(
                matches!(
                    parse(&format!("tcp:{bad}")),
                    Err(ParseEndpointError::InvalidHost { .. })
                ),
                "{bad}"
            );
        }
    }

    /// A relative path that starts with `@` would print as an abstract name: it prints as
    /// `./@...`, which names the same file.
    #[test]
    fn a_path_starting_with_at_prints_as_a_path() {
        let made: [fn(PathBuf) -> Endpoint; 3] = [
            Endpoint::Unix,
            Endpoint::UnixDatagram,
            Endpoint::UnixSeqpacket,
        ];
        for make in made {
            for name in ["@app", "@", "@dir/app.sock"] {
                let ep = make(name.into());
                let shown = ep.to_string();
                assert_eq!(shown, format!("{}:./{name}", ep.scheme()));
                let parsed = parse(&shown).unwrap();
                assert_eq!(parsed, make(Path::new(".").join(name)), "{shown}");
            }
        }
    }

    #[test]
    fn accessors() {
        let ep = parse("unix:/a/b.sock").unwrap();
        assert_eq!(ep.as_unix_path(), Some(Path::new("/a/b.sock")));
        assert_eq!(ep.as_inet(), None);
        assert_eq!(ep.scheme(), "unix");
        let ep = parse("tcp:[::1]:7").unwrap();
        assert_eq!(ep.as_inet(), Some("[::1]:7".parse().unwrap()));
        assert_eq!(ep.as_unix_path(), None);
        assert_eq!(ep.scheme(), "tcp");
        assert!(!ep.is_datagram());
        let ep = parse("udp:127.0.0.1:9").unwrap();
        assert_eq!(ep.as_inet(), Some("127.0.0.1:9".parse().unwrap()));
        assert!(ep.is_datagram());
        assert_eq!(ep.scheme(), "udp");
        let ep = parse("unixgram:/x.sock").unwrap();
        assert_eq!(ep.as_unix_path(), Some(Path::new("/x.sock")));
        assert!(ep.is_datagram());
        assert_eq!(ep.scheme(), "unixgram");
        let addr: SocketAddr = "127.0.0.1:5".parse().unwrap();
        assert_eq!(Endpoint::from(addr), Endpoint::Tcp(addr));
        let ep = parse("tcp:localhost:7").unwrap();
        let host = ep.as_host().unwrap();
        assert_eq!((host.host(), host.port()), ("localhost", 7));
        assert_eq!(ep.as_inet(), None);
        assert_eq!((ep.scheme(), ep.socket_type()), ("tcp", SocketType::Stream));
        let ep = parse("udp:localhost:7").unwrap();
        assert!(ep.is_datagram());
        assert_eq!((ep.scheme(), ep.family()), ("udp", Family::Inet));
        assert_eq!(parse("unixgram:/x").unwrap().family(), Family::Unix);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&str, ParseEndpointError)] = &[
            ("", E::MissingScheme { input: "".into() }),
            (
                "/run/app.sock",
                E::MissingScheme {
                    input: "/run/app.sock".into(),
                },
            ),
            (
                "http:x",
                E::UnknownScheme {
                    scheme: "http".into(),
                },
            ),
            (
                "UNIX:/x",
                E::UnknownScheme {
                    scheme: "UNIX".into(),
                },
            ),
            ("unix:", E::EmptyPath),
            ("unix:a\0b", E::NulInPath),
            ("tcp:", E::MissingPort { input: "".into() }),
            (
                "tcp:127.0.0.1",
                E::MissingPort {
                    input: "127.0.0.1".into(),
                },
            ),
            (
                "tcp:127.0.0.1:",
                E::MissingPort {
                    input: "127.0.0.1:".into(),
                },
            ),
            (
                "tcp::80",
                E::MissingHost {
                    input: ":80".into(),
                },
            ),
            (
                "tcp:local host:80",
                E::InvalidHost {
                    host: "local host".into(),
                },
            ),
            (
                "tcp:-bad.example:80",
                E::InvalidHost {
                    host: "-bad.example".into(),
                },
            ),
            (
                "tcp:a..b:80",
                E::InvalidHost {
                    host: "a..b".into(),
                },
            ),
            ("udp:x/y:80", E::InvalidHost { host: "x/y".into() }),
            (
                "tcp:localhost:65536",
                E::InvalidPort {
                    port: "65536".into(),
                },
            ),
            (
                "tcp:1.2.3:80",
                E::InvalidHost {
                    host: "1.2.3".into(),
                },
            ),
            (
                "tcp:256.0.0.1:80",
                E::InvalidHost {
                    host: "256.0.0.1".into(),
                },
            ),
            ("tcp:::1:80", E::InvalidHost { host: "::1".into() }),
            (
                "tcp:[::1:80",
                E::InvalidHost {
                    host: "[::1:80".into(),
                },
            ),
            (
                "tcp:[::1]",
                E::MissingPort {
                    input: "[::1]".into(),
                },
            ),
            (
                "tcp:[::1]:",
                E::MissingPort {
                    input: "[::1]:".into(),
                },
            ),
            ("tcp:[zz]:80", E::InvalidHost { host: "zz".into() }),
            (
                "tcp:127.0.0.1:65536",
                E::InvalidPort {
                    port: "65536".into(),
                },
            ),
            (
                "tcp:127.0.0.1:99999999999",
                E::InvalidPort {
                    port: "99999999999".into(),
                },
            ),
            ("tcp:127.0.0.1:-1", E::InvalidPort { port: "-1".into() }),
            ("tcp:127.0.0.1:+80", E::InvalidPort { port: "+80".into() }),
            (
                "tcp:127.0.0.1:http",
                E::InvalidPort {
                    port: "http".into(),
                },
            ),
            (
                "tcp:[::1]:70000",
                E::InvalidPort {
                    port: "70000".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(input).unwrap_err(), want, "input {input:?}");
        }
    }

    #[test]
    fn inherited_endpoints() {
        assert_eq!(parse("fd:3").unwrap(), Endpoint::Fd(3));
        assert_eq!(parse("fd:3").unwrap().as_fd_number(), Some(3));
        assert_eq!(parse("fd:3").unwrap().scheme(), "fd");
        assert_eq!(parse("systemd:").unwrap().as_systemd_name(), Some(""));
        assert_eq!(parse("systemd:web").unwrap().as_systemd_name(), Some("web"));
        assert_eq!(parse("systemd:web").unwrap().scheme(), "systemd");
        assert_eq!(parse("unix:/x").unwrap().as_fd_number(), None);
        for bad in [
            "",
            "x",
            "+3",
            "-1",
            "3 ",
            "0x3",
            "2147483648",
            "99999999999",
        ] {
            assert_eq!(
                parse(&format!("fd:{bad}")).unwrap_err(),
                E::InvalidFd { fd: bad.into() },
                "fd:{bad}"
            );
        }
        let long = "n".repeat(256);
        for bad in ["a:b", "a\0b", long.as_str(), "tab\there", "é"] {
            assert_eq!(
                parse(&format!("systemd:{bad}")).unwrap_err(),
                E::InvalidName { name: bad.into() },
                "systemd:{bad:?}"
            );
        }
        assert!(parse(&format!("systemd:{}", "n".repeat(255))).is_ok());
    }

    #[test]
    fn error_messages_are_readable() {
        let msg = parse("tcp:127.0.0.1:65536").unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid port \"65536\": expected a number from 0 to 65535"
        );
        let msg = parse("ftp:x").unwrap_err().to_string();
        assert!(msg.contains("ftp"), "{msg}");
    }

    #[test]
    fn seqpacket_endpoints() {
        let ep = parse("unixpacket:/x.sock").unwrap();
        assert_eq!(ep, Endpoint::UnixSeqpacket("/x.sock".into()));
        assert_eq!(ep.as_unix_path(), Some(Path::new("/x.sock")));
        assert_eq!(
            (ep.scheme(), ep.socket_type(), ep.family()),
            ("unixpacket", SocketType::SeqPacket, Family::Unix)
        );
        // A connection, not a datagram socket: there is nothing to `recv_from`.
        assert!(!ep.is_datagram());
        let ep = parse("unixpacket:@app").unwrap();
        assert_eq!(ep, Endpoint::UnixSeqpacketAbstract(b"app".to_vec()));
        assert_eq!(ep.as_abstract_name(), Some(&b"app"[..]));
        assert_eq!(ep.as_unix_path(), None);
        assert_eq!(ep.socket_type(), SocketType::SeqPacket);
        assert_eq!(parse("unixpacket:").unwrap_err(), E::EmptyPath);
        assert_eq!(parse("unixpacket:a\0b").unwrap_err(), E::NulInPath);
    }

    #[test]
    fn abstract_names() {
        let ep = parse("unix:@app").unwrap();
        assert_eq!(ep, Endpoint::UnixAbstract(b"app".to_vec()));
        assert_eq!(ep.as_abstract_name(), Some(&b"app"[..]));
        assert_eq!(ep.as_unix_path(), None);
        assert_eq!(
            (ep.scheme(), ep.socket_type()),
            ("unix", SocketType::Stream)
        );
        assert_eq!(ep.family(), Family::Unix);
        let ep = parse("unixgram:@app").unwrap();
        assert_eq!(ep, Endpoint::UnixDatagramAbstract(b"app".to_vec()));
        assert!(ep.is_datagram());
        // A file literally named `@app` is a path.
        let ep = parse("unix:./@app").unwrap();
        assert_eq!(ep.as_unix_path(), Some(Path::new("./@app")));
        assert_eq!(ep.as_abstract_name(), None);
        let longest = "n".repeat(MAX_ABSTRACT_NAME_LEN);
        assert!(parse(&format!("unix:@{longest}")).is_ok());
        for scheme in ["unix", "unixgram", "unixpacket"] {
            assert_eq!(
                parse(&format!("{scheme}:@{longest}n")).unwrap_err(),
                E::AbstractNameTooLong { len: 108, max: 107 }
            );
            assert_eq!(parse(&format!("{scheme}:@")).unwrap_err(), E::EmptyPath);
            assert_eq!(parse(&format!("{scheme}:@a\0b")).unwrap_err(), E::NulInPath);
        }
    }
}
