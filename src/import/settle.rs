//! Completeness: which files of an inbox listing may be taken now.
//!
//! A file is taken only when it is complete: its size and mtime unchanged for at least `settle`
//! — across two listings `settle` apart (the ledger remembers since when), or at the first
//! listing when its mtime is already that old — its done-marker present when the flow uses one,
//! old enough when `min_age` is set, and, for XML, its root element closed.
//! An incomplete file waits; it is never moved anywhere for being incomplete.

use std::collections::HashSet;
use std::time::Duration;

use crate::config::{DoneMarker, ImportFlow};
use crate::transport::Entry;

/// Why a listed file is or is not taken now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Complete: take it.
    Ready,
    /// Not this flow's file (pattern), a temporary or hidden name, a folder, or a done-marker.
    Ignored(String),
    /// The name is unsafe (control characters, `..`, `/`): it is left alone.
    Refused(String),
    /// Size or mtime changed less than `settle` ago; complete at the earliest at `until_ms`.
    Settling { until_ms: i64 },
    /// Waiting for its done-marker file.
    NoMarker { marker: String },
    /// Modified less than `min_age` ago.
    TooYoung { until_ms: i64 },
}

/// Temporary and hidden names that are never taken: `.*`, `*.part`, `*.tmp`, `*.filepart`.
pub fn is_temporary(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || [".part", ".tmp", ".filepart", ".partial", ".crdownload", "~"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// Longest name taken: a file that failed needs `<name>~N.error.json` to fit in 255 bytes.
pub const MAX_NAME_BYTES: usize = 230;

/// Remote names are untrusted: no path separators, no `..`, no control characters.
pub fn unsafe_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".into());
    }
    if name.contains('/') || name.contains('\\') {
        return Some("the name contains a path separator".into());
    }
    if name.contains("..") {
        return Some("the name contains `..`".into());
    }
    if name.chars().any(char::is_control) {
        return Some("the name contains control characters".into());
    }
    if name.contains('\u{FFFD}') {
        return Some("the name is not valid UTF-8".into());
    }
    // Invisible characters and direction overrides make a name read as something it is not.
    if name.chars().any(|c| {
        matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
    }) {
        return Some("the name contains invisible or direction-changing characters".into());
    }
    // Room for the `~N` collision suffix and `.error.txt` within the usual 255-byte limit.
    if name.len() > MAX_NAME_BYTES {
        return Some(format!("the name is longer than {MAX_NAME_BYTES} bytes"));
    }
    None
}

/// The done-marker file name for `name`, e.g. `a.xml.done` or `a.ok`.
pub fn marker_name(marker: &DoneMarker, name: &str) -> String {
    if marker.replaces_extension {
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        format!("{stem}{}", marker.suffix)
    } else {
        format!("{name}{}", marker.suffix)
    }
}

/// Whether `name` is a done-marker of some other file in the listing.
fn is_marker_of_listed(marker: &DoneMarker, name: &str, names: &HashSet<&str>) -> bool {
    names
        .iter()
        .any(|other| *other != name && marker_name(marker, other) == name)
}

/// Decides whether `entry` may be taken. `unchanged_since_ms` comes from the ledger (since when
/// this size and mtime have been seen); `names` is the whole listing (for done-markers).
pub fn assess(
    flow: &ImportFlow,
    entry: &Entry,
    unchanged_since_ms: i64,
    now_ms: i64,
    names: &HashSet<&str>,
) -> Readiness {
    if let Some(why) = unsafe_name(&entry.name) {
        return Readiness::Refused(why);
    }
    if !entry.is_file {
        return Readiness::Ignored("not a regular file".into());
    }
    if is_temporary(&entry.name) {
        return Readiness::Ignored("temporary or hidden name".into());
    }
    if let Some(marker) = &flow.done_marker
        && is_marker_of_listed(marker, &entry.name, names)
    {
        return Readiness::Ignored("done-marker of another file".into());
    }
    if !flow.pattern.matches(&entry.name) {
        return Readiness::Ignored(format!("does not match the pattern `{}`", flow.pattern));
    }
    if let Some(marker) = &flow.done_marker {
        let wanted = marker_name(marker, &entry.name);
        if !names.contains(wanted.as_str()) {
            return Readiness::NoMarker { marker: wanted };
        }
    }
    if let Some(min_age) = flow.min_age {
        let until_ms = entry.mtime.saturating_mul(1000) + millis(min_age);
        if now_ms < until_ms {
            return Readiness::TooYoung { until_ms };
        }
    }
    // A file whose mtime was already `settle` old when it was first seen is not being written
    // (an upload in progress keeps moving its mtime): it needs no second listing. An mtime
    // ahead of this clock gives nothing, and for XML the closed root is still checked.
    let quiet_since_ms = unchanged_since_ms.min(entry.mtime.saturating_mul(1000));
    if now_ms < quiet_since_ms + millis(flow.settle) {
        // The next listing that can tell is `settle` after this one saw it.
        return Readiness::Settling {
            until_ms: unchanged_since_ms + millis(flow.settle),
        };
    }
    Readiness::Ready
}

