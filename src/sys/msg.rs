//! The message calls: `send(2)`, `sendmsg(2)`, `recvmsg(2)` and `sendto(2)`, with the control
//! data that carries descriptors (`SCM_RIGHTS`) and timestamps (`SO_TIMESTAMP`), and one
//! datagram at a time. nix's `MsgFlags` and the `cmsghdr` walk stay here; the callers see
//! [`Control`] and [`Datagram`].

use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags};

use super::addr::{Destination, SenderAddr, UnixAddr};
use super::fd::set_cloexec;
use super::retry;
use super::socket::NO_SIGPIPE;
use crate::proto::{Room, MAX_FDS};

/// `send(2)` with `MSG_NOSIGNAL`.
#[inline]
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    retry(|| socket::send(fd.as_raw_fd(), buf, NO_SIGPIPE))
}

/// `sendmsg(2)` with `MSG_NOSIGNAL`: a gathering write. With no control messages nix allocates
/// nothing (`vec![0; 0]`).
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    retry(|| socket::sendmsg::<socket::UnixAddr>(fd.as_raw_fd(), bufs, &[], NO_SIGPIPE, None))
}

/// Room for one `SCM_RIGHTS` message of [`MAX_FDS`] descriptors and one `SO_TIMESTAMP` message
/// (a SEQPACKET socket's, see [`recv_datagram`]), aligned as a `cmsghdr`: the control buffer
/// every read of a Unix stream takes, on the stack.
#[repr(C, align(8))]
struct ControlBuf([u8; control_len()]);

/// `CMSG_SPACE` of [`MAX_FDS`] descriptors.
#[allow(unsafe_code)]
const fn control_len() -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument; it reads no memory.
    unsafe {
        nix::libc::CMSG_SPACE((MAX_FDS * size_of::<std::os::fd::RawFd>()) as u32) as usize
            + nix::libc::CMSG_SPACE(size_of::<nix::libc::timeval>() as u32) as usize
    }
}

cfg_if::cfg_if! {
    // The targets whose `recvmsg(2)` takes `MSG_CMSG_CLOEXEC`, listed once.
    if #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))] {
        /// Received descriptors are close-on-exec from the start where the kernel can make
        /// them so.
        const CMSG_CLOEXEC: MsgFlags = MsgFlags::MSG_CMSG_CLOEXEC;
    } else {
        /// Elsewhere `take_control` sets close-on-exec after the receive.
        const CMSG_CLOEXEC: MsgFlags = MsgFlags::empty();
    }
}

/// What one `recvmsg(2)` with a control buffer brought besides its bytes. `pub` only for the
/// sealed [`Stream`](crate::Stream) plumbing that returns it; nothing outside the crate can
/// name it.
#[derive(Debug, Default)]
pub struct Control {
    /// The descriptors of its `SCM_RIGHTS` messages, in order, close-on-exec. Empty (and not
    /// allocated) when none came.
    pub(crate) fds: Vec<OwnedFd>,
    /// `MSG_CTRUNC`: some control data did not fit or could not be installed (for example at
    /// the process's descriptor limit), so descriptors were lost.
    pub(crate) truncated: bool,
}

/// The descriptors in the control data `hdr` describes, owned, and whether it was truncated.
/// Where the kernel has no `MSG_CMSG_CLOEXEC`, close-on-exec is set here.
#[allow(unsafe_code)]
#[inline]
fn take_control(hdr: &nix::libc::msghdr) -> Control {
    use nix::libc;
    use std::os::fd::FromRawFd;
    let mut control = Control {
        fds: Vec::new(),
        truncated: hdr.msg_flags & libc::MSG_CTRUNC != 0,
    };
    // SAFETY: `hdr` was filled by recvmsg(2): `msg_control`/`msg_controllen` describe the control
    // data the kernel wrote into our live buffer, which the CMSG macros walk within its bounds.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/NXTHDR return null or a header inside the control data.
        let c = unsafe { &*cmsg };
        if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is arithmetic.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let n = (c.cmsg_len as usize).saturating_sub(header) / size_of::<libc::c_int>();
            // SAFETY: as above; the data of an SCM_RIGHTS message is `n` ints, maybe unaligned.
            let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<libc::c_int>();
            for i in 0..n {
                // SAFETY: `i < n`, within this message's data.
                let raw = unsafe { data.add(i).read_unaligned() };
                // SAFETY: the kernel just installed `raw` in this process for us: we own it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                if CMSG_CLOEXEC.is_empty() {
                    // Best effort: the descriptor is ours either way, and closing it would lose
                    // what the peer sent.
                    let _ = set_cloexec(std::os::fd::AsFd::as_fd(&fd));
                }
                control.fds.push(fd);
            }
        }
        // SAFETY: `cmsg` is a header of this control data.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    control
}

