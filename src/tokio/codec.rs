//! [`MessageCodec`]: msgsock's framing as a tokio-util `Decoder`/`Encoder`, for `Framed`.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec;

use crate::conn::DEFAULT_MAX_MESSAGE_LEN;
use crate::error::{Error, Result};
use crate::frame::{self, Decoded, Header};
use crate::proto::FrameError;

/// The wire format as a tokio-util codec: a 4-byte big-endian length (or the escape and an 8-byte
/// length), then the payload, exactly as [`AsyncConnection`](super::AsyncConnection) and Python's
/// `multiprocessing.connection` frame it.
///
/// Unlike tokio-util's `LengthDelimitedCodec`, which reserves the length a header announces (up
/// to its 8 MiB default), this codec reserves nothing on a header's word: `Framed`'s read buffer
/// grows with the bytes that arrive. Lengths above the limit are [`Error::FrameTooLarge`] before
/// anything is kept, and a close mid-frame is [`Error::UnexpectedEof`].
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use msgsock::tokio::MessageCodec;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = MessageCodec::new();
/// let mut wire = BytesMut::new();
/// codec.encode(&b"hello world"[..], &mut wire)?;
/// assert_eq!(&wire[..], b"\x00\x00\x00\x0bhello world");
/// assert_eq!(codec.decode(&mut wire)?.as_deref(), Some(&b"hello world"[..]));
/// # Ok::<(), msgsock::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageCodec {
    max_len: u64,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Head,
    /// The header of a payload of this many bytes was taken, of `header_len` bytes.
    Data {
        header_len: usize,
        len: usize,
    },
}

impl MessageCodec {
    /// A codec accepting messages up to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn new() -> MessageCodec {
        MessageCodec {
            max_len: DEFAULT_MAX_MESSAGE_LEN,
            state: State::Head,
        }
    }

    /// The largest message decoded.
    pub fn max_message_len(&self) -> u64 {
        self.max_len
    }

    /// Sets the largest message decoded, from the next length prefix on.
    pub fn set_max_message_len(&mut self, max: u64) -> &mut Self {
        self.max_len = max;
        self
    }
}

impl Default for MessageCodec {
    fn default() -> Self {
        MessageCodec::new()
    }
}

impl codec::Decoder for MessageCodec {
    type Item = BytesMut;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>> {
        if let State::Head = self.state {
            match frame::decode_header(src, self.max_len)? {
                Decoded::NeedMore(_) => return Ok(None),
                Decoded::Header {
                    header_len,
                    payload_len,
                } => {
                    let len = usize::try_from(payload_len).map_err(|_| FrameError::TooLarge {
                        len: payload_len,
                        max: usize::MAX as u64,
                    })?;
                    src.advance(header_len);
                    self.state = State::Data { header_len, len };
                }
            }
        }
        let State::Data { len, .. } = self.state else {
            unreachable!("the header was just taken")
        };
        if src.len() < len {
            // No `reserve(len)`: memory follows the bytes that arrive, not the header's claim.
            return Ok(None);
        }
        self.state = State::Head;
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>> {
        if let Some(msg) = codec::Decoder::decode(self, src)? {
            return Ok(Some(msg));
        }
        let (read, expected) = match self.state {
            State::Head if src.is_empty() => return Ok(None),
            State::Head => {
                let need = match frame::decode_header(src, u64::MAX) {
                    Ok(Decoded::NeedMore(need)) => need,
                    _ => frame::MAX_HEADER_LEN,
                };
                (src.len() as u64, need as u64)
            }
            State::Data { header_len, len } => (
                (header_len + src.len()) as u64,
                (header_len as u64).saturating_add(len as u64),
            ),
        };
        Err(FrameError::UnexpectedEof { read, expected }.into())
    }
}

impl<T: AsRef<[u8]>> codec::Encoder<T> for MessageCodec {
    type Error = Error;

    fn encode(&mut self, msg: T, dst: &mut BytesMut) -> Result<()> {
        let msg = msg.as_ref();
        let header = Header::new(msg.len() as u64);
        dst.reserve(header.len() + msg.len());
        dst.put_slice(&header);
        dst.put_slice(msg);
        Ok(())
    }
}
