//! [`Decoder`]: the receive state machine. Bytes in, whole messages out, no I/O.

use std::collections::VecDeque;
use std::mem::{self, MaybeUninit};
use std::ops::Range;
use std::os::fd::OwnedFd;

use super::error::FrameError;
use super::send::MAX_FDS;
use crate::frame::{self, Decoded, MAX_HEADER_LEN};

/// Size of the receive buffer when it is first needed. Headers are read through it, so one read
/// can bring in several small frames; the part of a payload that did not come with its header is
/// read straight into the message, with this buffer behind it to catch the next header. After a
/// message at least this long, a read brings at most one header (12 bytes) into the buffer, so
/// that the payload behind it is not copied twice; only the first of a run of long messages can
/// have up to this many of its bytes copied twice.
///
/// The buffer is adaptive: none is held until a read needs it, it grows to [`RECV_BUF_MAX`] once
/// a read fills it with short frames, because such a peer is streaming and a larger read brings
/// more frames per call, and its memory goes back once a read drains the socket and its frames
/// are handed out, or a read finds nothing ([`Decoder::quiet`]). The read after that may wait, so
/// the driver lends memory of its own for it ([`Decoder::read_bufs_lent`]), this many bytes.
pub const RECV_BUF_LEN: usize = 8 * 1024;

/// The largest the receive buffer grows while a peer streams (see [`RECV_BUF_LEN`]).
pub const RECV_BUF_MAX: usize = 64 * 1024;

/// How far a payload buffer grows ahead of the bytes that have arrived, at least. Beyond this it
/// grows by the bytes already received (doubling), so memory follows data, never a header's claim.
pub(crate) const GROW_STEP: usize = 64 * 1024;

/// What [`Decoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode {
    /// A whole message of this many bytes is in the caller's buffer.
    Message(usize),
    /// The bytes so far end mid-frame (or between frames): read into
    /// [`read_bufs`](Decoder::read_bufs), then [`advance`](Decoder::advance) and decode again.
    NeedRead,
}

enum State {
    /// Between frames; part of a header may be buffered.
    Idle,
    /// Inside a payload of `len` bytes, `filled` of which are in `Decoder::msg`.
    Payload {
        header_len: usize,
        len: usize,
        filled: usize,
    },
    /// A framing error or a close mid-frame; nothing more can be decoded.
    Broken,
}

/// Descriptors that came with one read, or the loss of some in a read whose control data was
/// truncated.
enum Attached {
    Fds(Vec<OwnedFd>),
    /// That many arrived and were closed at once.
    Lost(usize),
}

/// The receive side of the wire format as a state machine.
///
/// It keeps every property a receiver needs against a hostile peer: memory grows with the bytes
/// that arrive, never with what a length prefix claims; only canonical prefixes are accepted; the
/// limit is checked before anything is reserved; and it can stop and resume at every byte. A
/// message in progress is held by the decoder, not the caller, so a driver whose read is
/// interrupted (a timeout, a cancelled future) loses nothing.
///
/// The driver loop: [`decode`](Self::decode) until it says [`Decode::NeedRead`]; read into
/// [`read_bufs`](Self::read_bufs), in order; report the count with [`advance`](Self::advance), or
/// a close with [`eof`](Self::eof); repeat. While the decoder [`wants_buffer`](Self::wants_buffer),
/// the read goes into [`read_bufs_lent`](Self::read_bufs_lent) with memory of the driver's own,
/// and the decode after it is [`decode_lent`](Self::decode_lent) with that memory.
///
/// # Descriptors
///
/// A driver of a Unix stream also hands over the descriptors that came with a read
/// ([`attach_fds`](Self::attach_fds), after its [`advance`](Self::advance)), and
/// [`decode_with_fds`](Self::decode_with_fds) gives each message the descriptors of the reads
/// whose last byte falls in its frame; [`decode`](Self::decode) closes them. That is the right
/// message when each frame that carries descriptors was sent in a `sendmsg(2)` of its own that
/// starts with its header, as [`Connection::send_with_fds`](crate::Connection::send_with_fds)
/// sends it: Linux attaches descriptors to the first buffer (`skb`) of that call, and a read
/// that touches it takes them and stops at its end, so the read's last byte is in that frame.
pub struct Decoder {
    /// Received bytes not yet handed out are `buf[pos..end]`. Empty, with no memory, while the
    /// connection is quiet; otherwise `size` long, or about to be replaced by a buffer of `size`.
    buf: Box<[u8]>,
    /// The size the receive buffer has, or takes when next it is empty.
    size: usize,
    /// The last read into the receive buffer filled it (see `adapt`).
    filled_up: bool,
    /// The last read brought fewer bytes than offered: the socket had no more, so the next read
    /// may wait. With nothing buffered the receive buffer then goes back (see `settle`).
    drained: bool,
    /// How many bytes the last [`read_bufs`](Self::read_bufs) offered in all.
    offered: usize,
    /// The second slice of the last read was the driver's memory
    /// ([`read_bufs_lent`](Self::read_bufs_lent)), and `lent` of its bytes are yet to be taken.
    lending: bool,
    lent: usize,
    /// The buffer goes back when a read drains the socket (see `settle`); a driver that learns
    /// of the wait itself (`WouldBlock`) may take it back then instead ([`Decoder::take_idle_buffer`]).
    drained_gives_back: bool,
    pos: usize,
    end: usize,
    max_len: u64,
    state: State,
    /// The payload being received while in `State::Payload`; the caller's buffer otherwise.
    msg: Vec<u8>,
    /// The last message was at least `RECV_BUF_LEN` long, so the next likely is too (see
    /// `room`).
    large: bool,
    /// Descriptors not yet handed out; `None`, with no memory, until some arrive. Boxed: a
    /// connection that passes none pays one pointer for them.
    fds: Option<Box<FdQueue>>,
}