/// `recvmsg(2)` into the `len` iovecs at `iov`, filled in order, with room for [`MAX_FDS`]
/// descriptors on the stack (`MSG_CMSG_CLOEXEC`), and `MSG_DONTWAIT` if `nowait`: a read of a
/// Unix stream that keeps the descriptors sent with its bytes. With none sent it allocates
/// nothing.
///
/// # Safety
///
/// `iov` points to `len` iovecs, each describing memory writable for the call.
#[allow(unsafe_code)]
#[inline]
unsafe fn recvmsg_with_fds(
    fd: BorrowedFd<'_>,
    iov: *mut nix::libc::iovec,
    len: usize,
    nowait: bool,
) -> io::Result<(usize, Control)> {
    use nix::libc;
    let mut control = std::mem::MaybeUninit::<ControlBuf>::uninit();
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    let mut flags = CMSG_CLOEXEC;
    if nowait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let got = retry(|| {
        // Set again on each try: the kernel overwrites the control length.
        hdr.msg_iov = iov;
        hdr.msg_iovlen = len as _;
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = size_of::<ControlBuf>() as _;
        // SAFETY: the iovecs describe writable memory (the caller's promise), and the control
        // buffer outlives the call.
        Errno::result(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut hdr, flags.bits()) })
    })? as usize;
    Ok((got, take_control(&hdr)))
}

/// The two buffers of one read of a stream (see `Decoder::read_bufs_uninit`): the rest of a
/// payload, in its message, then the decoder's receive buffer or memory lent in its place,
/// which may be uninitialised. The reads here only write them, and [`lent`](Self::lent) hands
/// back only the bytes that the last read wrote. `pub` only for the sealed
/// [`Stream`](crate::Stream) plumbing that takes it; nothing outside the crate can name it.
pub struct ReadBufs<'a, 'l> {
    iov: [nix::libc::iovec; 2],
    /// Whether the second buffer is lent memory.
    lent: bool,
    /// How many bytes the last read put into the buffers, in order; set only by the reads here.
    filled: usize,
    _bufs: PhantomData<(&'a mut [u8], &'l mut [MaybeUninit<u8>])>,
}

impl std::fmt::Debug for ReadBufs<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadBufs")
            .field("lens", &self.iov.map(|iov| iov.iov_len))
            .field("lent", &self.lent)
            .field("filled", &self.filled)
            .finish()
    }
}

impl<'a, 'l> ReadBufs<'a, 'l> {
    /// The rest of a payload, then the receive buffer or the lent memory.
    #[inline]
    pub(crate) fn new(first: &'a mut [u8], second: Room<'a, 'l>) -> Self {
        let iovec = |base: *mut u8, len| nix::libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        let (second, lent) = match second {
            Room::Own(buf) => (iovec(buf.as_mut_ptr(), buf.len()), false),
            Room::Lent(mem) => (iovec(mem.as_mut_ptr().cast(), mem.len()), true),
        };
        ReadBufs {
            iov: [iovec(first.as_mut_ptr(), first.len()), second],
            lent,
            filled: 0,
            _bufs: PhantomData,
        }
    }

    /// The length of the first buffer, the payload's rest.
    #[cfg(test)]
    pub(crate) fn first_len(&self) -> usize {
        self.iov[0].iov_len
    }

