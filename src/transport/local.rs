//! Local-folder partners: every flow path is under the partner's root.
//!
//! Same promises as the SFTP transport — listings with attributes, streamed downloads with a
//! size cap and a sha256, renames that never overwrite, uploads that appear atomically — on
//! the local file system. A leading `/` in a path means the partner's root; a path with a `..`
//! component is refused, so no flow can reach outside the root.
//!
//! File system calls block, so each operation runs whole on tokio's blocking pool.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Entry, Fetched, Transport, TransportError};

/// Size of one read while copying a file into the spool.
const CHUNK: usize = 256 * 1024;

/// A partner whose files live in a local folder tree.
pub struct LocalTransport {
    root: PathBuf,
}

impl LocalTransport {
    /// A transport rooted at `root`; nothing is checked until the first operation.
    pub fn new(root: PathBuf) -> LocalTransport {
        LocalTransport { root }
    }

    /// The local path of a partner path, refusing anything that would leave the root.
    fn resolve(&self, path: &str) -> Result<PathBuf, TransportError> {
        let mut out = self.root.clone();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(TransportError::PermissionDenied {
                        path: format!("{path} (a `..` would leave the partner's root)"),
                    });
                }
                name => {
                    // A name such as `a\0b` or one that Path would read as a root is refused too.
                    let mut comps = Path::new(name).components();
                    match (comps.next(), comps.next()) {
                        (Some(Component::Normal(_)), None) if !name.contains('\0') => {
                            out.push(name)
                        }
                        _ => {
                            return Err(TransportError::PermissionDenied {
                                path: format!("{path} (not a plain name: {name:?})"),
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Runs one blocking file system step on the blocking pool.
async fn blocking<T, F>(path: &str, f: F) -> Result<T, TransportError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, TransportError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(TransportError::Other {
            path: path.to_string(),
            detail: format!("file system task failed: {e}"),
        })
    })
}

/// The transport error for an I/O error on `path`.
fn io_error(path: &str, e: io::Error) -> TransportError {
    let path = path.to_string();
    match e.kind() {
        io::ErrorKind::NotFound => TransportError::NotFound { path },
        io::ErrorKind::PermissionDenied => TransportError::PermissionDenied { path },
        io::ErrorKind::AlreadyExists => TransportError::AlreadyExists { path },
        _ => TransportError::Other {
            path,
            detail: e.to_string(),
        },
    }
}

/// An [`Entry`] from metadata; symbolic links are not files (as over SFTP).
fn entry(name: String, meta: &fs::Metadata) -> Entry {
    Entry {
        name,
        size: meta.len(),
        mtime: meta.mtime(),
        is_file: meta.file_type().is_file(),
    }
}

/// The last component of a partner path.
fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

fn list_dir(dir: &Path, shown: &str) -> Result<Vec<Entry>, TransportError> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| io_error(shown, e))? {
        let item = item.map_err(|e| io_error(shown, e))?;
        let name = match item.file_name().into_string() {
            Ok(name) => name,
            // A name that is not UTF-8 cannot be matched, moved or reported: leave it alone.
            Err(_) => continue,
        };
        match item.metadata() {
            Ok(meta) => out.push(entry(name, &meta)),
            // Gone between the listing and the look at its attributes.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(shown, e)),
        }
    }
    Ok(out)
}

fn copy_capped(
    src: &Path,
    shown: &str,
    dest: &Path,
    max_size: u64,
) -> Result<Fetched, TransportError> {
    let dest_shown = dest.display().to_string();
    let mut input = fs::File::open(src).map_err(|e| io_error(shown, e))?;
    let too_large = || TransportError::TooLarge {
        path: shown.to_string(),
        limit: max_size,
    };
    // Refuse early when the size is already known to be over the cap.
    if input.metadata().map_err(|e| io_error(shown, e))?.len() > max_size {
        let _ = fs::remove_file(dest);
        return Err(too_large());
    }
    let mut output = fs::File::create(dest).map_err(|e| io_error(&dest_shown, e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    let result = loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(io_error(shown, e)),
        };
        size += n as u64;
        // The file may have grown since it was measured: the cap holds on what is read.
        if size > max_size {
            break Err(too_large());
        }
        hasher.update(&buf[..n]);
        if let Err(e) = output.write_all(&buf[..n]) {
            break Err(io_error(&dest_shown, e));
        }
    };
    drop(output);
    match result {
        Ok(()) => Ok(Fetched {
            size,
            sha256: hex::encode(hasher.finalize()),
        }),
        Err(e) => {
            let _ = fs::remove_file(dest);
            Err(e)
        }
    }
}

fn tail(path: &Path, shown: &str, n: u64) -> Result<Vec<u8>, TransportError> {
    let mut file = fs::File::open(path).map_err(|e| io_error(shown, e))?;
    let size = file.metadata().map_err(|e| io_error(shown, e))?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(n)))
        .map_err(|e| io_error(shown, e))?;
    let mut out = Vec::with_capacity(n.min(size) as usize);
    file.take(n)
        .read_to_end(&mut out)
        .map_err(|e| io_error(shown, e))?;
    Ok(out)
}

