//! `CsvRows` over arbitrary bytes with a fixed column set. The first byte picks the encoding
//! and the delimiter, the rest is the file; every row is read until the end or the first error.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use edi_bridge::mapping::config::{CsvColumn, CsvFormat, ValueType};
use edi_bridge::mapping::path::column_path;
use edi_bridge::mapping::records::{CsvRows, Record};
use libfuzzer_sys::fuzz_target;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("edi-bridge-fuzz-{}.csv", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let encoding = match selector & 3 {
        0 => encoding_rs::UTF_8,
        1 => encoding_rs::WINDOWS_1252,
        2 => encoding_rs::UTF_16LE,
        _ => encoding_rs::ISO_8859_2,
    };
    let delimiter = [b',', b';', b'\t', b'|'][usize::from(selector >> 2 & 3)];
    let column = |name: &str, ty| CsvColumn {
        name: name.to_owned(),
        ty,
        optional: false,
    };
    let format = CsvFormat {
        delimiter,
        encoding,
        decimal: ',',
        columns: vec![
            column("sku", ValueType::String),
            column("name", ValueType::String),
            column("price", ValueType::Float),
        ],
    };
    std::fs::write(file(), content).unwrap();
    let Ok(mut rows) = CsvRows::open(file(), &format) else {
        return;
    };
    let paths = ["sku", "name", "price", "missing"].map(column_path);
    while let Ok(Some(row)) = rows.next_row() {
        for path in &paths {
            let _ = row.value(path);
        }
    }
});