    /// The bytes the last read wrote into the lent memory; none if the second buffer was the
    /// receive buffer.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) fn lent(self) -> &'l [u8] {
        if !self.lent {
            return &[];
        }
        let n = self
            .filled
            .saturating_sub(self.iov[0].iov_len)
            .min(self.iov[1].iov_len);
        // SAFETY: the last read returned `filled` and the kernel fills the iovecs in order, so
        // the first `n` bytes of the lent memory are written; it stays borrowed for 'l.
        unsafe { std::slice::from_raw_parts(self.iov[1].iov_base.cast::<u8>().cast_const(), n) }
    }

    /// Makes the read `read` into the iovecs, without an empty one (the kernel copies into a
    /// single buffer faster than into a list), and records how many bytes it wrote. With no
    /// room at all, an error rather than a read: it would return 0, which reads as the peer's
    /// close.
    ///
    /// # Safety
    ///
    /// `read` writes only within the `len` iovecs at the pointer it is given, and returns how
    /// many bytes it wrote, first.
    #[allow(unsafe_code)]
    #[inline]
    unsafe fn read<T>(
        &mut self,
        read: impl FnOnce(*mut nix::libc::iovec, usize) -> io::Result<(usize, T)>,
    ) -> io::Result<(usize, T)> {
        self.filled = 0;
        let (iov, len) = match self.iov.map(|iov| iov.iov_len > 0) {
            [true, true] => (self.iov.as_mut_ptr(), 2),
            [false, true] => (self.iov[1..].as_mut_ptr(), 1),
            [true, false] => (self.iov.as_mut_ptr(), 1),
            [false, false] => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a stream read with no room to read into",
                ))
            }
        };
        let got = read(iov, len)?;
        self.filled = got.0;
        Ok(got)
    }
}

/// [`recvmsg_with_fds`] into `bufs`: how every read of a Unix stream is made.
#[allow(unsafe_code)]
#[inline]
pub(crate) fn recv_bufs_with_fds(
    fd: BorrowedFd<'_>,
    bufs: &mut ReadBufs<'_, '_>,
    nowait: bool,
) -> io::Result<(usize, Control)> {
    // SAFETY: `ReadBufs` holds the mutable borrows of the memory its iovecs describe, and
    // recvmsg(2) writes only there and returns the count first.
    unsafe { bufs.read(|iov, len| recvmsg_with_fds(fd, iov, len, nowait)) }
}

/// A read into `bufs` with no control data (a TCP stream): `recv(2)` into one buffer, since the
/// kernel takes that path faster than a list's, else `readv(2)`, or `recvmsg(2)` with
/// `MSG_DONTWAIT` if `nowait`.
#[allow(unsafe_code)]
#[inline]
pub(crate) fn recv_bufs(
    fd: BorrowedFd<'_>,
    bufs: &mut ReadBufs<'_, '_>,
    nowait: bool,
) -> io::Result<usize> {
    use nix::libc;
    let read = |iov: *mut libc::iovec, len| {
        let flags = if nowait { libc::MSG_DONTWAIT } else { 0 };
        retry(|| {
            let n = if len == 1 {
                // SAFETY: `iov` points to one iovec describing writable memory (`ReadBufs::read`'s
                // promise); recv(2) writes only there.
                unsafe { libc::recv(fd.as_raw_fd(), (*iov).iov_base, (*iov).iov_len, flags) }
            } else if nowait {
                // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
                let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                hdr.msg_iov = iov;
                hdr.msg_iovlen = len as _;
                // SAFETY: the iovecs describe writable memory (`ReadBufs::read`'s promise).
                unsafe { libc::recvmsg(fd.as_raw_fd(), &mut hdr, flags) }
            } else {
                // SAFETY: as above.
                unsafe { libc::readv(fd.as_raw_fd(), iov, len as libc::c_int) }
            };
            Errno::result(n)
        })
        .map(|n| (n as usize, ()))
    };
    // SAFETY: `ReadBufs` holds the mutable borrows of the memory its iovecs describe, and
    // recv(2), readv(2) and recvmsg(2) write only there and return the count.
    unsafe { bufs.read(read) }.map(|(n, ())| n)
}

/// `sendmsg(2)` with `MSG_NOSIGNAL` of `bufs` with `fds` attached (`SCM_RIGHTS`), to `addr` if
/// given (an unconnected datagram socket), `MSG_DONTWAIT` if `nowait`. The kernel attaches the
/// descriptors to the first bytes of this call.
pub(crate) fn send_with_fds(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
    addr: Option<&UnixAddr>,
    nowait: bool,
) -> io::Result<usize> {
    let raw: Vec<std::os::fd::RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let cmsgs = [socket::ControlMessage::ScmRights(&raw)];
    let cmsgs: &[socket::ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsgs };
    let mut flags = NO_SIGPIPE;
    if nowait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let addr = addr.map(UnixAddr::as_nix);
    retry(|| socket::sendmsg(fd.as_raw_fd(), bufs, cmsgs, flags, addr))
}

