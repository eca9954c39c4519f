//! msgsock, through the library's [`Channel`] trait: a stream [`Connection`] (plain, batched,
//! spinning) or a connected datagram socket ([`msgsock::UdpSocket`], [`msgsock::UnixDatagram`]).

use std::error::Error;
use std::io;
use std::os::fd::OwnedFd;

use msgsock::{Channel, Connection, Stream, DEFAULT_SPIN};

use super::{Api, Impl, Peer, Role, Run, Wrap};

/// A batched send, where the channel has one.
type SendBatch<C> = fn(&mut C, &[&[u8]]) -> msgsock::Result<()>;

/// Any msgsock channel: `send` and `recv_into` with a reused buffer.
struct Msgsock<C> {
    chan: C,
    batch: Option<SendBatch<C>>,
}

impl<C: Channel + Send + 'static> Peer for Msgsock<C> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        Ok(self.chan.send(msg)?)
    }
    fn send_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        match self.batch {
            Some(send_batch) => Ok(send_batch(&mut self.chan, msgs)?),
            None => msgs.iter().try_for_each(|m| self.send(m)),
        }
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        Ok(self.chan.recv_into(buf)?)
    }
    fn try_clone(&self) -> io::Result<Box<dyn Peer>> {
        Ok(Box::new(Msgsock {
            chan: self.chan.try_clone()?,
            batch: self.batch,
        }))
    }
}

/// A connection over `fd`, spinning with `SPIN`, receiving descriptors with `FDS`.
fn connection_peer<R, S, const SPIN: bool, const FDS: bool>(
    fd: OwnedFd,
) -> io::Result<Box<dyn Peer>>
where
    R: From<OwnedFd>,
    S: Stream + From<R> + 'static,
{
    let mut conn = Connection::new(S::from(R::from(fd)));
    if SPIN {
        conn.set_spin(Some(DEFAULT_SPIN));
    }
    conn.set_receive_fds(FDS);
    Ok(Box::new(Msgsock {
        chan: conn,
        batch: Some(|conn: &mut Connection<S>, msgs: &[&[u8]]| conn.send_batch(msgs)),
    }))
}

fn datagram_peer<R, C>(fd: OwnedFd) -> io::Result<Box<dyn Peer>>
where
    R: From<OwnedFd>,
    C: Channel + TryFrom<R> + Send + 'static,
    C::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let chan = C::try_from(R::from(fd)).map_err(io::Error::other)?;
    Ok(Box::new(Msgsock { chan, batch: None }))
}

/// On a stream: `msgsock`, `msgsock batch` (the same connection, measured with `send_batch`) and
/// `msgsock spin` (`set_spin(Some(DEFAULT_SPIN))` on both sides); with `carries_fds`, also
/// `msgsock no fds` (`set_receive_fds(false)` on both sides).
pub(super) fn stream<R, S>(carries_fds: bool) -> Vec<Impl>
where
    R: From<OwnedFd>,
    S: Stream + From<R> + 'static,
{
    let entry = |name, role, wrap: Wrap| Impl {
        name,
        role,
        api: Api::Blocking,
        run: Run::Blocking(wrap),
    };
    let mut impls = vec![
        entry(
            "msgsock",
            Role::Subject,
            connection_peer::<R, S, false, true>,
        ),
        entry(
            "msgsock batch",
            Role::Batch,
            connection_peer::<R, S, false, true>,
        ),
        entry(
            "msgsock spin",
            Role::Spin,
            connection_peer::<R, S, true, true>,
        ),
    ];
    if carries_fds {
        let no_fds = connection_peer::<R, S, false, false>;
        impls.push(entry("msgsock no fds", Role::NoFds, no_fds));
    }
    impls
}

/// On a datagram family: `msgsock`, the connected socket.
pub(super) fn datagram<R, C>() -> Vec<Impl>
where
    R: From<OwnedFd>,
    C: Channel + TryFrom<R> + Send + 'static,
    C::Error: Into<Box<dyn Error + Send + Sync>>,
{
    vec![Impl {
        name: "msgsock",
        role: Role::Subject,
        api: Api::Blocking,
        run: Run::Blocking(datagram_peer::<R, C>),
    }]
}
