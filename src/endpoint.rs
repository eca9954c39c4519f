//! Endpoints as strings a person can type: `unix:/run/app.sock`, `tcp:127.0.0.1:8008`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::ParseEndpointError;

/// Where a server listens or a client connects, chosen at run time.
///
/// `FromStr` and `Display` round-trip:
///
/// | string | meaning |
/// |---|---|
/// | `unix:/run/app.sock`, `unix:rel/app.sock` | Unix-domain stream socket at that path |
/// | `tcp:127.0.0.1:8008`, `tcp:[::1]:9000` | TCP on that IP address and port (`0` picks a free port) |
/// | `udp:127.0.0.1:8008`, `udp:[::1]:9000` | UDP on that IP address and port (`0` picks a free port) |
/// | `unixgram:/run/app.sock` | Unix-domain datagram socket at that path |
///
/// The TCP and UDP host must be an IP address: msgsock binds exactly what it is given, and a name such as
/// `localhost` may resolve to several addresses.
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
}

impl Endpoint {
    /// The socket path, if this is a Unix-domain endpoint (stream or datagram).
    pub fn as_unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(p) | Endpoint::UnixDatagram(p) => Some(p),
            Endpoint::Tcp(_) | Endpoint::Udp(_) => None,
        }
    }

    /// The IP socket address, if this is an internet endpoint (TCP or UDP).
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp(a) | Endpoint::Udp(a) => Some(*a),
            Endpoint::Unix(_) | Endpoint::UnixDatagram(_) => None,
        }
    }

    /// Whether this names a datagram socket (`udp:` or `unixgram:`): one message per datagram,
    /// no connection to accept.
    pub fn is_datagram(&self) -> bool {
        matches!(self, Endpoint::Udp(_) | Endpoint::UnixDatagram(_))
    }

    /// The scheme: `"unix"`, `"tcp"`, `"udp"` or `"unixgram"`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Unix(_) => "unix",
            Endpoint::Tcp(_) => "tcp",
            Endpoint::Udp(_) => "udp",
            Endpoint::UnixDatagram(_) => "unixgram",
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
    /// Prints the form `FromStr` parses. A non-UTF-8 path is printed lossily and will not
    /// round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) | Endpoint::UnixDatagram(p) => {
                write!(f, "{}:{}", self.scheme(), p.display())
            }
            // SocketAddr's Display already brackets IPv6 addresses.
            Endpoint::Tcp(a) | Endpoint::Udp(a) => write!(f, "{}:{a}", self.scheme()),
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
            "unix" => parse_path(rest).map(Endpoint::Unix),
            "tcp" => parse_inet(rest).map(Endpoint::Tcp),
            "udp" => parse_inet(rest).map(Endpoint::Udp),
            "unixgram" => parse_path(rest).map(Endpoint::UnixDatagram),
            _ => Err(ParseEndpointError::UnknownScheme {
                scheme: scheme.into(),
            }),
        }
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

/// Parses `HOST:PORT` with an IPv4 host or a bracketed IPv6 host.
pub(crate) fn parse_inet(s: &str) -> Result<SocketAddr, ParseEndpointError> {
    let (host, port) = if let Some(after) = s.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or_else(|| ParseEndpointError::InvalidHost { host: s.into() })?;
        let port = tail
            .strip_prefix(':')
            .ok_or_else(|| ParseEndpointError::MissingPort { input: s.into() })?;
        let ip = host
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| ParseEndpointError::InvalidHost { host: host.into() })?;
        (IpAddr::V6(ip), port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| ParseEndpointError::MissingPort { input: s.into() })?;
        if host.is_empty() {
            return Err(ParseEndpointError::MissingHost { input: s.into() });
        }
        // An unbracketed IPv6 address is ambiguous (`::1:80`), so only IPv4 is accepted here.
        let ip = host
            .parse::<std::net::Ipv4Addr>()
            .map_err(|_| ParseEndpointError::InvalidHost { host: host.into() })?;
        (IpAddr::V4(ip), port)
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
    Ok(SocketAddr::new(host, port_num))
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
            "udp:127.0.0.1:0",
            "udp:[::1]:9000",
            "unixgram:/run/app.sock",
            "unixgram:rel.sock",
        ] {
            let ep = parse(s).unwrap();
            assert_eq!(ep.to_string(), s);
            assert_eq!(parse(&ep.to_string()).unwrap(), ep);
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
                "tcp:localhost:80",
                E::InvalidHost {
                    host: "localhost".into(),
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
    fn error_messages_are_readable() {
        let msg = parse("tcp:127.0.0.1:65536").unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid port \"65536\": expected a number from 0 to 65535"
        );
        let msg = parse("ftp:x").unwrap_err().to_string();
        assert!(msg.contains("ftp"), "{msg}");
    }
}