/// `MSG_TRUNC` on input makes Linux return a datagram's real length even when it did not fit;
/// elsewhere only the output flag says that it was cut.
#[cfg(any(target_os = "linux", target_os = "android"))]
const REAL_LEN: MsgFlags = MsgFlags::MSG_TRUNC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const REAL_LEN: MsgFlags = MsgFlags::empty();

/// Whether `recvfrom(2)` alone tells a datagram's real length (Linux's input `MSG_TRUNC`), so
/// that a receive that wants no descriptors or timestamp need not take `recvmsg(2)`'s slower
/// path in the kernel.
const REAL_LEN_BY_RECVFROM: bool = !REAL_LEN.is_empty();

/// [`recv_datagram`] with no control data: `recvfrom(2)` with `MSG_TRUNC`, which returns the
/// datagram's real length, so a longer one than `max` is known to be cut; the sender's address
/// only `with_sender`. `buf` is empty with room for `max` bytes.
#[allow(unsafe_code)]
#[inline]
fn recv_datagram_plain<A: SenderAddr>(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    with_sender: bool,
    peek: bool,
) -> io::Result<Datagram<A>> {
    use nix::libc;
    let flags = if peek {
        REAL_LEN | MsgFlags::MSG_PEEK
    } else {
        REAL_LEN
    };
    let room = buf.spare_capacity_mut().as_mut_ptr().cast();
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut addr_len: libc::socklen_t = 0;
    let got = retry(|| {
        let (name, name_len) = if with_sender {
            // Set again on each try: the kernel overwrites the length.
            addr_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            (addr.as_mut_ptr().cast(), &raw mut addr_len)
        } else {
            (std::ptr::null_mut(), std::ptr::null_mut())
        };
        // SAFETY: `room` points at `max` writable bytes of `buf`'s spare capacity (reserved by
        // the caller), and recvfrom(2) writes at most `max` of them, whatever length it
        // returns; `name` is null or a whole sockaddr_storage of `addr_len` bytes.
        let n = unsafe { libc::recvfrom(fd.as_raw_fd(), room, max, flags.bits(), name, name_len) };
        Errno::result(n)
    })? as usize;
    let truncated = got > max;
    // SAFETY: recvfrom(2) wrote `got` bytes at the start of the spare capacity, of which the
    // caller reserved `max`.
    let len = unsafe { keep_received(buf, got, max, truncated) };
    // SAFETY: zeroed above, the storage is initialised; the kernel filled `addr_len` bytes (0
    // if not asked, or for an unnamed sender, for which `from_sockaddr` returns `None`).
    let from = A::from_sockaddr(unsafe { addr.assume_init_ref() }, addr_len);
    Ok(Datagram {
        len,
        truncated,
        from,
        stamped: false,
        control: Control::default(),
    })
}

/// One datagram from `recvmsg(2)`.
pub(crate) struct Datagram<A> {
    /// Bytes in the datagram (on Linux even when more than the buffer held).
    pub(crate) len: usize,
    /// Whether the datagram was longer than the buffer.
    pub(crate) truncated: bool,
    /// The sender, if it has an address.
    pub(crate) from: Option<A>,
    /// Whether control data came with it, or was cut (`MSG_CTRUNC`): with `SO_TIMESTAMP` set,
    /// every packet brings some and end of file none, which is how an empty packet and end of
    /// file on a `SOCK_SEQPACKET` socket (both 0 bytes) tell apart.
    pub(crate) stamped: bool,
    /// The descriptors that came with it, when asked for.
    pub(crate) control: Control,
}

