//! Capture of a guest's stdout and stderr.
//!
//! Each store gets two [`OutputCapture`]s. A capture never fails a write (a chatty guest must
//! not trap because its output is large); it keeps the last [`OutputCapture::CAPACITY`] bytes,
//! which is where a panic message ends up. After each call the host takes what was written,
//! attaches stderr to any error and writes both to the log.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// A bounded, never-failing sink for one guest output stream.
#[derive(Clone, Default)]
pub(crate) struct OutputCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl OutputCapture {
    /// Bytes kept per stream between two [`OutputCapture::take`]s.
    pub(crate) const CAPACITY: usize = 64 << 10;

    fn append(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.extend_from_slice(bytes);
        if buffer.len() > 2 * Self::CAPACITY {
            let excess = buffer.len() - Self::CAPACITY;
            buffer.drain(..excess);
        }
    }

    /// Everything written since the last call, as text (the tail, if it was long).
    pub(crate) fn take(&self) -> String {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let start = buffer.len().saturating_sub(Self::CAPACITY);
        let text = String::from_utf8_lossy(&buffer[start..]).into_owned();
        buffer.clear();
        text
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(Self::CAPACITY)
    }
}

#[async_trait::async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