fn move_noclobber(
    from: &Path,
    to: &Path,
    shown_from: &str,
    shown_to: &str,
) -> Result<(), TransportError> {
    // A hard link fails when the target exists, so no window exists in which a file there
    // could be replaced; the source name is removed once the new name is in place.
    match fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(e) = fs::remove_file(from) {
                // Undo, so the file has exactly one name and the caller can retry.
                let _ = fs::remove_file(to);
                return Err(io_error(shown_from, e));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(TransportError::AlreadyExists {
            path: shown_to.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io_error(shown_from, e)),
        // Folders, file systems without hard links, another device: check, then rename.
        Err(_) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(TransportError::AlreadyExists {
                    path: shown_to.to_string(),
                });
            }
            fs::rename(from, to).map_err(|e| io_error(shown_from, e))
        }
    }
}

fn mkdirs(dir: &Path, shown: &str) -> Result<(), TransportError> {
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) => match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(TransportError::Other {
                path: shown.to_string(),
                detail: "exists and is not a folder".to_string(),
            }),
            Err(_) => Err(io_error(shown, e)),
        },
    }
}

fn write_atomic(target: &Path, shown: &str, data: &[u8]) -> Result<(), TransportError> {
    let name =
        target
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| TransportError::Other {
                path: shown.to_string(),
                detail: "no file name".to_string(),
            })?;
    let part = target.with_file_name(format!(".{name}.part"));
    let written = (|| {
        let mut file = fs::File::create(&part)?;
        file.write_all(data)?;
        // On disk before it gets its final name, so a crash never publishes a short file.
        file.sync_all()?;
        fs::rename(&part, target)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&part);
        io_error(shown, e)
    })
}

impl Transport for LocalTransport {
    async fn list(&mut self, dir: &str) -> Result<Vec<Entry>, TransportError> {
        let local = self.resolve(dir)?;
        let shown = dir.to_string();
        blocking(dir, move || list_dir(&local, &shown)).await
    }

    async fn stat(&mut self, path: &str) -> Result<Option<Entry>, TransportError> {
        let local = self.resolve(path)?;
        let shown = path.to_string();
        blocking(path, move || match fs::metadata(&local) {
            Ok(meta) => Ok(Some(entry(base_name(&shown).to_string(), &meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&shown, e)),
        })
        .await
    }

    async fn fetch(
        &mut self,
        path: &str,
        dest: &Path,
        max_size: u64,
    ) -> Result<Fetched, TransportError> {
        let local = self.resolve(path)?;
        let shown = path.to_string();
        let dest = dest.to_path_buf();
        blocking(path, move || copy_capped(&local, &shown, &dest, max_size)).await
    }

    async fn read_tail(&mut self, path: &str, n: u64) -> Result<Vec<u8>, TransportError> {
        let local = self.resolve(path)?;
        let shown = path.to_string();
        blocking(path, move || tail(&local, &shown, n)).await
    }

    async fn rename_noclobber(&mut self, from: &str, to: &str) -> Result<(), TransportError> {
        let (local_from, local_to) = (self.resolve(from)?, self.resolve(to)?);
        let (shown_from, shown_to) = (from.to_string(), to.to_string());
        blocking(from, move || {
            move_noclobber(&local_from, &local_to, &shown_from, &shown_to)
        })
        .await
    }

    async fn mkdir_all(&mut self, dir: &str) -> Result<(), TransportError> {
        let local = self.resolve(dir)?;
        let shown = dir.to_string();
        blocking(dir, move || mkdirs(&local, &shown)).await
    }

    async fn put(&mut self, path: &str, data: &[u8]) -> Result<(), TransportError> {
        let local = self.resolve(path)?;
        let shown = path.to_string();
        let data = data.to_vec();
        blocking(path, move || write_atomic(&local, &shown, &data)).await
    }

    async fn remove(&mut self, path: &str) -> Result<(), TransportError> {
        let local = self.resolve(path)?;
        let shown = path.to_string();
        blocking(path, move || match fs::remove_file(&local) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&shown, e)),
        })
        .await
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let t = LocalTransport::new(PathBuf::from("/srv/partner"));
        assert_eq!(
            t.resolve("/out/a.xml").unwrap(),
            PathBuf::from("/srv/partner/out/a.xml")
        );
        assert_eq!(
            t.resolve("out//./a.xml").unwrap(),
            PathBuf::from("/srv/partner/out/a.xml")
        );
        assert_eq!(t.resolve("/").unwrap(), PathBuf::from("/srv/partner"));
        for bad in ["../etc/passwd", "/out/../../x", "a/..", ".."] {
            assert!(
                matches!(t.resolve(bad), Err(TransportError::PermissionDenied { .. })),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn base_name_is_the_last_component() {
        assert_eq!(base_name("/out/a.xml"), "a.xml");
        assert_eq!(base_name("a.xml"), "a.xml");
        assert_eq!(base_name("/out/dir/"), "dir");
    }
}