/// Receives one datagram of at most `max` bytes into `buf` with `recvmsg(2)` (on Linux with
/// `recvfrom(2)` when no descriptors or timestamp are wanted); with `peek`
/// (`MSG_PEEK`) it stays queued. With `stamped` (and not `with_fds`), there is room for exactly
/// one `SO_TIMESTAMP` control message (see [`Datagram::stamped`]) and no more: descriptors a
/// peer attached then find no room and the kernel closes them (`MSG_CTRUNC`), so none is ever
/// installed here.
///
/// `buf` is cleared and the datagram lands in its spare capacity, which is never zeroed: a
/// receive limit of 200 KiB would otherwise cost a 200 KiB memset per message, whatever its size.
/// `buf` holds the datagram afterwards, or nothing if it was truncated. The sender's address is
/// asked of the kernel only `with_sender`: a connected socket knows its peer. With `with_fds` the
/// descriptors sent with it are received too (close-on-exec); without, the kernel closes them.
#[allow(unsafe_code)]
pub(crate) fn recv_datagram<A: SenderAddr>(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    with_sender: bool,
    peek: bool,
    with_fds: bool,
    stamped: bool,
) -> io::Result<Datagram<A>> {
    use nix::libc;
    use std::mem::{size_of, MaybeUninit};

    buf.clear();
    buf.reserve(max);
    if REAL_LEN_BY_RECVFROM && !with_fds && !stamped {
        return recv_datagram_plain(fd, buf, max, with_sender, peek);
    }
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    // On the stack, aligned as a `cmsghdr` and never read by us, so neither allocated nor zeroed:
    // the kernel writes what it reports in `msg_controllen`.
    let mut stamp = MaybeUninit::<[libc::cmsghdr; 4]>::uninit();
    // SAFETY: CMSG_SPACE only computes a length.
    let stamp_len = unsafe { libc::CMSG_SPACE(size_of::<libc::timeval>() as libc::c_uint) };
    let stamp_len = (stamp_len as usize).min(size_of::<[libc::cmsghdr; 4]>());
    let mut iov = libc::iovec {
        iov_base: buf.spare_capacity_mut().as_mut_ptr().cast(),
        iov_len: max,
    };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths); zeroing also fills the
    // private padding fields some platforms have.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    let mut control = std::mem::MaybeUninit::<ControlBuf>::uninit();
    let mut flags = if peek {
        REAL_LEN | MsgFlags::MSG_PEEK
    } else {
        REAL_LEN
    };
    if with_fds {
        flags |= CMSG_CLOEXEC;
    }
    let got = retry(|| {
        if with_fds {
            hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_controllen = size_of::<ControlBuf>() as _;
        }
        // Set again on each try: the kernel overwrites the name length.
        if with_sender {
            hdr.msg_name = addr.as_mut_ptr().cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        if stamped && !with_fds {
            hdr.msg_control = stamp.as_mut_ptr().cast();
            // The field's type differs between platforms.
            #[allow(clippy::useless_conversion)]
            {
                hdr.msg_controllen = stamp_len.try_into().unwrap_or_default();
            }
        }
        // SAFETY: `iov` points at `max` writable bytes of `buf`'s spare capacity (reserved
        // above), `msg_name` at a whole sockaddr_storage and `msg_control` (if set) at a whole
        // control buffer or `stamp`'s `msg_controllen` bytes; all outlive the call.
        Errno::result(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut hdr, flags.bits()) })
    })? as usize;
    // Taken before anything can fail: the descriptors are ours to close.
    let control = if with_fds {
        take_control(&hdr)
    } else {
        Control::default()
    };
    let truncated = hdr.msg_flags & libc::MSG_TRUNC != 0 || got > max;
    let stamped = hdr.msg_controllen > 0 || hdr.msg_flags & libc::MSG_CTRUNC != 0;
    // SAFETY: recvmsg(2) wrote `got` bytes at the start of the spare capacity, of which `max`
    // were reserved above.
    let len = unsafe { keep_received(buf, got, max, truncated) };
    // An unnamed sender (or none asked for) has `msg_namelen` 0, for which `from_sockaddr`
    // returns `None`.
    // SAFETY: zeroed above, the storage is initialised; the kernel filled `msg_namelen` bytes.
    let from = A::from_sockaddr(unsafe { addr.assume_init_ref() }, hdr.msg_namelen);
    Ok(Datagram {
        len,
        truncated,
        from,
        stamped,
        control,
    })
}

