//! A file's content over SFTP with many requests in flight: the read plan of a download
//! (sized from the file measured when opened, resumed right after a short read), the pacing
//! that keeps as many requests in flight as the link carries within the operation timeout,
//! and the spawned requests, aborted when a transfer stops early.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::SftpTransport;
use crate::transport::{Fetched, TransportError};

/// Most reads or writes in flight at once on one file (see [`Pace`] for fewer).
pub(super) const IN_FLIGHT: usize = 64;
/// Largest read request; servers announce their own limit through `limits@openssh.com`
/// (OpenSSH: 255 KiB), and a smaller one is used then.
pub(super) const MAX_CHUNK: u64 = 256 * 1024;
/// Largest write request. Measured against OpenSSH on loopback (see
/// `examples/sftp_throughput.rs`): 64 KiB writes upload faster than 255 KiB ones, and 64 of
/// them in flight still fill a long link.
pub(super) const WRITE_CHUNK: u64 = 64 * 1024;
/// Bytes in flight before a transfer has measured its link.
const START_IN_FLIGHT: u64 = 1024 * 1024;
/// Request size for servers that do not announce limits: what every server accepts.
pub(super) const SAFE_CHUNK: u64 = 32 * 1024;

impl SftpTransport {
    /// Reads the open file `handle` into `dest` with many reads in flight.
    pub(super) async fn download(
        &self,
        path: &str,
        handle: &str,
        dest: &Path,
        max_size: u64,
    ) -> Result<Fetched, TransportError> {
        let too_large = || TransportError::TooLarge {
            path: path.to_string(),
            limit: max_size,
        };
        let size = self
            .call("stat", path, self.sftp.fstat(handle))
            .await?
            .attrs
            .size;
        if size.is_some_and(|s| s > max_size) {
            return Err(too_large());
        }
        let dest_shown = dest.display().to_string();
        let local_error = |e: std::io::Error| TransportError::Other {
            path: dest_shown.clone(),
            detail: format!("writing the downloaded file: {e}"),
        };
        let mut out = tokio::fs::File::create(dest).await.map_err(local_error)?;
        let mut hasher = Sha256::new();
        let mut plan = ReadPlan::new(self.read_len, size);
        let mut reads = InFlight::default();
        let mut pace = Pace::new(self.op_timeout);
        let mut total = 0u64;
        loop {
            while reads.0.len() < pace.requests(plan.chunk) {
                let Some((offset, len)) = plan.next() else {
                    break;
                };
                let (sftp, handle, limit) =
                    (self.sftp.clone(), handle.to_string(), self.op_timeout);
                let task = tokio::spawn(async move {
                    tokio::time::timeout(limit, sftp.read(handle, offset, len)).await
                });
                reads.0.push_back((offset, len, task));
            }
            let Some((offset, len, task)) = reads.0.pop_front() else {
                break;
            };
            let data = match task.await {
                Ok(Ok(Ok(data))) => data.data,
                Ok(Ok(Err(SftpError::Status(s)))) if s.status_code == StatusCode::Eof => Vec::new(),
                Ok(Ok(Err(e))) => return Err(self.error("read", path, e)),
                Ok(Err(_)) => return Err(self.timeout("read", path)),
                Err(e) => {
                    return Err(TransportError::Other {
                        path: path.to_string(),
                        detail: format!("read task failed: {e}"),
                    });
                }
            };
            if data.is_empty() {
                break;
            }
            total += data.len() as u64;
            pace.record(data.len() as u64);
            // The file may have grown since it was measured: the cap holds on what is read.
            if total > max_size {
                return Err(too_large());
            }
            hasher.update(&data);
            out.write_all(&data).await.map_err(local_error)?;
            if (data.len() as u64) < u64::from(len) {
                // A short read: everything requested after it starts at the wrong place.
                reads.abort();
                plan.short_read(offset, data.len() as u32);
            } else {
                plan.done(offset + u64::from(len));
            }
        }
        // tokio's File finishes writes in the background: flush reports their errors.
        out.flush().await.map_err(local_error)?;
        Ok(Fetched {
            size: total,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Writes `data` to the open file `handle` with many writes in flight.
    pub(super) async fn upload(
        &self,
        path: &str,
        handle: &str,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let mut writes: VecDeque<(JoinHandle<_>, u64)> = VecDeque::new();
        let mut guard = AbortOnDrop(Vec::new());
        let mut pace = Pace::new(self.op_timeout);
        let mut offset = 0usize;
        while offset < data.len() || !writes.is_empty() {
            while offset < data.len() && writes.len() < pace.requests(self.write_len) {
                let end = (offset + self.write_len as usize).min(data.len());
                let chunk = data[offset..end].to_vec();
                let (sftp, handle, limit) =
                    (self.sftp.clone(), handle.to_string(), self.op_timeout);
                let at = offset as u64;
                let task = tokio::spawn(async move {
                    tokio::time::timeout(limit, sftp.write(handle, at, chunk)).await
                });
                guard.0.push(task.abort_handle());
                writes.push_back((task, (end - offset) as u64));
                offset = end;
            }
            let Some((task, len)) = writes.pop_front() else {
                break;
            };
            match task.await {
                Ok(Ok(Ok(_))) => pace.record(len),
                Ok(Ok(Err(e))) => return Err(self.error("write", path, e)),
                Ok(Err(_)) => return Err(self.timeout("write", path)),
                Err(e) => {
                    return Err(TransportError::Other {
                        path: path.to_string(),
                        detail: format!("write task failed: {e}"),
                    });
                }
            }
        }
        guard.0.clear();
        Ok(())
    }
}

/// Read requests of one download: offsets and lengths, planned from the size measured when
/// the file was opened, so a small file costs one read plus one read that confirms its end.
struct ReadPlan {
    next: u64,
    chunk: u32,
    /// Where the file ended when measured; `None` once it proved different or is unknown.
    end: Option<u64>,
}

impl ReadPlan {
    fn new(chunk: u32, end: Option<u64>) -> ReadPlan {
        ReadPlan {
            next: 0,
            chunk,
            end,
        }
    }

    /// The next request, or `None` while the confirming read past the end is in flight.
    fn next(&mut self) -> Option<(u64, u32)> {
        let len = match self.end {
            Some(end) if self.next > end => return None,
            // Requests end exactly at the measured end, so a full reply is not a short read.
            Some(end) if self.next < end => (end - self.next).min(u64::from(self.chunk)) as u32,
            _ => self.chunk,
        };
        let at = self.next;
        self.next += u64::from(len);
        Some((at, len))
    }

    /// A full reply that ends at `reached`; data past the measured end means it grew.
    fn done(&mut self, reached: u64) {
        if self.end.is_some_and(|end| reached > end) {
            self.end = None;
        }
    }

    /// A reply of `got` bytes to a request at `offset`: resume right after it, with requests
    /// no larger than what this server returns.
    fn short_read(&mut self, offset: u64, got: u32) {
        self.next = offset + u64::from(got);
        self.chunk = self.chunk.min(got.max(1));
        self.end = None;
    }
}

/// How many requests a transfer keeps in flight: enough to fill the link, few enough that
/// the last one queued is answered well within the operation timeout. (With 16 MiB in flight
/// on a 1 Mbit/s link, every request would wait two minutes and time out.) The link's rate
/// is measured as the transfer goes; until then [`START_IN_FLIGHT`] bytes are in flight.
struct Pace {
    started: Instant,
    done: u64,
    /// Longest a request should wait behind those queued before it: a quarter of the
    /// operation timeout.
    budget: Duration,
}

impl Pace {
    fn new(op_timeout: Duration) -> Pace {
        Pace {
            started: Instant::now(),
            done: 0,
            budget: op_timeout / 4,
        }
    }

    fn record(&mut self, bytes: u64) {
        self.done += bytes;
    }

    /// Requests of `chunk` bytes that may be in flight now.
    fn requests(&self, chunk: u32) -> usize {
        requests_in_flight(self.done, self.started.elapsed(), self.budget, chunk)
    }
}

fn requests_in_flight(done: u64, elapsed: Duration, budget: Duration, chunk: u32) -> usize {
    let bytes = if done == 0 || elapsed.is_zero() {
        START_IN_FLIGHT as f64
    } else {
        done as f64 / elapsed.as_secs_f64() * budget.as_secs_f64()
    };
    ((bytes / f64::from(chunk.max(1))) as usize).clamp(1, IN_FLIGHT)
}

/// Reads in flight, in request order; aborted when dropped (an error stops a download).
#[derive(Default)]
struct InFlight(VecDeque<(u64, u32, JoinHandle<ReadReply>)>);

/// What a spawned read returns: the server's answer, or the operation timeout.
type ReadReply = Result<Result<russh_sftp::protocol::Data, SftpError>, tokio::time::error::Elapsed>;

impl InFlight {
    fn abort(&mut self) {
        for (_, _, task) in self.0.drain(..) {
            task.abort();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Aborts spawned requests when an upload stops early.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_plan_covers_a_small_file_in_two_requests() {
        let mut plan = ReadPlan::new(1000, Some(300));
        assert_eq!(plan.next(), Some((0, 300)));
        assert_eq!(plan.next(), Some((300, 1000)));
        assert_eq!(plan.next(), None);
        // It grew: keep going.
        plan.done(1300);
        assert_eq!(plan.next(), Some((1300, 1000)));

        let mut plan = ReadPlan::new(1000, Some(2500));
        assert_eq!(plan.next(), Some((0, 1000)));
        assert_eq!(plan.next(), Some((1000, 1000)));
        assert_eq!(plan.next(), Some((2000, 500)));
        assert_eq!(plan.next(), Some((2500, 1000)));
        assert_eq!(plan.next(), None);
        plan.short_read(1000, 400);
        assert_eq!(plan.next(), Some((1400, 400)));
    }

    #[test]
    fn bytes_in_flight_follow_the_link() {
        let budget = Duration::from_secs(30) / 4;
        let chunk = 256 * 1024;
        // Nothing measured yet: 1 MiB.
        assert_eq!(requests_in_flight(0, Duration::ZERO, budget, chunk), 4);
        // Loopback: the full pipeline.
        let fast = requests_in_flight(100 << 20, Duration::from_millis(500), budget, chunk);
        assert_eq!(fast, IN_FLIGHT);
        // 1 Mbit/s: the last request queued waits a few seconds, not minutes.
        let slow = requests_in_flight(125_000, Duration::from_secs(1), budget, chunk);
        assert_eq!(slow, 3);
        // Slower still: one at a time, never none.
        assert_eq!(
            requests_in_flight(1000, Duration::from_secs(10), budget, chunk),
            1
        );
    }
}
