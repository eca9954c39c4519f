//! The Unix-domain stream transport: a socket that lives as a file.

mod listener;
pub(crate) mod socket_file;
mod stream;

pub use self::listener::{Incoming, UnixListener, DEFAULT_SOCKET_MODE};
pub use self::socket_file::MAX_PATH_LEN;
pub use self::stream::UnixStream;
