//! The internet transports: TCP and UDP.

mod tcp;
mod udp;

pub use self::tcp::{TcpIncoming, TcpListener, TcpStream};
pub use self::udp::{UdpSocket, UDP_V4_MAX_MESSAGE_LEN, UDP_V6_MAX_MESSAGE_LEN};
