//! Noticing that a client hung up while its request is still being worked
//! on.
//!
//! HTTP/1 lets a client half-close after its request, so actix keeps a
//! plain (non-streaming) handler running after the peer's end of file and
//! only notices a gone client when writing fails. Inference runs for
//! seconds to minutes, so we look ourselves, as Go's `net/http` does: a
//! duplicate of the connection's socket is peeked without blocking, and an
//! end of file or a reset means the client is gone.

use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::Arc;

/// A connection's socket, shared with the request handlers on it.
#[derive(Debug, Clone)]
pub(crate) struct PeerSocket(Arc<TcpStream>);

impl PeerSocket {
    /// A duplicate of the connection's socket (the `on_connect` hook's
    /// argument), if it is a TCP stream.
    pub(crate) fn from_connection(conn: &dyn std::any::Any) -> Option<Self> {
        let tcp = conn.downcast_ref::<actix_web::rt::net::TcpStream>()?;
        let fd = tcp.as_fd().try_clone_to_owned().ok()?;
        Some(PeerSocket(Arc::new(TcpStream::from(fd))))
    }

    /// Whether the client may still be there: false once it closed its
    /// end or reset the connection. Never blocks (the socket is shared with
    /// the runtime, which keeps it non-blocking).
    pub(crate) fn is_open(&self) -> bool {
        let mut byte = [0u8; 1];
        match self.0.peek(&mut byte) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ),
        }
    }
}
