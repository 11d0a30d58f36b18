//! CSV records: each row after the header, whose header must equal the configured columns.

use std::fs::File;
use std::path::{Path, PathBuf};

use encoding_rs::UTF_8;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use super::{READ_BUFFER, Raw, Record};
use crate::mapping::config::CsvFormat;
use crate::mapping::error::MapError;
use crate::mapping::path::FieldPath;

/// Reads the rows of a CSV file one by one, after checking its header.
pub struct CsvRows {
    file: PathBuf,
    reader: csv::Reader<DecodeReaderBytes<File, Vec<u8>>>,
    columns: Vec<String>,
    row: csv::StringRecord,
    index: u64,
}

/// One row of a CSV file.
#[derive(Debug)]
pub struct CsvRow<'a> {
    pub index: u64,
    pub line: u64,
    /// Column names, in file order.
    pub columns: &'a [String],
    pub cells: &'a csv::StringRecord,
    /// Per column: its cell was already reported as bad.
    pub reported: Vec<bool>,
}

impl Record for CsvRow<'_> {
    fn index(&self) -> u64 {
        self.index
    }
    fn line(&self) -> u64 {
        self.line
    }
    fn value(&self, path: &FieldPath) -> Raw<'_> {
        let Some(name) = path.steps.first().map(|s| s.name.local.as_str()) else {
            return Raw::Absent;
        };
        let Some(i) = self.columns.iter().position(|c| c == name) else {
            return Raw::Absent;
        };
        if self.reported.get(i).copied().unwrap_or(false) {
            return Raw::Reported;
        }
        self.cells.get(i).map_or(Raw::Absent, Raw::Text)
    }
}

impl CsvRows {
    /// Opens `file`, decodes it from the configured encoding (a BOM wins over it) and checks
    /// that the header row names exactly the configured columns, in order.
    pub fn open(file: &Path, format: &CsvFormat) -> Result<CsvRows, MapError> {
        let f = File::open(file).map_err(|source| MapError::Io {
            path: file.to_owned(),
            source,
        })?;
        let mut decoder = DecodeReaderBytesBuilder::new();
        decoder.bom_override(true).strip_bom(true);
        if format.encoding == UTF_8 {
            // Undecodable bytes must be reported, not silently replaced: the CSV reader checks
            // UTF-8 itself and says where.
            decoder.utf8_passthru(true);
        } else {
            decoder.encoding(Some(format.encoding));
        }
        let reader = csv::ReaderBuilder::new()
            .delimiter(format.delimiter)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            // With the default CRLF terminator the reader counts a record's `\n` only when the
            // next record starts, so every line after the first would be off by one. Ending
            // records at `\n` keeps lines right; the `\r` left before it is trimmed.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(READ_BUFFER)
            .from_reader(decoder.build(f));
        let columns: Vec<String> = format.columns.iter().map(|c| c.name.clone()).collect();
        let mut rows = CsvRows {
            file: file.to_owned(),
            reader,
            columns,
            row: csv::StringRecord::new(),
            index: 0,
        };
        let found: Vec<String> = if rows.read()? {
            rows.row.iter().map(str::to_owned).collect()
        } else {
            Vec::new()
        };
        if found != rows.columns {
            return Err(MapError::CsvHeader {
                expected: rows.columns.clone(),
                found,
            });
        }
        Ok(rows)
    }

    /// The configured column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<CsvRow<'_>>, MapError> {
        if !self.read()? {
            return Ok(None);
        }
        self.index += 1;
        Ok(Some(CsvRow {
            index: self.index,
            line: self.row.position().map_or(0, |p| p.line()),
            columns: &self.columns,
            cells: &self.row,
            reported: vec![false; self.columns.len()],
        }))
    }

    fn read(&mut self) -> Result<bool, MapError> {
        self.reader.read_record(&mut self.row).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            match e.into_kind() {
                csv::ErrorKind::Io(source) => MapError::Io {
                    path: self.file.clone(),
                    source,
                },
                csv::ErrorKind::Utf8 { err, .. } => MapError::Encoding {
                    line,
                    message: format!(
                        "field {} is not valid UTF-8 (is the configured encoding right?)",
                        err.field() + 1
                    ),
                },
                other => MapError::Csv {
                    line,
                    message: format!("{other:?}"),
                },
            }
        })
    }
}
