//! The stream wire format: a length prefix, then the payload. Pure code, no sockets.
//!
//! Each message is a 4-byte big-endian length followed by that many payload bytes:
//!
//! ```text
//! +---- len: u32 BE ----+---- payload ----+
//! | \x00\x00\x00\x0b    |  hello world    |
//! +---------------------+-----------------+
//! ```
//!
//! A length above `0x7FFF_FFFF` is written as the 4 bytes `0xFFFF_FFFF` followed by an 8-byte
//! big-endian length:
//!
//! ```text
//! +-- escape --+------- len: u64 BE --------+---- payload ----+
//! | \xff * 4   | \x00\x00\x00\x00\x80\x00.. |  2^31 bytes ... |
//! +------------+----------------------------+-----------------+
//! ```
//!
//! This is the framing of Python's `multiprocessing.connection` (`send_bytes`/`recv_bytes`), and,
//! for messages up to its 8 MiB default cap, of tokio-util's `LengthDelimitedCodec` with its
//! defaults. Each length has exactly one encoding: a 4-byte prefix in `0x8000_0000..=0xFFFF_FFFE`,
//! or an 8-byte prefix carrying a length that fits in 4 bytes, is malformed.

use crate::proto::FrameError;

/// The largest length written with the short, 4-byte prefix.
pub const SHORT_MAX: u64 = 0x7FFF_FFFF;

/// The 4-byte prefix announcing that an 8-byte length follows.
const ESCAPE: u32 = 0xFFFF_FFFF;

/// The longest prefix: the escape plus an 8-byte length.
pub const MAX_HEADER_LEN: usize = 12;

/// A length prefix, encoded; derefs to its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl Header {
    /// Encodes the prefix for a payload of `payload_len` bytes.
    #[inline]
    pub fn new(payload_len: u64) -> Header {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        if payload_len <= SHORT_MAX {
            bytes[..4].copy_from_slice(&(payload_len as u32).to_be_bytes());
            Header { bytes, len: 4 }
        } else {
            bytes[..4].copy_from_slice(&ESCAPE.to_be_bytes());
            bytes[4..].copy_from_slice(&payload_len.to_be_bytes());
            Header { bytes, len: 12 }
        }
    }
}

impl std::ops::Deref for Header {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The result of looking at the start of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The prefix is complete: it took `header_len` bytes and announces `payload_len`.
    Header {
        /// Bytes the prefix occupies (4 or 12).
        header_len: usize,
        /// The announced payload length.
        payload_len: u64,
    },
    /// The prefix is incomplete: at least this many bytes are needed in total.
    NeedMore(usize),
}

/// Decodes the length prefix at the start of `buf`, enforcing `max` on the announced length.
///
/// # Errors
///
/// [`FrameError::Malformed`] for a non-canonical prefix, [`FrameError::TooLarge`] when the
/// announced length exceeds `max`.
pub fn decode_header(buf: &[u8], max: u64) -> Result<Decoded, FrameError> {
    let Some(short) = buf.first_chunk::<4>() else {
        return Ok(Decoded::NeedMore(4));
    };
    let short = u32::from_be_bytes(*short);
    let (header_len, payload_len) = if u64::from(short) <= SHORT_MAX {
        (4, u64::from(short))
    } else if short != ESCAPE {
        return Err(FrameError::Malformed {
            header: u64::from(short),
        });
    } else {
        let Some(long) = buf.get(4..).and_then(|b| b.first_chunk::<8>()) else {
            return Ok(Decoded::NeedMore(MAX_HEADER_LEN));
        };
        let long = u64::from_be_bytes(*long);
        if long <= SHORT_MAX {
            return Err(FrameError::Malformed { header: long });
        }
        (MAX_HEADER_LEN, long)
    };
    if payload_len > max {
        return Err(FrameError::TooLarge {
            len: payload_len,
            max,
        });
    }
    Ok(Decoded::Header {
        header_len,
        payload_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMIT: u64 = u64::MAX;

    #[test]
    fn short_header_matches_the_diagram() {
        let h = Header::new(11);
        assert_eq!(&*h, b"\x00\x00\x00\x0b");
        assert_eq!(&*Header::new(0), &[0, 0, 0, 0]);
        assert_eq!(&*Header::new(SHORT_MAX), &[0x7f, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn long_header_uses_the_escape() {
        let h = Header::new(SHORT_MAX + 1);
        assert_eq!(
            &*h,
            &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0][..]
        );
        assert_eq!(Header::new(u64::MAX).len(), 12);
    }

    #[test]
    fn decode_inverts_encode() {
        for n in [0, 1, 11, 4096, SHORT_MAX, SHORT_MAX + 1, 1 << 40, u64::MAX] {
            let h = Header::new(n);
            assert_eq!(
                decode_header(&h, NO_LIMIT).unwrap(),
                Decoded::Header {
                    header_len: h.len(),
                    payload_len: n
                }
            );
        }
    }

    #[test]
    fn decode_asks_for_more_at_every_split() {
        let h = Header::new(1 << 33);
        for cut in 0..4 {
            assert_eq!(
                decode_header(&h[..cut], NO_LIMIT).unwrap(),
                Decoded::NeedMore(4)
            );
        }
        for cut in 4..12 {
            assert_eq!(
                decode_header(&h[..cut], NO_LIMIT).unwrap(),
                Decoded::NeedMore(12)
            );
        }
        let h = Header::new(5);
        for cut in 0..4 {
            assert_eq!(
                decode_header(&h[..cut], NO_LIMIT).unwrap(),
                Decoded::NeedMore(4)
            );
        }
    }

    #[test]
    fn non_canonical_prefixes_are_malformed() {
        for short in [0x8000_0000u32, 0x8000_0001, 0xFFFF_FFFE] {
            let err = decode_header(&short.to_be_bytes(), NO_LIMIT).unwrap_err();
            assert!(
                matches!(err, FrameError::Malformed { header } if header == u64::from(short)),
                "{err:?}"
            );
        }
        // The 8-byte form carrying a length that fits the 4-byte form.
        let mut buf = [0xffu8; 12];
        buf[4..].copy_from_slice(&SHORT_MAX.to_be_bytes());
        let err = decode_header(&buf, NO_LIMIT).unwrap_err();
        assert!(matches!(err, FrameError::Malformed { header } if header == SHORT_MAX));
    }

    #[test]
    fn the_limit_is_inclusive() {
        let max = 64;
        assert!(decode_header(&Header::new(64), max).is_ok());
        let err = decode_header(&Header::new(65), max).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 65, max: 64 }));
        let err = decode_header(&Header::new(1 << 40), max).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, max: 64 } if len == 1 << 40));
    }
}
