//! What an attempt keeps on local disk between its steps, so that memory does not grow with
//! the file: the download (`<id>.data`) and the operations its records map to (`<id>.ops`, one
//! JSON line each, in file order), read back a window at a time when they are applied. Also the
//! record numbers a file applied, kept as ranges.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::operation::Operation;

/// Where attempt `id` of `flow` keeps its operations.
pub fn ops_path(spool: &Path, flow: &str, id: i64) -> PathBuf {
    spool.join(flow).join(format!("{id}.ops"))
}

/// The attempt a spool file belongs to: `12.data` and `12.ops` are attempt 12's.
pub fn attempt_of(name: &str) -> Option<i64> {
    name.strip_suffix(".data")
        .or_else(|| name.strip_suffix(".ops"))
        .and_then(|n| n.parse().ok())
}

/// Writes operations as they are made; the first write error is kept and reported at the end
/// (a sink cannot fail the mapping midway).
pub struct OpsWriter {
    out: BufWriter<File>,
    count: u64,
    error: Option<io::Error>,
}

impl OpsWriter {
    pub fn create(path: &Path) -> io::Result<OpsWriter> {
        Ok(OpsWriter {
            out: BufWriter::with_capacity(256 * 1024, File::create(path)?),
            count: 0,
            error: None,
        })
    }

    pub fn push(&mut self, op: &Operation) {
        if self.error.is_some() {
            return;
        }
        let written = serde_json::to_writer(&mut self.out, op)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match written {
            Ok(()) => self.count += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// Flushes to disk; the number of operations written.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(self.count)
    }
}

/// Reads spooled operations back, in order, a window at a time.
pub struct OpsReader {
    lines: io::Lines<BufReader<File>>,
    done: bool,
}

impl OpsReader {
    pub fn open(path: &Path) -> io::Result<OpsReader> {
        Ok(OpsReader {
            lines: BufReader::with_capacity(256 * 1024, File::open(path)?).lines(),
            done: false,
        })
    }

    /// Up to `max` more operations; empty at the end.
    pub fn next_window(&mut self, max: usize) -> io::Result<Vec<Operation>> {
        let mut window = Vec::new();
        while !self.done && window.len() < max {
            match self.lines.next() {
                Some(line) => window.push(serde_json::from_str(&line?).map_err(io::Error::from)?),
                None => self.done = true,
            }
        }
        Ok(window)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Record numbers, kept as ranges: a file of millions of applied records costs a few entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRanges(Vec<RangeInclusive<u64>>);

impl RecordRanges {
    /// Adds a record; records mostly come in order, which is what keeps the ranges few.
    pub fn add(&mut self, record: u64) {
        match self.0.last_mut() {
            Some(last) if last.contains(&record) => {}
            Some(last) if *last.end() + 1 == record => *last = *last.start()..=record,
            _ => self.0.push(record..=record),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `record` is among them.
    pub fn contains(&self, record: u64) -> bool {
        self.0.iter().any(|r| r.contains(&record))
    }

    /// Sorted, merged ranges.
    pub fn ranges(&self) -> Vec<RangeInclusive<u64>> {
        let mut ranges = self.0.clone();
        ranges.sort_by_key(|r| *r.start());
        let mut out: Vec<RangeInclusive<u64>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match out.last_mut() {
                Some(last) if *r.start() <= *last.end() + 1 => {
                    *last = *last.start()..=(*last.end()).max(*r.end());
                }
                _ => out.push(r),
            }
        }
        out
    }

    /// How many records.
    pub fn count(&self) -> u64 {
        self.ranges().iter().map(|r| r.end() - r.start() + 1).sum()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::operation::ActionKind;

    fn op(record: u64) -> Operation {
        Operation {
            action: ActionKind::Upsert,
            model: "product.product".into(),
            key: Map::new(),
            values: Map::new(),
            lookups: Default::default(),
            record,
            line: record + 1,
        }
    }

    #[test]
    fn operations_come_back_in_order_a_window_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = ops_path(dir.path(), "f", 7);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = OpsWriter::create(&path).unwrap();
        for r in 1..=5 {
            w.push(&op(r));
        }
        assert_eq!(w.finish().unwrap(), 5);
        let mut reader = OpsReader::open(&path).unwrap();
        let first: Vec<u64> = reader
            .next_window(2)
            .unwrap()
            .iter()
            .map(|o| o.record)
            .collect();
        assert_eq!(first, [1, 2]);
        let rest: Vec<u64> = reader
            .next_window(10)
            .unwrap()
            .iter()
            .map(|o| o.record)
            .collect();
        assert_eq!(rest, [3, 4, 5]);
        assert!(reader.next_window(10).unwrap().is_empty());
        assert!(reader.is_done());
        assert_eq!(attempt_of("7.ops"), Some(7));
        assert_eq!(attempt_of("7.data"), Some(7));
        assert_eq!(attempt_of("7.check"), None);
    }

    #[test]
    fn record_ranges_stay_few_and_merge() {
        let mut r = RecordRanges::default();
        for n in (1..=1000).chain([1002, 1003, 5, 1001]) {
            r.add(n);
        }
        assert_eq!(r.ranges(), vec![1..=1003]);
        assert_eq!(r.count(), 1003);
        assert!(r.contains(1001) && !r.contains(1004));
    }
}
