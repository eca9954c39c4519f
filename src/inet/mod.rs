//! The internet transports: TCP.

mod tcp;

pub use self::tcp::{TcpIncoming, TcpListener, TcpStream};
