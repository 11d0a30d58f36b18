//! An import flow's keys: inbox, completeness, folders, format and what a refused record does.

use std::time::Duration;

use super::ConfigError;
use super::mapping::{parse_csv, parse_mapping};
use super::read::{Item, Node};
use crate::mapping::config::{Format, Mapping};

/// An import flow: inbox → completeness → validate → map → Odoo → archive or error.
#[derive(Debug, Clone)]
pub struct ImportFlow {
    /// Remote folder (SFTP path, or relative to a local partner's root).
    pub inbox: String,
    /// Glob on the file name (`pattern`, default "*").
    pub pattern: glob::Pattern,
    /// Archive folder template with `{yyyy}` `{mm}` `{dd}` `{name}` (default `<inbox>/archive`;
    /// no trailing slash).
    pub archive: String,
    /// Error folder (default `<inbox>/error`; no trailing slash).
    pub error: String,
    /// Unchanged size and mtime for this long means complete (default 10s).
    pub settle: Duration,
    /// A file that looks truncated waits at most this long, then goes to error (default 1h,
    /// never below `settle`).
    pub settle_max: Duration,
    /// Optional minimum age of the mtime (`min_age`).
    pub min_age: Option<Duration>,
    /// Optional done-marker (`done_marker = ".done"` → `name.xml.done`, or `".ok"` with
    /// `done_marker_replaces_extension = true` → `name.ok`).
    pub done_marker: Option<DoneMarker>,
    /// Largest file taken, in bytes (`max_file_size`, default 2 GiB; a number of bytes or a
    /// string such as "500MB" (powers of 1000) or "2GiB" (powers of 1024)).
    pub max_file_size: u64,
    /// `format`, default XML.
    pub format: Format,
    /// `on_record_error`, default `skip`.
    pub on_record_error: OnRecordError,
    /// Tries of a file that may die (the process killed, or out of time) before it is set
    /// aside in `error/` as a poison file (`max_attempts`, default 3).
    pub max_attempts: u32,
    /// `[flows.<name>.mapping]`.
    pub mapping: Mapping,
}

/// A file is complete once its marker file exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneMarker {
    /// Suffix such as `.done` or `.ok`.
    pub suffix: String,
    /// `name.ok` instead of `name.xml.ok`.
    pub replaces_extension: bool,
}

/// `on_record_error`: what a record Odoo refuses does to the rest of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRecordError {
    /// Good records are applied, bad ones listed in the report; the file goes to `error/`.
    Skip,
    /// Nothing is applied when a record fails.
    FailFile,
}

/// Keys of a CSV flow, refused on an XML flow.
const CSV_KEYS: [&str; 4] = ["delimiter", "encoding", "decimal", "columns"];

