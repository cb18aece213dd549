//! The WASI a plugin sees: nothing but clocks, randomness and a captured stderr.
//!
//! Even pure-compute `wasm32-wasip2` guests import WASI (std seeds its hash
//! maps from `random`, panics print to `stderr`), so WASI is linked, but with
//! no preopened directories, no environment, no arguments and every socket
//! address denied.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Most stderr bytes kept between two reads; the rest is counted and dropped
/// so a chatty plugin can neither trap itself nor grow host memory.
const STDERR_CAPACITY: usize = 16 * 1024;

/// Per-store host data.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) stderr: StderrCapture,
}

impl HostState {
    pub(crate) fn new(limits: StoreLimits) -> Self {
        let stderr = StderrCapture::default();
        let mut builder = WasiCtx::builder();
        builder
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        HostState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limits,
            stderr,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A bounded in-memory stderr that never fails a write.
#[derive(Clone, Default)]
pub(crate) struct StderrCapture {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
}

impl StderrCapture {
    fn push(&self, bytes: &[u8]) {
        let Ok(mut c) = self.inner.lock() else { return };
        let room = STDERR_CAPACITY.saturating_sub(c.bytes.len());
        let take = room.min(bytes.len());
        c.bytes.extend_from_slice(&bytes[..take]);
        c.dropped += bytes.len() - take;
    }

    /// Takes what the plugin wrote since the last call.
    pub(crate) fn take(&self) -> String {
        let Ok(mut c) = self.inner.lock() else {
            return String::new();
        };
        let mut text = String::from_utf8_lossy(&c.bytes).into_owned();
        if c.dropped > 0 {
            text.push_str(&format!("\n[{} more bytes dropped]", c.dropped));
        }
        c.bytes.clear();
        c.dropped = 0;
        text
    }
}

impl IsTerminal for StderrCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrCapture {
    async fn ready(&mut self) {}
}

impl OutputStream for StderrCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for StderrCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
