//! The internet transports: TCP and UDP.

mod listener;
mod stream;
mod udp;

pub use self::listener::{TcpIncoming, TcpListener};
pub use self::stream::TcpStream;
pub use self::udp::{UdpSocket, UDP_V4_MAX_MESSAGE_LEN, UDP_V6_MAX_MESSAGE_LEN};
