//! The shared-key handshake of Python's `multiprocessing.connection` on an [`AsyncConnection`]:
//! the steps of the blocking [`Authenticator`], with its challenges, MACs and checks, and its
//! deadline as a tokio timer.

use std::time::Duration;

use super::conn::AsyncConnection;
use super::stream::AsyncStream;
use crate::auth::{
    failed, new_challenge, respond, verify_response, Authenticator, CHALLENGE, FAILURE,
    MAX_HANDSHAKE_MESSAGE_LEN, WELCOME,
};
use crate::error::{AuthFailure, Error, Result};

impl<S: AsyncStream> AsyncConnection<S> {
    /// Runs the accepting side of the shared-key handshake, as the blocking
    /// [`Connection::authenticate_server`](crate::Connection::authenticate_server): challenges
    /// the peer, then answers its challenge. Call it right after `accept`.
    ///
    /// For the handshake's duration the connection reads messages of at most 256 bytes (the
    /// limit is restored afterwards, whatever the outcome), and the whole handshake must finish
    /// within [`Authenticator::timeout`].
    ///
    /// # Errors
    ///
    /// As [`Connection::authenticate_server`](crate::Connection::authenticate_server):
    /// [`Error::AuthenticationFailed`], [`Error::HandshakeTimeout`], [`Error::Io`] and framing
    /// errors. After an error, drop the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> msgsock::Result<()> {
    /// use msgsock::{AuthKey, Authenticator};
    /// use msgsock::tokio::AsyncConnection;
    ///
    /// let auth = Authenticator::new(AuthKey::new(b"secret".to_vec()));
    /// let (a, b) = tokio::net::UnixStream::pair()?;
    /// let (mut server, mut client) = (AsyncConnection::new(a), AsyncConnection::new(b));
    /// let (s, c) = tokio::join!(server.authenticate_server(&auth), client.authenticate_client(&auth));
    /// s?;
    /// c?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn authenticate_server(&mut self, auth: &Authenticator) -> Result<()> {
        self.handshake(auth, true).await
    }

    /// Runs the connecting side of the shared-key handshake, as the blocking
    /// [`Connection::authenticate_client`](crate::Connection::authenticate_client): answers the
    /// peer's challenge, then challenges it. Call it right after `connect`.
    ///
    /// # Errors
    ///
    /// As [`authenticate_server`](Self::authenticate_server).
    pub async fn authenticate_client(&mut self, auth: &Authenticator) -> Result<()> {
        self.handshake(auth, false).await
    }

    async fn handshake(&mut self, auth: &Authenticator, accepting: bool) -> Result<()> {
        let max_len = self.max_message_len();
        self.set_max_message_len(MAX_HANDSHAKE_MESSAGE_LEN);
        let steps = async {
            // Python's order: `Listener.accept` delivers then answers, `Client` the reverse.
            if accepting {
                deliver_challenge(self, auth).await?;
                answer_challenge(self, auth).await
            } else {
                answer_challenge(self, auth).await?;
                deliver_challenge(self, auth).await
            }
        };
        let result = match auth.timeout() {
            Some(limit) => within(limit, steps).await,
            None => steps.await,
        };
        self.set_max_message_len(max_len);
        result.map_err(|e| auth.classify(e, None))
    }
}

/// `steps`, or [`Error::HandshakeTimeout`] once `limit` has passed; a limit too far off for the
/// timer is no limit.
async fn within(
    limit: Duration,
    steps: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    match ::tokio::time::Instant::now().checked_add(limit) {
        Some(deadline) => ::tokio::time::timeout_at(deadline, steps)
            .await
            .unwrap_or(Err(Error::HandshakeTimeout { timeout: limit })),
        None => steps.await,
    }
}

/// Python's `deliver_challenge`: challenge, check the response, give the verdict.
async fn deliver_challenge<S: AsyncStream>(
    conn: &mut AsyncConnection<S>,
    auth: &Authenticator,
) -> Result<()> {
    let message = new_challenge(auth.dialect())?;
    conn.send(&[CHALLENGE, &message].concat()).await?;
    let response = recv(conn).await?;
    match verify_response(auth.key().as_bytes(), &message, &response, auth.dialect()) {
        Ok(()) => conn.send(WELCOME).await,
        Err(reason) => {
            // The verdict is a courtesy: the peer may have gone, and the error to report is the
            // authentication one.
            let _ = conn.send(FAILURE).await;
            Err(failed(reason))
        }
    }
}

/// Python's `answer_challenge`: answer the challenge, then expect `#WELCOME#`.
async fn answer_challenge<S: AsyncStream>(
    conn: &mut AsyncConnection<S>,
    auth: &Authenticator,
) -> Result<()> {
    let message = recv(conn).await?;
    let challenge = message
        .strip_prefix(CHALLENGE)
        .ok_or_else(|| failed(AuthFailure::NotAChallenge))?;
    let response = respond(auth.key().as_bytes(), challenge, auth.dialect()).map_err(failed)?;
    conn.send(&response).await?;
    if recv(conn).await? == WELCOME {
        Ok(())
    } else {
        Err(failed(AuthFailure::Rejected))
    }
}

/// One handshake message; a close is the peer giving up.
async fn recv<S: AsyncStream>(conn: &mut AsyncConnection<S>) -> Result<Vec<u8>> {
    conn.recv()
        .await?
        .ok_or_else(|| failed(AuthFailure::PeerClosed))
}
