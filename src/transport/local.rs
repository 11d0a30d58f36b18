//! Local-folder partners: every flow path is under the partner's root.

use std::path::Path;

use super::{Entry, Fetched, Transport, TransportError};
use std::path::PathBuf;

pub struct LocalTransport {
    root: PathBuf,
}

impl LocalTransport {
    pub fn new(root: PathBuf) -> LocalTransport {
        LocalTransport { root }
    }
}

impl Transport for LocalTransport {
    async fn list(&mut self, dir: &str) -> Result<Vec<Entry>, TransportError> {
        let _ = dir;
        todo!()
    }
    async fn stat(&mut self, path: &str) -> Result<Option<Entry>, TransportError> {
        let _ = path;
        todo!()
    }
    async fn fetch(&mut self, path: &str, dest: &Path, max_size: u64) -> Result<Fetched, TransportError> {
        let _ = (path, dest, max_size);
        todo!()
    }
    async fn read_tail(&mut self, path: &str, n: u64) -> Result<Vec<u8>, TransportError> {
        let _ = (path, n);
        todo!()
    }
    async fn rename_noclobber(&mut self, from: &str, to: &str) -> Result<(), TransportError> {
        let _ = (from, to);
        todo!()
    }
    async fn mkdir_all(&mut self, dir: &str) -> Result<(), TransportError> {
        let _ = dir;
        todo!()
    }
    async fn put(&mut self, path: &str, data: &[u8]) -> Result<(), TransportError> {
        let _ = (path, data);
        todo!()
    }
    async fn remove(&mut self, path: &str) -> Result<(), TransportError> {
        let _ = path;
        todo!()
    }
    async fn close(&mut self) -> Result<(), TransportError> {
        todo!()
    }
}
