//! The mapping's path language: `parse_record_path` and `parse_field_path` on arbitrary text,
//! with a fixed set of namespace prefixes. Errors are fine; panics are not.
#![no_main]

use std::collections::BTreeMap;

use edi_bridge::mapping::path::{parse_field_path, parse_record_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let namespaces = BTreeMap::from([
        ("p".to_owned(), "urn:edi-bridge:products:1".to_owned()),
        ("cbc".to_owned(), "urn:cbc".to_owned()),
    ]);
    if let Ok(path) = parse_record_path(text, &namespaces) {
        assert!(
            !path.steps.is_empty(),
            "a record path has at least one step"
        );
        assert_eq!(path.text, text);
    }
    if let Ok(path) = parse_field_path(text, &namespaces) {
        assert_eq!(path.text, text);
    }
});