/// A cheap look at an XML file's tail: does it end with the closed root element (`</Root>`,
/// any prefix, or `/>`), ignoring trailing white space, comments and processing instructions?
/// `root` is the root's local name when the mapping knows it. A file that does not may still be
/// uploading.
pub fn root_closed(tail: &[u8], root: Option<&str>) -> bool {
    let mut end = tail.len();
    loop {
        while end > 0 && tail[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        let text = &tail[..end];
        if text.ends_with(b"-->") {
            // A trailing comment after the root: skip it.
            match find_last(text, b"<!--") {
                Some(start) => {
                    end = start;
                    continue;
                }
                None => return false,
            }
        }
        if text.ends_with(b"?>") {
            match find_last(text, b"<?") {
                Some(start) => {
                    end = start;
                    continue;
                }
                None => return false,
            }
        }
        if !text.ends_with(b">") {
            return false;
        }
        let Some(open) = text.iter().rposition(|&b| b == b'<') else {
            return false;
        };
        let tag = &text[open..];
        if tag.ends_with(b"/>") {
            return true;
        }
        let Some(closing) = tag.strip_prefix(b"</") else {
            return false;
        };
        let name = closing[..closing.len() - 1].trim_ascii_end();
        let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
        return root.is_none_or(|root| local == root.as_bytes());
    }
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_and_hidden_names_are_never_taken() {
        for name in [
            ".hidden.xml",
            "a.xml.part",
            "a.tmp",
            "a.xml.filepart",
            "A.XML.PART",
        ] {
            assert!(is_temporary(name), "{name}");
        }
        assert!(!is_temporary("products 1.xml"));
        assert!(!is_temporary("produits-été.xml"));
    }

    #[test]
    fn unsafe_names_are_refused() {
        assert!(unsafe_name("a/b.xml").is_some());
        assert!(unsafe_name("..").is_some());
        assert!(unsafe_name("a..xml").is_some());
        assert!(unsafe_name("bad\nname.xml").is_some());
        assert!(unsafe_name("bell\u{7}.xml").is_some());
        assert!(unsafe_name("invoice\u{202E}lmx.exe").is_some());
        assert!(unsafe_name("bad\u{FFFD}.xml").is_some());
        assert!(unsafe_name(&"a".repeat(231)).is_some());
        assert!(unsafe_name(&"a".repeat(230)).is_none());
        assert!(unsafe_name("products 1.xml").is_none());
        assert!(unsafe_name("Überweisung ç.xml").is_none());
    }

    #[test]
    fn marker_names() {
        let done = DoneMarker {
            suffix: ".done".into(),
            replaces_extension: false,
        };
        let ok = DoneMarker {
            suffix: ".ok".into(),
            replaces_extension: true,
        };
        assert_eq!(marker_name(&done, "a.xml"), "a.xml.done");
        assert_eq!(marker_name(&ok, "a.xml"), "a.ok");
    }

    fn csv_flow(settle: &str) -> ImportFlow {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[odoo]\ndry_run = true\n[partners.demo]\nroot = \"in\"\n[flows.p]\npartner = \"demo\"\n\
             direction = \"import\"\ninbox = \"/in\"\nsettle = \"{settle}\"\nformat = \"csv\"\n\
             columns = [{{ name = \"sku\" }}]\n[flows.p.mapping]\naction = \"upsert\"\n\
             model = \"product.product\"\nkey = [\"default_code\"]\n\
             [flows.p.mapping.fields]\ndefault_code = \"sku\"\n"
        );
        let config = crate::config::Config::parse(&text, &dir.path().join("edi-bridge.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        match &config.flows["p"].direction {
            crate::config::Direction::Import(import) => (**import).clone(),
            crate::config::Direction::Export(_) => unreachable!(),
        }
    }

    fn entry(mtime_s: i64) -> Entry {
        Entry {
            name: "stock.csv".into(),
            size: 10,
            mtime: mtime_s,
            is_file: true,
        }
    }

    #[test]
    fn a_file_already_quiet_for_settle_is_taken_at_its_first_listing() {
        let flow = csv_flow("10s");
        let names = HashSet::from(["stock.csv"]);
        let now_ms = 1_000_000_000;
        // First seen now, modified a minute ago: nothing is writing it.
        let old = entry(now_ms / 1000 - 60);
        assert_eq!(
            assess(&flow, &old, now_ms, now_ms, &names),
            Readiness::Ready
        );
        // Modified two seconds ago: it waits for a second listing `settle` later.
        let fresh = entry(now_ms / 1000 - 2);
        assert_eq!(
            assess(&flow, &fresh, now_ms, now_ms, &names),
            Readiness::Settling {
                until_ms: now_ms + 10_000
            }
        );
        // An mtime ahead of this clock counts from the first listing.
        let ahead = entry(now_ms / 1000 + 3600);
        assert_eq!(
            assess(&flow, &ahead, now_ms, now_ms, &names),
            Readiness::Settling {
                until_ms: now_ms + 10_000
            }
        );
        assert_eq!(
            assess(&flow, &ahead, now_ms, now_ms + 10_000, &names),
            Readiness::Ready
        );
    }

    #[test]
    fn closed_root_is_recognised() {
        assert!(root_closed(b"<a><b/></a>\n", Some("a")));
        assert!(root_closed(b"<a/>", Some("a")));
        assert!(root_closed(
            b"</p:Products >\r\n<!-- generated -->\n",
            Some("Products")
        ));
        assert!(!root_closed(b"<a><b>12</b>", Some("a")));
        assert!(root_closed(b"<a><b>12</b>", None));
        assert!(!root_closed(b"<a><b>1", None));
        assert!(!root_closed(b"", None));
        assert!(!root_closed(b"</Produ", Some("Products")));
    }
}
