//! A connection's byte stream as the server's HTTP layer sees it: bytes already received (a head
//! read and checked by [`super::head`], bytes hyper handed back) are served before the socket;
//! a read limit keeps hyper from reading past the request that was checked (so it never parses
//! a head by itself); the bytes handed out are counted; and a write that makes no progress for
//! the write timeout fails, so a client that stops reading cannot hold a connection forever.

use bytes::{Buf, Bytes};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct ConnIo<S> {
    inner: S,
    prefix: Bytes,
    /// Bytes the reader may still take; `None`: no limit. At the limit a read stays pending:
    /// the connection loop ends hyper's part before it would need more.
    limit: Option<u64>,
    /// Bytes handed to the reader since the last [`ConnIo::reset`].
    read: u64,
    write_timeout: Duration,
    stall: Option<Pin<Box<Sleep>>>,
}

impl<S> ConnIo<S> {
    pub fn new(inner: S, write_timeout: Duration) -> Self {
        ConnIo {
            inner,
            prefix: Bytes::new(),
            limit: None,
            read: 0,
            write_timeout,
            stall: None,
        }
    }

    /// Serves `prefix` before the socket, lets at most `limit` bytes be read, and restarts the
    /// count.
    pub fn reset(&mut self, prefix: Bytes, limit: Option<u64>) {
        self.prefix = prefix;
        self.limit = limit;
        self.read = 0;
    }

    /// Bytes read through this wrapper since the last reset.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Takes back the bytes received but not yet read.
    pub fn take_prefix(&mut self) -> Bytes {
        std::mem::take(&mut self.prefix)
    }

    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Passes a write-side result on, failing one that has been pending for the write
    /// timeout.
    fn guard<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let timeout = self.write_timeout;
        let sleep = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client has not read its response for the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ConnIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let room = match this.limit {
            Some(0) => return Poll::Pending,
            Some(n) => (buf.remaining() as u64).min(n) as usize,
            None => buf.remaining(),
        };
        if room == 0 {
            return Poll::Ready(Ok(()));
        }
        let got = if !this.prefix.is_empty() {
            let n = room.min(this.prefix.len());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            n
        } else if room == buf.remaining() {
            let before = buf.filled().len();
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            buf.filled().len() - before
        } else {
            // Near the limit: read into a small buffer so nothing past the limit is taken.
            let mut small = [0u8; 4096];
            let len = room.min(small.len());
            let mut tmp = ReadBuf::new(&mut small[..len]);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut tmp))?;
            let n = tmp.filled().len();
            buf.put_slice(tmp.filled());
            n
        };
        this.read += got as u64;
        if let Some(l) = &mut this.limit {
            *l -= got as u64;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ConnIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        this.guard(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn prefix_first_then_the_socket_within_the_limit() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b"world and more").await.unwrap();
        let mut io = ConnIo::new(a, Duration::from_secs(5));
        io.reset(Bytes::from_static(b"hello "), Some(11));
        let mut out = vec![0u8; 32];
        let mut got = Vec::new();
        while got.len() < 11 {
            let n = io.read(&mut out).await.unwrap();
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(got, b"hello world");
        assert_eq!(io.bytes_read(), 11);
        // At the limit a read waits instead of taking the next request's bytes.
        let more = tokio::time::timeout(Duration::from_millis(50), io.read(&mut out)).await;
        assert!(more.is_err());
        io.reset(Bytes::new(), None);
        let n = io.read(&mut out).await.unwrap();
        assert_eq!(&out[..n], b" and more");
    }

    #[tokio::test]
    async fn a_stalled_write_times_out() {
        let (a, _b) = tokio::io::duplex(16);
        let mut io = ConnIo::new(a, Duration::from_millis(100));
        let big = vec![0u8; 1024];
        let e = tokio::time::timeout(Duration::from_secs(5), io.write_all(&big))
            .await
            .expect("the write timeout ends it")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