/// Keeps in `buf` the `got` bytes a receive wrote, unless the datagram was `truncated` (longer
/// than `max`): then `buf` stays empty, as no part of a cut datagram is handed out. Returns the
/// datagram's length, more than `max` if it was cut (the real one where the kernel tells it).
///
/// # Safety
///
/// `buf` is empty with at least `max` bytes of capacity, and the receive wrote its first `got`
/// bytes (at most `max` of them unless `truncated`).
#[allow(unsafe_code)]
#[inline]
unsafe fn keep_received(buf: &mut Vec<u8>, got: usize, max: usize, truncated: bool) -> usize {
    if truncated {
        return got.max(max.saturating_add(1));
    }
    // SAFETY: not truncated, so `got <= max <= capacity`, and those bytes were written (the
    // caller's promise).
    unsafe { buf.set_len(got) };
    got
}

/// Sets `SO_TIMESTAMP`: every packet received then brings a timestamp control message.
pub(crate) fn set_timestamp(fd: BorrowedFd<'_>) -> io::Result<()> {
    retry(|| socket::setsockopt(&fd, socket::sockopt::ReceiveTimestamp, &true))
}

/// `sendto(2)` with `MSG_DONTWAIT` and `MSG_NOSIGNAL`: a send that never waits for room, on a
/// socket that stays blocking for everyone else.
pub(crate) fn send_to_nowait(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    addr: Destination<'_>,
) -> io::Result<usize> {
    let inet;
    let addr: &dyn socket::SockaddrLike = match addr {
        Destination::Inet(a) => {
            inet = socket::SockaddrStorage::from(a);
            &inet
        }
        Destination::Unix(a) => a.as_nix(),
    };
    retry(|| {
        socket::sendto(
            fd.as_raw_fd(),
            buf,
            addr,
            NO_SIGPIPE | MsgFlags::MSG_DONTWAIT,
        )
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A read into a message's rest and lent memory hands back exactly the bytes it wrote into
    /// the lent memory: none when it filled only the first buffer, none when the second was
    /// the decoder's own buffer, and on both stream kinds' reads.
    #[test]
    fn lent_gives_back_what_the_read_wrote_and_no_more() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut first = [0u8; 4];
        let mut mem = [MaybeUninit::<u8>::uninit(); 64];
        a.write_all(b"0123456789").unwrap();
        let mut bufs = ReadBufs::new(&mut first, Room::Lent(&mut mem));
        let (n, _) = recv_bufs_with_fds(b.as_fd(), &mut bufs, false).unwrap();
        assert_eq!((n, bufs.lent()), (10, &b"456789"[..]));
        assert_eq!(&first, b"0123");

        a.write_all(b"ab").unwrap();
        let mut bufs = ReadBufs::new(&mut first, Room::Lent(&mut mem));
        assert_eq!(recv_bufs(b.as_fd(), &mut bufs, false).unwrap(), 2);
        assert_eq!(bufs.lent(), b"");

        a.write_all(b"xyz").unwrap();
        let mut own = [0u8; 8];
        let mut bufs = ReadBufs::new(&mut [], Room::Own(&mut own));
        assert_eq!(recv_bufs(b.as_fd(), &mut bufs, true).unwrap(), 3);
        assert_eq!(bufs.lent(), b"", "the decoder's own buffer is not lent");
        assert_eq!(&own[..3], b"xyz");

        let mut bufs = ReadBufs::new(&mut [], Room::Lent(&mut mem));
        let err = recv_bufs(b.as_fd(), &mut bufs, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(bufs.lent(), b"", "a failed read wrote nothing");
    }

    /// A TCP read takes `recv(2)` into one buffer and a list call into two; each shape, waiting
    /// or not, fills the buffers in order and reports what it wrote.
    #[test]
    fn tcp_reads_fill_one_buffer_or_two() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        let mut mem = [MaybeUninit::<u8>::uninit(); 8];
        for nowait in [false, true] {
            a.write_all(b"abc").unwrap();
            // Into lent memory alone: one buffer, a read that waits.
            let mut bufs = ReadBufs::new(&mut [], Room::Lent(&mut mem));
            assert_eq!(recv_bufs(b.as_fd(), &mut bufs, false).unwrap(), 3);
            assert_eq!(bufs.lent(), b"abc");

            let mut rest = [0u8; 2];
            a.write_all(b"de").unwrap();
            let mut bufs = ReadBufs::new(&mut rest, Room::Own(&mut []));
            wait_readable(&b);
            assert_eq!(recv_bufs(b.as_fd(), &mut bufs, nowait).unwrap(), 2);
            assert_eq!(&rest, b"de");

            a.write_all(b"fghij").unwrap();
            let mut bufs = ReadBufs::new(&mut rest, Room::Lent(&mut mem));
            wait_readable(&b);
            let mut n = recv_bufs(b.as_fd(), &mut bufs, nowait).unwrap();
            let lent = bufs.lent().to_vec();
            let mut got = rest[..n.min(2)].to_vec();
            got.extend_from_slice(&lent);
            // The five bytes may arrive in two segments; the read after takes the rest.
            while n < 5 {
                let mut bufs = ReadBufs::new(&mut [], Room::Lent(&mut mem));
                n += recv_bufs(b.as_fd(), &mut bufs, false).unwrap();
                got.extend_from_slice(bufs.lent());
            }
            assert_eq!(got, b"fghij");
        }
        let mut bufs = ReadBufs::new(&mut [], Room::Lent(&mut mem));
        let err = recv_bufs(b.as_fd(), &mut bufs, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    /// A receive with no sender, descriptors or timestamp (`recv(2)` on Linux) still tells a
    /// datagram that did not fit, with its real length, and leaves no part of it in `buf`; a
    /// peek leaves it queued.
    #[test]
    fn a_plain_datagram_receive_reports_a_cut_datagram_and_its_length() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let mut buf = Vec::new();
        a.send(b"0123456789").unwrap();
        let peeked =
            recv_datagram::<()>(b.as_fd(), &mut buf, 4, false, true, false, false).unwrap();
        assert!(peeked.truncated);
        assert_eq!(buf, b"");
        if REAL_LEN_BY_RECVFROM {
            assert_eq!(peeked.len, 10);
        }
        let whole =
            recv_datagram::<()>(b.as_fd(), &mut buf, 16, false, false, false, false).unwrap();
        assert_eq!((whole.len, whole.truncated), (10, false));
        assert_eq!(buf, b"0123456789");

        a.send(b"abcdef").unwrap();
        let cut = recv_datagram::<()>(b.as_fd(), &mut buf, 5, false, false, false, false).unwrap();
        assert!(cut.truncated);
        assert!(cut.len > 5);
        assert_eq!(buf, b"", "no part of a cut datagram is handed out");
        a.send(b"").unwrap();
        let empty =
            recv_datagram::<()>(b.as_fd(), &mut buf, 5, false, false, false, false).unwrap();
        assert_eq!(
            (empty.len, empty.truncated),
            (0, false),
            "the cut one was taken out"
        );

        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"hi", rx.local_addr().unwrap()).unwrap();
        let got = recv_datagram::<std::net::SocketAddr>(
            rx.as_fd(),
            &mut buf,
            8,
            true,
            false,
            false,
            false,
        )
        .unwrap();
        assert_eq!((got.len, got.from), (2, Some(tx.local_addr().unwrap())));
        assert_eq!(buf, b"hi");
    }

    /// Waits until `s` has bytes to read, so that a read that does not wait finds them.
    fn wait_readable(s: &impl AsFd) {
        let mut fds = [nix::poll::PollFd::new(
            s.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(n, 1, "no bytes within 10 s");
    }

    #[test]
    fn a_read_with_no_room_is_an_error_not_a_close() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"kept").unwrap();
        for nowait in [false, true] {
            let mut bufs = ReadBufs::new(&mut [], Room::Own(&mut []));
            let err = recv_bufs_with_fds(b.as_fd(), &mut bufs, nowait).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let mut bufs = ReadBufs::new(&mut [], Room::Lent(&mut []));
            let err = recv_bufs(b.as_fd(), &mut bufs, nowait).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        let mut rest = [0u8; 4];
        let mut bufs = ReadBufs::new(&mut rest, Room::Own(&mut []));
        assert_eq!(recv_bufs(b.as_fd(), &mut bufs, false).unwrap(), 4);
        assert_eq!(&rest, b"kept", "the refused reads took nothing");
    }
}
