//! The std socket types' own calls that the bench needs, as traits, so that one generic function
//! serves every family: std gives `UnixStream` and `TcpStream` (and `UdpSocket` and
//! `UnixDatagram`) the same inherent methods but no trait that names them.

use std::io::{self, Read, Write};
use std::net::{TcpStream as StdTcpStream, UdpSocket as StdUdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram as StdUnixDatagram, UnixStream as StdUnixStream};
use std::time::Duration;

/// Any std socket: a second handle and the timeouts that guard a case against a stuck peer.
pub(crate) trait StdSocket: From<OwnedFd> + Send + Sized + 'static {
    fn try_clone(&self) -> io::Result<Self>;
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

/// A std stream socket, as the hand-written stream baselines use it.
pub(crate) trait StdStream: StdSocket + Read + Write {
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

/// A connected std datagram socket, as the hand-written datagram baseline uses it.
pub(crate) trait StdDatagram: StdSocket {
    fn send(&self, msg: &[u8]) -> io::Result<usize>;
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
}

/// Implements `$trait` for each type by calling the type's inherent method of the same name
/// (inherent methods win over trait methods in `Type::method` paths).
macro_rules! inherent {
    ($trait:ident for [$($ty:ident),+] $fns:tt) => {
        $(inherent!(@one $trait for $ty $fns);)+
    };
    (@one $trait:ident for $ty:ident { $(fn $m:ident(&self $(, $a:ident: $t:ty)*) -> $r:ty;)+ }) => {
        impl $trait for $ty {
            $(fn $m(&self $(, $a: $t)*) -> $r {
                $ty::$m(self $(, $a)*)
            })+
        }
    };
}

inherent!(StdSocket for [StdUnixStream, StdTcpStream, StdUdpSocket, StdUnixDatagram] {
    fn try_clone(&self) -> io::Result<Self>;
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
});

inherent!(StdStream for [StdUnixStream, StdTcpStream] {
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
});

inherent!(StdDatagram for [StdUdpSocket, StdUnixDatagram] {
    fn send(&self, msg: &[u8]) -> io::Result<usize>;
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
});
