//! What `fanout` and `glass` both hold while they run: a scratch directory and the
//! runtime their publishers send on.

use std::path::PathBuf;
use std::sync::Arc;

use slotcast_bench::Res;

use crate::publish::{self, SendLog};
use crate::source::Source;

/// A temporary directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts publishers on the ingest runtime.
pub struct Ingest {
    pub rt: tokio::runtime::Handle,
    pub src: Arc<Source>,
}

impl Ingest {
    /// Publishes the source to `rtmp://addr/app/key` in real time, looping.
    pub async fn publish(
        &self,
        addr: std::net::SocketAddr,
        app: &str,
        key: &str,
    ) -> Res<Arc<SendLog>> {
        let (app, key, src) = (app.to_owned(), key.to_owned(), Arc::clone(&self.src));
        self.rt
            .spawn(async move { publish::start(addr, &app, &key, src).await })
            .await
            .map_err(|e| e.to_string())?
    }
}
