//! [`FrameError`]: what the receive state machine reports.

use crate::error::Error;

/// A violation of the wire format, or a close in the middle of a frame.
///
/// Each but [`FdsTruncated`](FrameError::FdsTruncated) leaves the [`Decoder`](super::Decoder)
/// unusable: later calls return [`Broken`](FrameError::Broken). Converts into the crate's
/// [`Error`] variant of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A length prefix announced a message larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The length the peer announced.
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// A length prefix that no conforming sender writes (see [`frame`](crate::frame)).
    #[error("malformed length prefix: value {header:#x}, which no sender writes (a 4-byte prefix over 0x7fffffff other than the escape 0xffffffff, or an 8-byte one that would fit in 4)")]
    Malformed {
        /// The offending prefix value.
        header: u64,
    },
    /// The input ended in the middle of a frame.
    #[error("connection closed mid-frame after {read} of {expected} bytes")]
    UnexpectedEof {
        /// Bytes of the frame (length prefix included) that arrived.
        read: u64,
        /// Bytes the frame should have had, or the prefix length while it was incomplete.
        expected: u64,
    },
    /// An earlier error (a framing error, a close mid-frame, or a read that failed mid-payload)
    /// left the decoder unusable.
    #[error("connection is unusable after an earlier receive error")]
    Broken,
    /// The message handed out next lost its descriptors in a read whose control data was
    /// truncated: it was dropped, and unlike the other variants this leaves the decoder usable.
    #[error("a message lost its descriptors; {closed} that arrived were closed")]
    FdsTruncated {
        /// How many of its descriptors did arrive (and were closed).
        closed: usize,
    },
}

impl From<FrameError> for Error {
    fn from(err: FrameError) -> Error {
        match err {
            FrameError::TooLarge { len, max } => Error::FrameTooLarge { len, max },
            FrameError::Malformed { header } => Error::MalformedHeader { header },
            FrameError::UnexpectedEof { read, expected } => Error::UnexpectedEof { read, expected },
            FrameError::Broken => Error::Broken,
            FrameError::FdsTruncated { closed } => Error::FdsTruncated { closed },
        }
    }
}
