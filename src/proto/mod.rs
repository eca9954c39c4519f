//! The wire protocol without I/O: state machines that take bytes and give messages, and the
//! errors they report.
//!
//! Nothing here owns a socket or makes a system call. A driver does the reading: it asks the
//! [`Decoder`] where the next read should go ([`Decoder::read_bufs`]), reads, and reports how many
//! bytes arrived ([`Decoder::advance`]) or that the peer closed ([`Decoder::eof`]); the decoder
//! hands out whole messages ([`Decoder::decode`]). While the decoder holds no buffer, the driver
//! lends memory of its own for the read, which may wait ([`Decoder::read_bufs_lent`], then
//! [`Decoder::decode_lent`]). [`Connection`](crate::Connection) is such a
//! driver over a blocking socket; tests and the fuzz target drive the decoder with plain byte
//! slices ([`Decoder::feed`]), split at any point.
//!
//! This is the shape of rustls's `ConnectionCommon` (`read_tls`, then `process_new_packets`) and
//! of quinn-proto: the protocol is data, the I/O is someone else's.
//!
//! The small steps every message takes are `#[inline]`, as are the system-call wrappers under
//! them: a driver is generic, so it is compiled in its user's crate, and without the hint each
//! of these steps would be a call across crates.
//!
//! # Examples
//!
//! ```
//! use msgsock::frame::Header;
//! use msgsock::proto::{Decode, Decoder};
//!
//! let mut wire = Header::new(5).to_vec();
//! wire.extend_from_slice(b"hello");
//!
//! let mut decoder = Decoder::new(1024);
//! let mut msg = Vec::new();
//! // One byte at a time: the decoder asks for more until the message is whole.
//! for byte in &wire {
//!     assert_eq!(decoder.decode(&mut msg)?, Decode::NeedRead);
//!     assert_eq!(decoder.feed(std::slice::from_ref(byte)), 1);
//! }
//! assert_eq!(decoder.decode(&mut msg)?, Decode::Message(5));
//! assert_eq!(msg, b"hello");
//! decoder.eof()?; // a clean close between messages
//! # Ok::<(), msgsock::proto::FrameError>(())
//! ```

mod error;
pub(crate) mod recv;
mod send;

pub use self::error::FrameError;
pub(crate) use self::recv::{lend, Room};
pub use self::recv::{Decode, Decoder, RECV_BUF_LEN, RECV_BUF_MAX};
#[cfg(all(test, feature = "tokio"))]
pub(crate) use self::send::SMALL_FRAME_MAX;
pub(crate) use self::send::{check_fds, is_retryable, Scratch, SendState, MAX_FDS};