/// The descriptors a [`Decoder`] holds for messages it has not handed out yet.
#[derive(Default)]
struct FdQueue {
    /// Bytes reported by `advance` since the queue was made.
    received: u64,
    /// Each read's descriptors with the value of `received` right after that read, in order:
    /// the read's last byte is the one `received - at` bytes before the last byte received.
    attached: VecDeque<(u64, Attached)>,
    /// How many open descriptors `attached` holds. While a frame is incomplete they are all
    /// that frame's, and more than [`MAX_FDS`] are closed (see `bound_held`).
    held: usize,
}

impl FdQueue {
    /// The loss of everything queued, as one record at the latest read's place (see
    /// `Decoder::bound_held`). Out of line: only a peer sending too many descriptors gets here.
    #[cold]
    #[inline(never)]
    fn collapse(&mut self) {
        let Some(&(at, _)) = self.attached.back() else {
            return;
        };
        let lost = self
            .attached
            .iter()
            .map(|(_, a)| match a {
                Attached::Fds(fds) => fds.len(),
                Attached::Lost(n) => *n,
            })
            .sum();
        // Dropping them closes them.
        self.attached.clear();
        self.attached.push_back((at, Attached::Lost(lost)));
        self.held = 0;
    }
}

impl Decoder {
    /// A decoder accepting messages of up to `max_len` bytes.
    pub fn new(max_len: u64) -> Decoder {
        Decoder {
            buf: Box::default(),
            size: RECV_BUF_LEN,
            filled_up: false,
            drained: false,
            offered: 0,
            lending: false,
            lent: 0,
            drained_gives_back: true,
            pos: 0,
            end: 0,
            max_len,
            state: State::Idle,
            msg: Vec::new(),
            large: false,
            fds: None,
        }
    }

    /// The largest message accepted.
    pub fn max_message_len(&self) -> u64 {
        self.max_len
    }

    /// Sets the largest message accepted, from the next length prefix on; a message already
    /// being received is not affected.
    pub fn set_max_message_len(&mut self, max: u64) {
        self.max_len = max;
    }

    /// Bytes received but not yet handed out as messages, a partly received one included with
    /// its length prefix: as many as [`take_buffered`](Self::take_buffered) returns.
    pub fn buffered_len(&self) -> usize {
        let partial = match self.state {
            State::Payload {
                header_len, filled, ..
            } => header_len + filled,
            _ => 0,
        };
        self.end - self.pos + partial
    }

    /// Whether the next read would need a receive buffer that the decoder does not hold. Then a
    /// driver lends memory of its own for that read, on its stack
    /// ([`read_bufs_lent`](Self::read_bufs_lent)), and the decoder takes a buffer only for
    /// bytes that must outlive the read. The decoder gives its buffer back whenever a read
    /// drains the socket and every byte of it is handed out, so a connection that waits for its
    /// peer (a blocking read with no timeout, an idle async connection) holds no buffer.
    #[inline]
    pub fn wants_buffer(&self) -> bool {
        self.buf.is_empty()
            && match self.state {
                State::Idle => true,
                // Only once the read reaches past the payload into the buffer.
                State::Payload { len, .. } => self.msg.len() >= len,
                State::Broken => false,
            }
    }

    /// How much of the memory lent to the next read ([`read_bufs_lent`](Self::read_bufs_lent))
    /// the decoder would use: [`RECV_BUF_LEN`], or only the longest header after a long message,
    /// whose successor is read straight into its destination. A driver need lend no more.
    #[inline]
    pub fn lent_len(&self) -> usize {
        if self.large {
            MAX_HEADER_LEN
        } else {
            RECV_BUF_LEN
        }
    }

