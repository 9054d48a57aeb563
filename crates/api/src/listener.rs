//! One port, two protocols. Peers connect over TLS (with this node's self-signed certificate,
//! which they pin); the local CLI, the web UI and the desktop app speak plain HTTP on the same
//! port. The first byte tells them apart: a TLS connection opens with a handshake record (0x16),
//! which is never the first byte of an HTTP request.
//!
//! Handshakes run in their own tasks, bounded in time, so a slow or silent client never holds up
//! the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

/// A connection that has not sent its first byte, or not finished its handshake, by then is
/// dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

pub type Io = Either<TcpStream, TlsStream<TcpStream>>;

/// Who is on the other end of a connection, whether it came over TLS, and the SHA-256 of the
/// certificate the client presented (a peer node presents its own; other clients none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub addr: SocketAddr,
    pub tls: bool,
    pub client_cert: Option<Arc<str>>,
}

impl Connected<IncomingStream<'_, PeerListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, PeerListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// The node's listener: accepts TCP, then sorts each connection into TLS or plain.
#[derive(Debug)]
pub struct PeerListener {
    ready: mpsc::Receiver<(Io, Conn)>,
    local: SocketAddr,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for PeerListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl PeerListener {
    /// Serves TLS when `tls` is given; plain HTTP only otherwise.
    pub fn new(
        listener: TcpListener,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> PeerListener {
        let local = listener
            .local_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tls.map(TlsAcceptor::from);
        let accept_loop = tokio::spawn(async move {
            loop {
                let (stream, addr) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Small answers go out at once: with Nagle's algorithm a TLS record written in two
                // parts waited for the peer's delayed ACK (about 40 ms per request).
                let _ = stream.set_nodelay(true);
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, sort(stream, acceptor)).await {
                        Ok(Ok(io)) => {
                            let conn = Conn {
                                addr,
                                tls: matches!(io, Either::Right(_)),
                                client_cert: client_cert(&io),
                            };
                            let _ = tx.send((io, conn)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("connection from {addr}: {e}"),
                        Err(_) => tracing::debug!("connection from {addr}: no handshake in time"),
                    }
                });
            }
        });
        PeerListener {
            ready,
            local,
            accept_loop,
        }
    }
}

async fn sort(stream: TcpStream, acceptor: Option<TlsAcceptor>) -> std::io::Result<Io> {
    let Some(acceptor) = acceptor else {
        return Ok(Either::Left(stream));
    };
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 1 && first[0] == TLS_HANDSHAKE {
        Ok(Either::Right(acceptor.accept(stream).await?))
    } else {
        Ok(Either::Left(stream))
    }
}

/// The fingerprint of the certificate a TLS client presented (its key signed the handshake).
fn client_cert(io: &Io) -> Option<Arc<str>> {
    let Either::Right(tls) = io else { return None };
    let cert = tls.get_ref().1.peer_certificates()?.first()?;
    Some(Arc::from(aienv_trust::fingerprint(cert)))
}

impl axum::serve::Listener for PeerListener {
    type Io = Io;
    type Addr = Conn;

    async fn accept(&mut self) -> (Io, Conn) {
        match self.ready.recv().await {
            Some(next) => next,
            // The accept loop ended (it only does when aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Conn> {
        Ok(Conn {
            addr: self.local,
            tls: false,
            client_cert: None,
        })
    }
}
