//! `XmlRecords` over arbitrary bytes, with the products record path and namespaces: every
//! record and every field path is read until the end or the first error; never a panic.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use edi_bridge::mapping::path::{FieldPath, RecordPath, parse_field_path, parse_record_path};
use edi_bridge::mapping::records::{Record, XmlRecords};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    record: RecordPath,
    fields: Vec<FieldPath>,
    file: PathBuf,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let ns = BTreeMap::from([("p".to_owned(), "urn:edi-bridge:products:1".to_owned())]);
        let fields = [
            "@sku",
            "p:Name",
            "p:Price/@currency",
            ".",
            "p:Ean[@type='gtin']",
        ]
        .iter()
        .map(|f| parse_field_path(f, &ns).unwrap())
        .collect();
        Fixed {
            record: parse_record_path("/p:Products/p:Product", &ns).unwrap(),
            fields,
            // The readers read files: one per fuzzing process, rewritten for every input.
            file: std::env::temp_dir().join(format!("edi-bridge-fuzz-{}.xml", std::process::id())),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixed = fixed();
    std::fs::write(&fixed.file, data).unwrap();
    let Ok(mut records) = XmlRecords::open(&fixed.file, &fixed.record) else {
        return;
    };
    while let Ok(Some(record)) = records.next_record() {
        for field in &fixed.fields {
            let _ = record.value(field);
        }
    }
});
