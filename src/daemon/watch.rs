//! Instant pickup on folders edi-bridge can see: the inboxes of local-folder partners, and of
//! SFTP partners with `local_root` (edi-bridge runs on the SFTP host). `notify` (inotify)
//! reports a file closed after writing or renamed into an inbox: that file's flow runs at once,
//! and the file counts as settled when the listing finds it as the watcher saw it (the other
//! completeness rules — done-marker, `min_age`, a closed XML root — still apply). `walkdir`
//! rescans the inboxes at start, when a missing inbox appears, after the watcher lost events
//! (queue overflow) and every [`RESCAN`], so nothing depends on an event arriving.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::Daemon;
use crate::config::Direction;
use crate::import::settle::is_temporary;

/// How often every watched inbox is rescanned, events or not.
pub const RESCAN: Duration = Duration::from_secs(30);

/// One flow reading a watched folder.
#[derive(Clone)]
struct Reader {
    flow: String,
    pattern: glob::Pattern,
}

/// The watcher; dropping it stops watching.
pub struct Watching {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The local folder of partner path `path` under `root` (`None` if it would leave the root).
fn local_path(root: &Path, path: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            name => {
                let mut comps = Path::new(name).components();
                match (comps.next(), comps.next()) {
                    (Some(Component::Normal(_)), None) => out.push(name),
                    _ => return None,
                }
            }
        }
    }
    Some(out)
}

/// Starts watching the inboxes the daemon can see (none: nothing runs).
pub fn start(daemon: Arc<Daemon>) -> Watching {
    let mut inboxes: BTreeMap<PathBuf, Vec<Reader>> = BTreeMap::new();
    for flow in daemon.config.flows.values() {
        let Direction::Import(import) = &flow.direction else {
            continue;
        };
        let Some(root) = &daemon.config.partners[&flow.partner].local_root else {
            continue;
        };
        if let Some(dir) = local_path(root, &import.inbox) {
            inboxes.entry(dir).or_default().push(Reader {
                flow: flow.name.clone(),
                pattern: import.pattern.clone(),
            });
        }
    }
    if inboxes.is_empty() {
        return Watching { task: None };
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        let _ = tx.send(event);
    });
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "cannot watch folders ({e}); inboxes are rescanned every {} s",
                RESCAN.as_secs()
            );
            None
        }
    };
    let task = tokio::spawn(watch_loop(daemon, inboxes, watcher, rx));
    Watching { task: Some(task) }
}

async fn watch_loop(
    daemon: Arc<Daemon>,
    inboxes: BTreeMap<PathBuf, Vec<Reader>>,
    mut watcher: Option<RecommendedWatcher>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<notify::Result<Event>>,
) {
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let watch_new = |watcher: &mut Option<RecommendedWatcher>, watched: &mut HashSet<PathBuf>| {
        let mut new = Vec::new();
        for dir in inboxes.keys() {
            if watched.contains(dir) || !dir.is_dir() {
                continue;
            }
            if let Some(w) = watcher.as_mut() {
                match w.watch(dir, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        tracing::debug!(dir = %dir.display(), "watching");
                    }
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), "cannot watch ({e}); rescanned every {} s", RESCAN.as_secs());
                    }
                }
            }
            watched.insert(dir.clone());
            new.push(dir.clone());
        }
        new
    };
    watch_new(&mut watcher, &mut watched);
    // At start: whatever is already waiting.
    for dir in inboxes.keys() {
        rescan(&daemon, dir, &inboxes[dir]);
    }
    let mut tick = tokio::time::interval(RESCAN);
    tick.tick().await;
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                match event {
                    Ok(event) => on_event(&daemon, &inboxes, &mut watched, event),
                    Err(e) => {
                        tracing::warn!("folder watcher: {e}; rescanning");
                        for (dir, readers) in &inboxes {
                            rescan(&daemon, dir, readers);
                        }
                    }
                }
            }
            _ = tick.tick() => {
                // Inboxes that appeared since: watched from now on, and scanned once.
                for dir in watch_new(&mut watcher, &mut watched) {
                    tracing::info!(dir = %dir.display(), "a watched inbox appeared");
                }
                for (dir, readers) in &inboxes {
                    rescan(&daemon, dir, readers);
                }
            }
        }
        if daemon.is_stopping() {
            break;
        }
    }
}

fn on_event(
    daemon: &Daemon,
    inboxes: &BTreeMap<PathBuf, Vec<Reader>>,
    watched: &mut HashSet<PathBuf>,
    event: Event,
) {
    if event.need_rescan() {
        tracing::info!("folder watcher lost events; rescanning");
        for (dir, readers) in inboxes {
            rescan(daemon, dir, readers);
        }
        return;
    }
    let path = match event.kind {
        // A writer closed the file: the strongest sign it is complete.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => event.paths.first(),
        // Renamed into the inbox (uploaded under a temporary name): complete too.
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => event.paths.first(),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => event.paths.get(1),
        EventKind::Remove(_) => {
            // An inbox removed: watched again when it comes back.
            for p in &event.paths {
                if inboxes.contains_key(p) {
                    watched.remove(p);
                }
            }
            return;
        }
        _ => return,
    };
    let Some(path) = path else { return };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Some(readers) = inboxes.get(dir) else {
        return;
    };
    if is_temporary(name) {
        return;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if !meta.is_file() {
        return;
    }
    for r in readers.iter().filter(|r| r.pattern.matches(name)) {
        tracing::debug!(flow = %r.flow, file = name, "closed after writing");
        daemon
            .runner
            .closed_after_write(&r.flow, name, meta.len(), meta.mtime());
        daemon.wake(&r.flow);
    }
}

/// Wakes the flows of `dir` that have a file there to look at.
fn rescan(daemon: &Daemon, dir: &Path, readers: &[Reader]) {
    let mut woken: HashSet<&str> = HashSet::new();
    for entry in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .max_depth(1)
        .into_iter()
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str() else {
            continue;
        };
        if is_temporary(name) {
            continue;
        }
        for r in readers {
            if r.pattern.matches(name) && woken.insert(&r.flow) {
                daemon.wake(&r.flow);
            }
        }
        if woken.len() == readers.len() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;
    use std::path::Path;

    #[test]
    fn partner_paths_stay_under_the_root() {
        assert_eq!(
            local_path(Path::new("/srv/acme"), "/out/products").unwrap(),
            Path::new("/srv/acme/out/products")
        );
        assert_eq!(
            local_path(Path::new("/"), "/tmp/x/in").unwrap(),
            Path::new("/tmp/x/in")
        );
        assert!(local_path(Path::new("/srv/acme"), "/out/../../etc").is_none());
    }
}
