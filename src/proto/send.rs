//! The send half of the protocol core, with no I/O and no locks: how a message is laid out for
//! writing, and the unwritten rest of a frame that a write stopped in the middle of.
//!
//! A driver asks for the buffers of a frame, writes what the socket takes, and, when the socket
//! stops taking bytes part-way through, tells [`SendState::stopped`]: the rest is then kept here
//! (copied, since the caller's message is only borrowed) and must go out, through
//! [`pending`](SendState::pending) and [`advance`](SendState::advance), before any other frame.
//! Only that case copies: a frame written whole is never copied beyond the small-frame copy.

use std::io::{self, IoSlice};

use crate::error::Error;
use crate::frame::Header;

/// Frames up to this long (header included) are copied into one buffer and written with one
/// `send(2)`: for a short frame the copy costs less than a gathering `sendmsg(2)` (the README's
/// performance section has the figures).
pub(crate) const SMALL_FRAME_MAX: usize = 2048;

/// Frames up to this long get a scratch of this size, so that the copy of a short frame zeroes
/// no more stack than it fills, about.
const TINY_FRAME_MAX: usize = 128;

/// Stack room for the copy of a small frame (see [`SMALL_FRAME_MAX`]), zeroed only when a
/// frame is copied into it and only as much as the frame's size class needs: zeroing 2 KiB for
/// a 68-byte frame cost more than the copy.
#[derive(Default)]
pub(crate) struct Scratch {
    tiny: Option<[u8; TINY_FRAME_MAX]>,
    small: Option<[u8; SMALL_FRAME_MAX]>,
}

impl Scratch {
    /// Copies the frame of `msg` (`header`, then `msg`), or the unwritten rest of one, into
    /// this scratch and returns it; `None` for a frame longer than [`SMALL_FRAME_MAX`], which
    /// is written as the header and the payload where they are.
    #[inline]
    pub(crate) fn frame<'a>(&'a mut self, header: &[u8], msg: &[u8]) -> Option<&'a [u8]> {
        let len = header.len() + msg.len();
        let room: &mut [u8] = if len <= TINY_FRAME_MAX {
            self.tiny.insert([0; TINY_FRAME_MAX])
        } else if len <= SMALL_FRAME_MAX {
            self.small.insert([0; SMALL_FRAME_MAX])
        } else {
            return None;
        };
        room[..header.len()].copy_from_slice(header);
        room[header.len()..len].copy_from_slice(msg);
        Some(&room[..len])
    }
}

/// The most descriptors one message may carry: Linux's `SCM_MAX_FD` (`include/net/scm.h`), which
/// other systems do not exceed usefully either.
pub(crate) const MAX_FDS: usize = 253;

/// [`Error::TooManyFds`] when `count` descriptors are more than one message carries: checked
/// before anything is sent, so a refused message leaves no trace on the wire.
pub(crate) fn check_fds(count: usize) -> Result<(), Error> {
    if count > MAX_FDS {
        return Err(Error::TooManyFds {
            count,
            max: MAX_FDS,
        });
    }
    Ok(())
}

/// Whether an I/O error means "not now" (a full socket in non-blocking mode, or a timeout) rather
/// than a failure.
pub(crate) fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// What one connection's sending side remembers between writes.
#[derive(Debug, Default)]
pub(crate) struct SendState {
    /// The rest of an accepted frame (or batch) that the socket did not take: it goes out before
    /// anything else. Empty, with no capacity, when nothing waits.
    tail: Vec<u8>,
    /// How much of `tail` is already written.
    written: usize,
    /// Set when a write failed for good part-way through a frame: the peer would lose step on
    /// any later frame, so none may follow.
    failed: Option<io::ErrorKind>,
}