pub(super) fn parse_import(t: &mut Node) -> Result<ImportFlow, ConfigError> {
    let inbox = t
        .require(
            "inbox",
            "the folder the partner drops files into, e.g. inbox = \"/out/products\"",
        )?
        .text()?;
    let inbox = match inbox.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    };
    let pattern = match t.take("pattern") {
        Some(item) => item.glob()?,
        None => glob::Pattern::new("*").expect("`*` is a valid glob"),
    };
    let archive = match t.take("archive") {
        Some(item) => item.archive_template()?,
        None => under(&inbox, "archive"),
    };
    let error = match t.take("error") {
        Some(item) => item.text()?.trim_end_matches('/').to_string(),
        None => under(&inbox, "error"),
    };
    let settle = t.take("settle").map(Item::duration).transpose()?;
    let settle = settle.unwrap_or(Duration::from_secs(10));
    let settle_max = match t.take("settle_max") {
        None => Duration::from_secs(3600).max(settle),
        Some(item) => {
            let key = item.key.clone();
            let settle_max = item.positive_duration()?;
            if settle_max < settle {
                return Err(t.cx.err(
                    &key,
                    format!(
                        "must be at least settle ({})",
                        humantime::format_duration(settle)
                    ),
                ));
            }
            settle_max
        }
    };
    let min_age = t.take("min_age").map(Item::duration).transpose()?;
    let done_marker = match (
        t.take("done_marker"),
        t.take("done_marker_replaces_extension"),
    ) {
        (None, Some(replaces)) => {
            return Err(replaces.err("is only used with done_marker".to_string()));
        }
        (None, None) => None,
        (Some(marker), replaces) => Some(DoneMarker {
            suffix: marker.done_suffix()?,
            replaces_extension: replaces.map(Item::boolean).transpose()?.unwrap_or(false),
        }),
    };
    let max_file_size = t.take("max_file_size").map(Item::size).transpose()?;
    #[derive(Clone, Copy)]
    enum Kind {
        Xml,
        Csv,
    }
    let kind = match t.take("format") {
        Some(item) => item.choice(&[("xml", Kind::Xml), ("csv", Kind::Csv)])?,
        None => Kind::Xml,
    };
    let on_record_error = match t.take("on_record_error") {
        Some(item) => item.choice(&[
            ("skip", OnRecordError::Skip),
            ("fail_file", OnRecordError::FailFile),
        ])?,
        None => OnRecordError::Skip,
    };
    let max_attempts = t
        .take("max_attempts")
        .map(|i| i.count(1..=1000))
        .transpose()?
        .map_or(3, |n| n as u32);
    let format = match kind {
        Kind::Xml => {
            if let Some(key) = CSV_KEYS.iter().find(|k| t.has(k)) {
                return Err(t.cx.err(
                    &t.child_key(key),
                    "is a CSV setting, but this flow reads XML (set format = \"csv\" for a CSV flow)",
                ));
            }
            let schema = t.require(
                "schema",
                "the XSD that every file of this XML flow is validated against, e.g. \
                 schema = \"xsd/products.xsd\"",
            )?;
            Format::Xml {
                schema: schema.existing_file()?,
            }
        }
        Kind::Csv => {
            if let Some(schema) = t.take("schema") {
                return Err(schema.err(
                    "a CSV flow has no XSD; its columns (columns = [{ name = \"sku\" }, …]) \
                     describe the file"
                        .to_string(),
                ));
            }
            Format::Csv(parse_csv(t)?)
        }
    };
    let mapping = t
        .require("mapping", "a [flows.<name>.mapping] table")?
        .table()?;
    let mapping = parse_mapping(mapping, &format)?;
    Ok(ImportFlow {
        inbox,
        pattern,
        archive,
        error,
        settle,
        settle_max,
        min_age,
        done_marker,
        max_file_size: max_file_size.unwrap_or(2 << 30),
        format,
        on_record_error,
        max_attempts,
        mapping,
    })
}

/// `folder/name`, without doubling the slash under `/`.
fn under(folder: &str, name: &str) -> String {
    format!("{}/{name}", folder.trim_end_matches('/'))
}

impl Item<'_> {
    fn glob(self) -> Result<glob::Pattern, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let text = self.text()?;
        glob::Pattern::new(&text).map_err(|e| {
            cx.err(
                &key,
                format!(
                    "invalid glob {text:?}: {} (at character {})",
                    e.msg,
                    e.pos + 1
                ),
            )
        })
    }

    /// `archive`: a folder with `{yyyy}` `{mm}` `{dd}` `{name}` placeholders.
    fn archive_template(self) -> Result<String, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let text = self.text()?;
        let bad = |what: String| {
            cx.err(
                &key,
                format!("{what}; the placeholders are {{yyyy}}, {{mm}}, {{dd}} and {{name}}"),
            )
        };
        let mut rest = text.as_str();
        while let Some(i) = rest.find(['{', '}']) {
            if rest[i..].starts_with('}') {
                return Err(bad("`}` without `{`".to_string()));
            }
            let after = &rest[i + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| bad("`{` without `}`".to_string()))?;
            let name = &after[..end];
            if !matches!(name, "yyyy" | "mm" | "dd" | "name") {
                return Err(bad(format!("unknown placeholder {{{name}}}")));
            }
            rest = &after[end + 1..];
        }
        Ok(text.trim_end_matches('/').to_string())
    }

    /// `done_marker`: a suffix such as `.done`.
    fn done_suffix(self) -> Result<String, ConfigError> {
        let valid = self.value.as_str().is_some_and(|s| {
            s.len() > 1
                && s.starts_with('.')
                && !s.contains(['/', '\\'])
                && !s.contains(char::is_control)
        });
        if valid {
            return self.string();
        }
        Err(self.expected("a file name suffix such as \".done\" or \".ok\""))
    }

    /// Bytes, as a number or a string with a unit: "500MB", "2GB" (powers of 1000),
    /// "2GiB" (powers of 1024).
    fn size(self) -> Result<u64, ConfigError> {
        let bytes = match &self.value {
            toml::Value::Integer(i) => u64::try_from(*i).ok(),
            toml::Value::String(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .ok()
                .map(|b| b.as_u64()),
            _ => None,
        };
        match bytes {
            Some(n) if n > 0 => Ok(n),
            _ => {
                Err(self.expected("a size such as 1048576 (bytes), \"500MB\", \"2GB\" or \"2GiB\""))
            }
        }
    }
}