    /// Whether an error has left the decoder unusable.
    pub fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken)
    }

    /// Whether a message is partly received: a close now would be mid-frame.
    pub fn is_mid_frame(&self) -> bool {
        match self.state {
            State::Idle => self.end > self.pos,
            State::Payload { .. } => true,
            State::Broken => false,
        }
    }

    /// Hands out the next whole message from the bytes received so far, into `msg` (its contents
    /// are replaced and its capacity reused), or says that more must be read.
    ///
    /// Descriptors that came with the message's bytes are closed: see
    /// [`decode_with_fds`](Self::decode_with_fds) to keep them.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] and [`FrameError::Malformed`] for a bad length prefix, and
    /// [`FrameError::Broken`] on any call after an error.
    ///
    /// # Panics
    ///
    /// After a read into [`read_bufs_lent`](Self::read_bufs_lent) that put bytes into the
    /// driver's memory, which only [`decode_lent`](Self::decode_lent) can take: a driver bug,
    /// not peer input.
    pub fn decode(&mut self, msg: &mut Vec<u8>) -> Result<Decode, FrameError> {
        self.decode_lent(&[], msg, None)
    }

    /// As [`decode`](Self::decode), and `fds` (its contents replaced) gets the descriptors that
    /// came with the message, in the order they were sent: those of every read whose last byte
    /// is in the message's frame (see [Descriptors](Self#descriptors)).
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode), and [`FrameError::FdsTruncated`] in place of a message that
    /// lost descriptors in a read whose control data was truncated: its bytes are dropped and the
    /// descriptors of it that did arrive are closed, and the decoder stays usable (the next call
    /// gives the next message).
    ///
    /// # Panics
    ///
    /// As [`decode`](Self::decode).
    pub fn decode_with_fds(
        &mut self,
        msg: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Decode, FrameError> {
        self.decode_lent(&[], msg, Some(fds))
    }

    /// The decode step after a read into [`read_bufs_lent`](Self::read_bufs_lent), with `lent`
    /// the memory that was lent (the decoder knows how many of its bytes the read filled). A
    /// message whose frame is wholly there goes straight into `msg`; only the bytes behind it
    /// are copied, into a receive buffer of the decoder's own. With `fds`, as
    /// [`decode_with_fds`](Self::decode_with_fds), else as [`decode`](Self::decode); with
    /// nothing lent, exactly those.
    ///
    /// # Errors
    ///
    /// As [`decode_with_fds`](Self::decode_with_fds).
    ///
    /// # Panics
    ///
    /// If `lent` is shorter than what the read put there: a driver bug, not peer input.
    #[inline]
    pub fn decode_lent(
        &mut self,
        lent: &[u8],
        msg: &mut Vec<u8>,
        fds: Option<&mut Vec<OwnedFd>>,
    ) -> Result<Decode, FrameError> {
        let n = mem::take(&mut self.lent);
        assert!(
            n <= lent.len(),
            "decode without the memory lent to the read"
        );
        let mut fds = fds;
        if let Some(fds) = fds.as_deref_mut() {
            fds.clear();
        }
        let decoded = if n == 0 {
            if self.pos == self.end && matches!(self.state, State::Idle) {
                // Nothing buffered between frames, as before every read that may wait: what the
                // state machine would conclude, without running it.
                self.adapt(true);
                self.settle(Decode::NeedRead);
                return Ok(Decode::NeedRead);
            }
            self.decode_buffered(msg)?
        } else {
            self.decode_from_lent(&lent[..n], msg)?
        };
        if let Decode::NeedRead = decoded {
            self.bound_held();
        }
        if let Decode::Message(_) = decoded {
            let Some(fds) = fds else {
                // Not asked for: dropping them closes them.
                self.take_attached(|_| {});
                return Ok(decoded);
            };
            let mut lost = None;
            self.take_attached(|a| match a {
                Attached::Fds(mut got) => fds.append(&mut got),
                Attached::Lost(n) => *lost.get_or_insert(0) += n,
            });
            if fds.len() > MAX_FDS {
                // More than one message carries, in reads too few to be bounded on the way.
                lost.get_or_insert(0);
            }
            if let Some(closed) = lost {
                let closed = closed + fds.len();
                fds.clear();
                msg.clear();
                return Err(FrameError::FdsTruncated { closed });
            }
        }
        Ok(decoded)
    }

    /// [`decode_lent`](Self::decode_lent) with the message's length, or `None` when more must
    /// be read: the decode step of every driver's receive loop.
    #[inline]
    pub(crate) fn decode_into(
        &mut self,
        lent: &[u8],
        msg: &mut Vec<u8>,
        fds: Option<&mut Vec<OwnedFd>>,
    ) -> Result<Option<usize>, FrameError> {
        Ok(match self.decode_lent(lent, msg, fds)? {
            Decode::Message(n) => Some(n),
            Decode::NeedRead => None,
        })
    }

    /// Passes every queued attachment of the message just handed out to `each`: those that came
    /// with a read whose last byte is before the first byte still buffered, which is the end
    /// of that message's frame.
    #[inline]
    fn take_attached(&mut self, mut each: impl FnMut(Attached)) {
        let Some(q) = self.fds.as_deref_mut() else {
            return;
        };
        // Bytes after the frame's end: the read's last byte is in the frame if it came earlier.
        let ahead = (self.end - self.pos) as u64;
        while q
            .attached
            .front()
            .is_some_and(|(at, _)| q.received - at >= ahead)
        {
            if let Some((_, a)) = q.attached.pop_front() {
                if let Attached::Fds(fds) = &a {
                    q.held -= fds.len();
                }
                each(a);
            }
        }
    }

    /// Records the descriptors that came with the last read (call after its
    /// [`advance`](Self::advance)), or with `truncated` that the read's control data was cut
    /// short (`MSG_CTRUNC`): then `fds` are closed at once and the message they belong to is
    /// reported as [`FrameError::FdsTruncated`] by [`decode_with_fds`](Self::decode_with_fds).
    ///
    /// A message carries at most 253 descriptors (`SCM_MAX_FD`, the most one `sendmsg(2)`
    /// attaches): one that arrives with more, spread over its bytes, is reported as truncated,
    /// and while its frame is incomplete the decoder closes them once there are more than that,
    /// so that a peer who attaches some to every byte of a long frame cannot fill this process's
    /// descriptor table.
    pub fn attach_fds(&mut self, fds: Vec<OwnedFd>, truncated: bool) {
        let attached = if truncated {
            Attached::Lost(fds.len())
        } else if fds.is_empty() {
            return;
        } else {
            Attached::Fds(fds)
        };
        let q = self.fds.get_or_insert_with(Box::default);
        if let Attached::Fds(fds) = &attached {
            q.held += fds.len();
        }
        q.attached.push_back((q.received, attached));
    }

    /// Called when the decoder needs a read: every message that was whole has been handed
    /// out, so what is still queued is the incomplete frame's. More descriptors than a message
    /// carries, or more records of them than that (one per read), mean the message cannot come
    /// out whole: they are closed at once and kept as one record of the loss, at the latest
    /// read's place, so neither descriptors nor records grow with a peer's reads.
    #[inline]
    fn bound_held(&mut self) {
        let Some(q) = self.fds.as_deref_mut() else {
            return;
        };
        if q.held > MAX_FDS || q.attached.len() > MAX_FDS {
            q.collapse();
        }
    }

    /// The state machine of [`decode`](Self::decode) over the receive buffer, leaving
    /// descriptors queued.
    #[inline]
    fn decode_buffered(&mut self, msg: &mut Vec<u8>) -> Result<Decode, FrameError> {
        // Before `step`, which needs the buffer out of `self`: this is the common case.
        if let State::Idle = self.state {
            if let Some((n, len)) = whole_frame(&self.buf[self.pos..self.end], self.max_len, msg) {
                self.pos += n;
                self.large = len >= RECV_BUF_LEN;
                return Ok(Decode::Message(len));
            }
        }
        // Out of `self` while `step` reads it; an error has dropped the buffer anyway.
        let buf = mem::take(&mut self.buf);
        let (used, decoded) = self.step(&buf[self.pos..self.end], msg)?;
        self.buf = buf;
        self.pos += used;
        self.settle(decoded);
        Ok(decoded)
    }

    /// The state machine over bytes in the driver's memory, with nothing buffered before them:
    /// what a whole frame of them needs is copied into `msg`, the rest into a receive buffer.
    #[inline]
    fn decode_from_lent(&mut self, lent: &[u8], msg: &mut Vec<u8>) -> Result<Decode, FrameError> {
        let (used, decoded) = self.step(lent, msg)?;
        self.keep(&lent[used..]);
        self.settle(decoded);
        Ok(decoded)
    }

    /// Decodes from `src`, the received bytes not yet consumed: returns how many it consumed and
    /// whether that made a message. Every state change is here; what happens to the buffer that
    /// held `src` is the caller's.
    fn step(&mut self, src: &[u8], msg: &mut Vec<u8>) -> Result<(usize, Decode), FrameError> {
        let mut used = 0;
        loop {
            match self.state {
                State::Broken => return Err(FrameError::Broken),
                State::Idle
                    if let Some((n, len)) = whole_frame(&src[used..], self.max_len, msg) =>
                {
                    self.large = len >= RECV_BUF_LEN;
                    return Ok((used + n, Decode::Message(len)));
                }
                State::Idle => match frame::decode_header(&src[used..], self.max_len) {
                    Err(e) => return Err(self.fail(e)),
                    Ok(Decoded::NeedMore(_)) => {
                        self.adapt(true);
                        return Ok((used, Decode::NeedRead));
                    }
                    Ok(Decoded::Header {
                        header_len,
                        payload_len,
                    }) => {
                        // The limit is checked, so the length fits memory the user allowed for.
                        let Ok(len) = usize::try_from(payload_len) else {
                            return Err(self.fail(FrameError::TooLarge {
                                len: payload_len,
                                max: usize::MAX as u64,
                            }));
                        };
                        used += header_len;
                        self.msg = mem::take(msg);
                        self.state = State::Payload {
                            header_len,
                            len,
                            filled: 0,
                        };
                    }
                },
                State::Payload {
                    len,
                    ref mut filled,
                    ..
                } => {
                    // Hand over what is buffered first.
                    let take = (src.len() - used).min(len - *filled);
                    if take > 0 {
                        grow(&mut self.msg, *filled + take, len, *filled);
                        self.msg[*filled..*filled + take].copy_from_slice(&src[used..used + take]);
                        used += take;
                        *filled += take;
                    }
                    let remaining = len - *filled;
                    if remaining == 0 {
                        self.msg.truncate(len);
                        *msg = mem::take(&mut self.msg);
                        self.large = len >= RECV_BUF_LEN;
                        self.state = State::Idle;
                        return Ok((used, Decode::Message(len)));
                    }
                    // Memory follows the bytes that arrive: a short rest is allocated whole, a
                    // long one in steps.
                    let need = if remaining < self.size {
                        len
                    } else {
                        *filled + 1
                    };
                    grow(&mut self.msg, need, len, *filled);
                    let short = len < RECV_BUF_LEN;
                    self.adapt(short);
                    // Everything buffered was handed over.
                    return Ok((used, Decode::NeedRead));
                }
            }
        }
    }

    /// The receive buffer after a decode step. Waiting for a payload, everything buffered was
    /// handed over. Between frames, a partial header gets room behind it; with nothing buffered
    /// after a read that drained the socket, the next read may wait, so the buffer goes back and
    /// that read goes into memory the driver lends.
    #[inline]
    fn settle(&mut self, decoded: Decode) {
        match (decoded, &self.state) {
            (Decode::NeedRead, State::Payload { .. }) => {
                self.pos = 0;
                self.end = 0;
            }
            (Decode::NeedRead, State::Idle) => {
                self.make_room();
                if self.pos == self.end && self.drained && self.drained_gives_back {
                    self.buf = Box::default();
                }
            }
            _ => {}
        }
    }

    /// Copies `rest`, bytes in the driver's memory that a decode step did not consume, into a
    /// receive buffer, which was empty. Whole frames get a buffer of their length (they are
    /// handed out before the next read); a partial frame one of the usual size, to read into.
    #[inline]
    fn keep(&mut self, rest: &[u8]) {
        if rest.is_empty() {
            return;
        }
        let size = if ends_with_a_frame(rest) {
            rest.len()
        } else {
            self.size.max(rest.len())
        };
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(rest);
        buf.resize(size, 0);
        self.buf = buf.into_boxed_slice();
        self.pos = 0;
        self.end = rest.len();
    }

    /// Where the next read should put its bytes, in order: the rest of the payload being
    /// received, straight into the message (empty between frames), then the receive buffer
    /// (empty while the payload's rest is too long to reach in this read). The receive buffer is
    /// allocated here, when a read is about to need it, not before; a driver can lend memory in
    /// its place ([`read_bufs_lent`](Self::read_bufs_lent)).
    ///
    /// Call after [`decode`](Self::decode) returned [`Decode::NeedRead`]. A read that fills the
    /// first slice wholly and then some of the second is one `readv(2)`: it brings the end of a
    /// payload and the header behind it in one call.
    pub fn read_bufs(&mut self) -> [&mut [u8]; 2] {
        self.bufs(None)
    }

    /// As [`read_bufs`](Self::read_bufs), with `spare`, the driver's memory, in place of a
    /// receive buffer while the decoder holds none ([`wants_buffer`](Self::wants_buffer)), so
    /// that a read that waits holds no memory of the decoder's. After the read,
    /// [`advance`](Self::advance) as always, then [`decode_lent`](Self::decode_lent) with the
    /// same `spare`. When the decoder holds a buffer, `spare` is not used.
    pub fn read_bufs_lent<'a>(&'a mut self, spare: &'a mut [u8]) -> [&'a mut [u8]; 2] {
        self.bufs(Some(spare))
    }

    fn bufs<'a>(&'a mut self, spare: Option<&'a mut [u8]>) -> [&'a mut [u8]; 2] {
        let (into_msg, second) = self.plan(spare.as_ref().map(|spare| spare.len()));
        let second = match (second, spare) {
            (Second::Lent(room), Some(spare)) => &mut spare[..room],
            (Second::Own(range), _) => &mut self.buf[range],
            _ => &mut [],
        };
        [&mut self.msg[into_msg], second]
    }

    /// As [`read_bufs_lent`](Self::read_bufs_lent) with `spare`, else as
    /// [`read_bufs`](Self::read_bufs), with `spare` uninitialised: the read writes it, and only
    /// what it wrote is read back. So a driver lends memory without zeroing it first. While
    /// the decoder holds a receive buffer, that is the second buffer.
    #[inline]
    pub(crate) fn read_bufs_uninit<'a, 'l>(
        &'a mut self,
        spare: Option<&'l mut [MaybeUninit<u8>]>,
    ) -> (&'a mut [u8], Room<'a, 'l>) {
        let (into_msg, second) = self.plan(spare.as_ref().map(|spare| spare.len()));
        let second = match (second, spare) {
            (Second::Lent(room), Some(spare)) => Room::Lent(&mut spare[..room]),
            (Second::Own(range), _) => Room::Own(&mut self.buf[range]),
            _ => Room::Own(&mut []),
        };
        (&mut self.msg[into_msg], second)
    }

    /// Where the next read goes: the range of the message it fills, then lent memory (of
    /// `lent` bytes, if offered) or the receive buffer. Allocates the receive buffer when that
    /// is where the read goes and it has none.
    #[inline]
    fn plan(&mut self, lent: Option<usize>) -> (Range<usize>, Second) {
        self.lending = false;
        self.offered = 0;
        let into_msg = match self.state {
            State::Payload { len, filled, .. } => {
                let end = self.msg.len().min(len);
                if end < len {
                    self.offered = end - filled;
                    return (filled..end, Second::Empty);
                }
                filled..end
            }
            State::Idle => 0..0,
            State::Broken => return (0..0, Second::Empty),
        };
        let second = match lent {
            Some(lent) if self.buf.is_empty() => {
                self.lending = true;
                let room = if self.large {
                    MAX_HEADER_LEN.min(lent)
                } else {
                    lent
                };
                self.offered = into_msg.len() + room;
                Second::Lent(room)
            }
            _ => {
                if self.pos == self.end && self.buf.len() != self.size {
                    // Nothing buffered: the buffer can take its new size without copying.
                    self.buf = vec![0; self.size].into_boxed_slice();
                    self.pos = 0;
                    self.end = 0;
                }
                // Mid-payload everything buffered was handed over, so `end` is 0 there.
                let from = self.end;
                let room = self.room(from);
                self.offered = into_msg.len() + (room - from);
                Second::Own(from..room)
            }
        };
        (into_msg, second)
    }

    /// Records that the last read put `n` bytes into [`read_bufs`](Self::read_bufs) (or
    /// [`read_bufs_lent`](Self::read_bufs_lent)), filling them in order.
    ///
    /// # Panics
    ///
    /// If `n` is more than the two buffers hold: a driver bug, not peer input.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.offered, "advance past read_bufs");
        if let Some(q) = self.fds.as_deref_mut() {
            q.received += n as u64;
        }
        self.drained = n < self.offered;
        let mut second = n;
        if let State::Payload {
            len,
            ref mut filled,
            ..
        } = self.state
        {
            let first = self.msg.len().min(len) - *filled;
            let into_msg = n.min(first);
            *filled += into_msg;
            second = n - into_msg;
        }
        if self.lending {
            self.lent = second;
            // As `fill_buf`: the lent memory is full, and it was no mere header's room.
            self.filled_up = !self.drained && second >= RECV_BUF_LEN / 2;
        } else {
            self.fill_buf(second);
        }
    }

    /// Records `n` bytes read into the receive buffer, noting whether that read filled it.
    #[inline]
    fn fill_buf(&mut self, n: usize) {
        self.end += n;
        assert!(self.end <= self.buf.len(), "advance past read_bufs");
        // A read of the last few bytes of a nearly full buffer says nothing about the peer.
        self.filled_up = n > 0 && self.end == self.buf.len() && n >= self.buf.len() / 2;
    }

    /// Called when the frames of the last read are used up. If that read filled the buffer with
    /// `short` frames (the last one may be cut off), the peer is sending faster than this side
    /// reads: the next buffer is the largest, so one read brings many of them (one step, not
    /// doubling: each step is an allocation). The start of a long message filling it says
    /// nothing: its payload goes straight into the message anyway.
    #[inline]
    fn adapt(&mut self, short: bool) {
        if mem::take(&mut self.filled_up) && short {
            self.size = RECV_BUF_MAX;
        }
    }

    /// Records that a read found nothing to read (`WouldBlock`, a timeout): the connection is
    /// quiet. With nothing buffered between frames, the receive buffer's memory goes back, so
    /// that a quiet connection holds none, and the next buffer starts small again.
    pub fn quiet(&mut self) {
        if matches!(self.state, State::Idle) && self.pos == self.end {
            self.buf = Box::default();
            self.size = RECV_BUF_LEN;
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Keeps the receive buffer after a read that drained the socket, for a driver that hands
    /// it back itself once a read finds nothing ([`take_idle_buffer`](Self::take_idle_buffer)).
    #[cfg(feature = "tokio")]
    pub(crate) fn keep_buffer_when_drained(&mut self) {
        self.drained_gives_back = false;
    }

    /// The receive buffer, if the decoder holds one with nothing in it between frames: for a
    /// driver to keep for the next read of any connection, since this one waits.
    #[cfg(feature = "tokio")]
    pub(crate) fn take_idle_buffer(&mut self) -> Option<Box<[u8]>> {
        if matches!(self.state, State::Idle) && self.pos == self.end && !self.buf.is_empty() {
            self.pos = 0;
            self.end = 0;
            return Some(mem::take(&mut self.buf));
        }
        None
    }

    /// Gives the decoder `buf` (its bytes are overwritten) as its receive buffer, while it
    /// [`wants_buffer`](Self::wants_buffer); a larger one than it would take is used whole.
    #[cfg(feature = "tokio")]
    pub(crate) fn give_buffer(&mut self, buf: Box<[u8]>) {
        if self.wants_buffer() && !buf.is_empty() {
            self.size = self.size.max(buf.len());
            self.buf = buf;
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Copies as much of `bytes` as [`read_bufs`](Self::read_bufs) takes and returns how much:
    /// the driver for input that is already in memory (tests, fuzzing, a datagram of frames).
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut copied = 0;
        for dst in self.read_bufs() {
            let n = dst.len().min(bytes.len() - copied);
            dst[..n].copy_from_slice(&bytes[copied..copied + n]);
            copied += n;
        }
        self.advance(copied);
        copied
    }

    /// Records that the peer closed its end.
    ///
    /// # Errors
    ///
    /// `Ok(())` is a clean close, between frames with nothing buffered. A close mid-frame is
    /// [`FrameError::UnexpectedEof`]; after an error, [`FrameError::Broken`].
    pub fn eof(&mut self) -> Result<(), FrameError> {
        let err = match self.state {
            State::Broken => return Err(FrameError::Broken),
            State::Idle => {
                let have = self.end - self.pos;
                if have == 0 {
                    return Ok(());
                }
                let expected = match frame::decode_header(&self.buf[self.pos..self.end], u64::MAX) {
                    Ok(Decoded::NeedMore(need)) => need,
                    // `decode` would have taken a whole header: only a partial one stays.
                    _ => MAX_HEADER_LEN,
                };
                FrameError::UnexpectedEof {
                    read: have as u64,
                    expected: expected as u64,
                }
            }
            State::Payload {
                header_len,
                len,
                filled,
            } => FrameError::UnexpectedEof {
                read: (header_len + filled) as u64,
                // With no limit a peer can claim up to u64::MAX: saturate, never overflow.
                expected: (header_len as u64).saturating_add(len as u64),
            },
        };
        Err(self.fail(err))
    }

    /// Marks the decoder unusable because the read under a partial payload failed for good (not
    /// a timeout): the bytes of that read are gone, so the stream has lost its frame boundaries.
    /// Between frames nothing was lost and the decoder stays usable.
    pub fn read_failed(&mut self) {
        if let State::Payload { .. } = self.state {
            self.fail(FrameError::Broken);
        }
    }

    /// The bytes received and not yet handed out, for a caller taking the stream back; the
    /// decoder is left empty. A partial payload, if any, comes first, after its length prefix.
    /// Descriptors that came with those bytes are closed.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.fds = None;
        let mut out = Vec::new();
        if let State::Payload { len, filled, .. } = self.state {
            out.extend_from_slice(&frame::Header::new(len as u64));
            out.extend_from_slice(&self.msg[..filled]);
        }
        out.extend_from_slice(&self.buf[self.pos..self.end]);
        self.pos = 0;
        self.end = 0;
        self.buf = Box::default();
        self.size = RECV_BUF_LEN;
        self.msg = Vec::new();
        self.state = State::Idle;
        out
    }

    fn fail(&mut self, err: FrameError) -> FrameError {
        self.state = State::Broken;
        self.fds = None;
        self.msg = Vec::new();
        // Nothing more will be decoded: the buffered bytes are of no use.
        self.buf = Box::default();
        self.pos = 0;
        self.end = 0;
        err
    }

    /// Makes room behind a partial header: compacts the buffer if its tail cannot hold a whole
    /// one.
    #[inline]
    fn make_room(&mut self) {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.buf.len() - self.pos < MAX_HEADER_LEN {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
    }

    /// How far a read into the receive buffer starting at `from` may go. After a long message
    /// only one header's worth, so that the payload behind it goes straight to its destination
    /// instead of through this buffer; otherwise all of it, so that one read can bring several
    /// small frames.
    #[inline]
    fn room(&self, from: usize) -> usize {
        if self.large {
            (from + MAX_HEADER_LEN).min(self.buf.len())
        } else {
            self.buf.len()
        }
    }
}

/// The frame at the start of `src`, if it is whole and within `max_len`, copied into `msg`
/// (its contents replaced: one copy, no zeroed resize), with the bytes it took and its payload
/// length. Anything else, a partial frame or a bad prefix, is for the state machine: the common
/// case of small messages skips it.
#[inline]
fn whole_frame(src: &[u8], max_len: u64, msg: &mut Vec<u8>) -> Option<(usize, usize)> {
    let Ok(Decoded::Header {
        header_len,
        payload_len,
    }) = frame::decode_header(src, max_len)
    else {
        return None;
    };
    let payload = &src[header_len..];
    if payload_len > payload.len() as u64 {
        return None;
    }
    let len = payload_len as usize;
    msg.clear();
    msg.extend_from_slice(&payload[..len]);
    Some((header_len + len, len))
}

/// Whether `bytes` are whole frames back to back. Any length is taken: this only sizes a buffer,
/// and the decode step checks every prefix.
fn ends_with_a_frame(bytes: &[u8]) -> bool {
    let mut pos = 0;
    while pos < bytes.len() {
        let Ok(Decoded::Header {
            header_len,
            payload_len,
        }) = frame::decode_header(&bytes[pos..], u64::MAX)
        else {
            return false;
        };
        let left = bytes.len() - pos - header_len;
        if payload_len > left as u64 {
            return false;
        }
        pos += header_len + payload_len as usize;
    }
    true
}

/// Where the second buffer of a read is, in [`Decoder::plan`].
enum Second {
    /// The first `n` bytes of the memory lent.
    Lent(usize),
    /// This range of the receive buffer.
    Own(Range<usize>),
    /// Nowhere: the read goes into the message only, or nowhere.
    Empty,
}

/// The second buffer of a read into uninitialised lent memory
/// ([`Decoder::read_bufs_uninit`]).
pub(crate) enum Room<'a, 'l> {
    /// The decoder's receive buffer (or nothing).
    Own(&'a mut [u8]),
    /// The lent memory, for the read to write.
    Lent(&'l mut [MaybeUninit<u8>]),
}

/// Runs `f` with uninitialised stack memory of at least `len` bytes (a decoder's
/// [`lent_len`](Decoder::lent_len)) to lend a read ([`Decoder::read_bufs_uninit`]): nothing
/// is zeroed, which for a small message cost more than its copy.
#[inline]
pub(crate) fn lend<R>(len: usize, f: impl FnOnce(&mut [MaybeUninit<u8>]) -> R) -> R {
    if len <= MAX_HEADER_LEN {
        f(&mut [MaybeUninit::uninit(); MAX_HEADER_LEN])
    } else {
        f(&mut [MaybeUninit::uninit(); RECV_BUF_LEN])
    }
}

/// Grows `buf` so that at least `need` bytes (never more than `len`) are addressable, in steps
/// that follow the bytes received (`filled`) rather than the announced `len`.
fn grow(buf: &mut Vec<u8>, need: usize, len: usize, filled: usize) {
    if buf.len() < need {
        let target = need.max(filled.saturating_mul(2)).max(GROW_STEP).min(len);
        buf.resize(target, 0);
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buffered_len())
            .field("max_message_len", &self.max_len)
            .field("broken", &self.is_broken())
            .finish()
    }
}

#[cfg(test)]
mod tests;