impl SendState {
    /// The queued bytes still to write, before anything else.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.tail[self.written..]
    }

    /// How many queued bytes are still to write.
    pub(crate) fn pending_len(&self) -> usize {
        self.tail.len() - self.written
    }

    /// The kind of the error that made sending impossible, if one did.
    pub(crate) fn failed(&self) -> Option<io::ErrorKind> {
        self.failed
    }

    /// Notes that the first `n` bytes of [`pending`](Self::pending) were written. Once all are,
    /// the queue's memory goes back at once: it may have held most of a large message.
    pub(crate) fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.pending_len());
        self.written += n;
        if self.written == self.tail.len() {
            self.tail = Vec::new();
            self.written = 0;
        }
    }

    /// A write of one message or batch stopped with `err` after `written` bytes of it went out;
    /// `rest` is what is left of the buffers being written, and `more` the messages of the batch
    /// that were not yet laid out. Decides what the caller is told:
    ///
    /// - nothing written: the message was not accepted, and the error says why (a timeout may be
    ///   retried as it is);
    /// - a timeout after part of it: the message is accepted, the rest is kept, `Ok`;
    /// - any other error after part of it: the error, and no send may follow.
    pub(crate) fn stopped<M: AsRef<[u8]>>(
        &mut self,
        err: io::Error,
        written: usize,
        rest: &[IoSlice<'_>],
        more: &[M],
    ) -> io::Result<()> {
        if written == 0 {
            return Err(err);
        }
        if !is_retryable(&err) {
            self.fail(err.kind());
            return Err(err);
        }
        debug_assert_eq!(self.pending_len(), 0, "a queued rest goes out first");
        let frames = more.iter().map(|m| {
            let len = m.as_ref().len();
            Header::new(len as u64).len() + len
        });
        let len = rest.iter().map(|b| b.len()).sum::<usize>() + frames.sum::<usize>();
        let mut tail = Vec::with_capacity(len);
        for buf in rest {
            tail.extend_from_slice(buf);
        }
        for msg in more {
            let msg = msg.as_ref();
            tail.extend_from_slice(&Header::new(msg.len() as u64));
            tail.extend_from_slice(msg);
        }
        self.tail = tail;
        self.written = 0;
        Ok(())
    }

    /// A write failed for good part-way through a frame: drops what was queued and refuses every
    /// later send.
    pub(crate) fn fail(&mut self, kind: io::ErrorKind) {
        self.tail = Vec::new();
        self.written = 0;
        self.failed = Some(kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn would_block() -> io::Error {
        io::ErrorKind::WouldBlock.into()
    }

    #[test]
    fn a_small_frame_is_header_then_payload_in_one_buffer() {
        let mut scratch = Scratch::default();
        assert_eq!(
            scratch.frame(&Header::new(3), b"abc"),
            Some(&b"\0\0\0\x03abc"[..])
        );
        // Each size class at its edges: the last tiny frame, the first and the last small one.
        for len in [TINY_FRAME_MAX, TINY_FRAME_MAX + 1, SMALL_FRAME_MAX] {
            let msg = vec![1; len - 4];
            let header = Header::new(msg.len() as u64);
            let frame = scratch.frame(&header, &msg).unwrap();
            assert_eq!(
                (frame.len(), &frame[..4], &frame[4..]),
                (len, &header[..], &msg[..])
            );
        }
        let longer = vec![1; SMALL_FRAME_MAX - 3];
        assert_eq!(
            scratch.frame(&Header::new(longer.len() as u64), &longer),
            None
        );
    }

    #[test]
    fn nothing_written_is_not_accepted_and_keeps_nothing() {
        let mut state = SendState::default();
        let err = state
            .stopped::<&[u8]>(would_block(), 0, &[IoSlice::new(b"abc")], &[b"more"])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!((state.pending_len(), state.failed()), (0, None));
    }

    #[test]
    fn a_timeout_part_way_keeps_the_rest_and_the_batch_behind_it() {
        let mut state = SendState::default();
        let rest = [IoSlice::new(b"lo"), IoSlice::new(b"\0\0\0\x01x")];
        state
            .stopped::<&[u8]>(would_block(), 3, &rest, &[b"yz", b""])
            .unwrap();
        let want = b"lo\0\0\0\x01x\0\0\0\x02yz\0\0\0\0";
        assert_eq!(state.pending(), want);
        // Written a few bytes at a time, it comes out whole and then frees its memory.
        state.advance(4);
        assert_eq!(state.pending(), &want[4..]);
        state.advance(want.len() - 4);
        assert_eq!(state.pending_len(), 0);
        assert_eq!(state.tail.capacity(), 0);
    }

    #[test]
    fn a_failure_part_way_refuses_later_sends() {
        let mut state = SendState::default();
        let err = state
            .stopped::<&[u8]>(
                io::ErrorKind::BrokenPipe.into(),
                1,
                &[IoSlice::new(b"bc")],
                &[],
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(state.failed(), Some(io::ErrorKind::BrokenPipe));
        assert_eq!(state.pending_len(), 0);
    }
}
