//! A failure of a whole file while its records are read or mapped, and what it does to the file.
//!
//! Both the record readers ([`crate::mapping::records`]) and the mapper stand on it.

use std::io;
use std::path::PathBuf;

use crate::error::Consequence;

/// A failure of the whole file: no record after it is read.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The local copy cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The document is not well-formed XML (or uses what edi-bridge refuses, such as a DOCTYPE).
    #[error("XML error at line {line}, column {column}: {message}")]
    Xml {
        line: u64,
        column: u64,
        message: String,
    },
    /// The bytes are not text in the file's encoding.
    #[error("bad encoding at line {line}: {message}")]
    Encoding { line: u64, message: String },
    /// The CSV header row is not the configured columns.
    #[error(
        "the CSV header does not match the configured columns: expected {}, found {}",
        list(expected),
        list(found)
    )]
    CsvHeader {
        expected: Vec<String>,
        found: Vec<String>,
    },
    /// The CSV file cannot be parsed.
    #[error("CSV error at line {line}: {message}")]
    Csv { line: u64, message: String },
    /// The mapping cannot be applied to this format (no record path for XML, a path naming no
    /// configured CSV column).
    #[error("mapping: {0}")]
    Mapping(String),
}

pub(super) fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no header".to_owned()
    } else {
        format!("\"{}\"", names.join("\", \""))
    }
}

impl MapError {
    /// What happens to the file: an unreadable spool file is an outage, bad content rejects the
    /// file, a mapping that does not fit its format stops the flow.
    pub fn consequence(&self) -> Consequence {
        match self {
            MapError::Io { .. } => Consequence::Retry,
            MapError::Xml { .. }
            | MapError::Encoding { .. }
            | MapError::CsvHeader { .. }
            | MapError::Csv { .. } => Consequence::Reject,
            MapError::Mapping(_) => Consequence::Stop,
        }
    }

    /// The line the error is about, when there is one.
    pub fn line(&self) -> Option<u64> {
        match self {
            MapError::Xml { line, .. }
            | MapError::Encoding { line, .. }
            | MapError::Csv { line, .. } => Some(*line),
            MapError::CsvHeader { .. } => Some(1),
            MapError::Io { .. } | MapError::Mapping(_) => None,
        }
    }
}
