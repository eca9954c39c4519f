//! The Unix-domain transports: stream, datagram and seqpacket sockets that live as files.

pub(crate) mod abstract_name;
mod bound;
mod datagram;
mod listener;
mod seqpacket;
pub(crate) mod socket_file;
mod stream;

pub use self::datagram::UnixDatagram;
pub use self::listener::{Incoming, UnixListener, DEFAULT_SOCKET_MODE};
pub use self::seqpacket::{SeqpacketIncoming, UnixSeqpacket, UnixSeqpacketListener};
pub use self::socket_file::MAX_PATH_LEN;
pub use self::stream::{PeerCred, UnixStream};
