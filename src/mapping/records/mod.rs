//! Streams the records of a downloaded file, one at a time, so memory stays flat however many
//! records the file holds.
//!
//! XML: a namespace-aware pull parser walks the document; only the elements on the way to the
//! mapping's record path are followed, and each record element is read into a small tree
//! ([`Element`]) with resolved names, attributes and trimmed text. The tree is handed out and
//! dropped by the caller before the next record is read. Nothing is expanded: the only entity
//! references understood are XML's five predefined ones and character references.
//!
//! CSV: each row after the header is a record; the header must equal the configured columns.
//!
//! Both readers know where each record starts (its line), counted while reading rather than by
//! scanning the file again.

mod csv;
mod xml;

use std::borrow::Cow;

pub use csv::{CsvRow, CsvRows};
#[cfg(test)]
pub(crate) use xml::LIVE_ELEMENTS;
pub use xml::{Element, Name, Part, XmlRecord, XmlRecords};

use crate::mapping::path::FieldPath;

/// Read buffer of the file readers: large enough that a gigabyte file costs few system calls.
pub(super) const READ_BUFFER: usize = 256 * 1024;

/// What a record holds at a field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw<'a> {
    /// The trimmed text found (possibly empty).
    Text(&'a str),
    /// Nothing at that path (no such element, attribute or column).
    Absent,
    /// The value is there but was already reported as bad while the record was read (a CSV cell
    /// that does not match its column's type): it must not be reported a second time.
    Reported,
}

/// One record of a file, whatever its format: what the mapping evaluates its paths on.
pub trait Record {
    /// 1-based index of the record in its file.
    fn index(&self) -> u64;
    /// Line of the record's start in its file.
    fn line(&self) -> u64;
    /// The value at `path`, relative to the record.
    fn value(&self, path: &FieldPath) -> Raw<'_>;
    /// The elements at `path` (an element path) under the record, each read with paths
    /// relative to it: the lines of a delivery confirmation. A CSV row has none.
    fn parts(&self, _path: &FieldPath) -> Vec<Part<'_>> {
        Vec::new()
    }
}

/// A value as shown in a problem: cut to a readable length.
pub(crate) fn shorten(value: &str) -> Cow<'_, str> {
    const MAX: usize = 200;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &value[..cut])),
        None => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use super::*;
    use crate::mapping::error::MapError;
    use crate::mapping::path::{parse_field_path, parse_record_path};

    fn ns() -> BTreeMap<String, String> {
        BTreeMap::from([("p".to_owned(), "urn:edi-bridge:products:1".to_owned())])
    }

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn read_all(bytes: &[u8], record: &str) -> Result<Vec<XmlRecord>, MapError> {
        let f = file_with(bytes);
        let path = parse_record_path(record, &ns()).unwrap();
        let mut records = XmlRecords::open(f.path(), &path)?;
        let mut all = Vec::new();
        while let Some(r) = records.next_record()? {
            all.push(r);
        }
        Ok(all)
    }

    fn text<'a>(r: &'a XmlRecord, path: &str) -> Raw<'a> {
        r.value(&parse_field_path(path, &ns()).unwrap())
    }

    #[test]
    fn records_carry_index_and_the_line_of_their_start_tag() {
        let xml = "<?xml version=\"1.0\"?>\n<Products>\n  <Header>\n    <Product>not a record</Product>\n  </Header>\n  <Product>\n    <Name>A</Name>\n  </Product>\n\n  <Product\n    sku=\"B\"/>\n  <Product><Name>C</Name></Product>\n</Products>\n";
        let records = read_all(xml.as_bytes(), "/Products/Product").unwrap();
        let found: Vec<(u64, u64)> = records.iter().map(|r| (r.index, r.line)).collect();
        assert_eq!(found, vec![(1, 6), (2, 10), (3, 12)]);
        assert_eq!(text(&records[0], "Name"), Raw::Text("A"));
        assert_eq!(text(&records[1], "@sku"), Raw::Text("B"));
        assert_eq!(text(&records[2], "Name"), Raw::Text("C"));
    }

    #[test]
    fn lines_count_every_construct_that_can_hold_a_newline() {
        let xml = "<?xml version=\"1.0\"\n encoding=\"UTF-8\"?>\n<!-- a\ncomment -->\n<?pi\n data?>\n\
                   <R\n a=\"x\ny\">\n<L><![CDATA[one\ntwo]]>&amp;\n&#10;</L>\n<!--\n-->\n\n\
                   <L\n/><X>\n</X\n><L>\r\n</L></R>";
        let records = read_all(xml.as_bytes(), "/R/L").unwrap();
        let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
        let expected: Vec<u64> = xml
            .match_indices("<L")
            .map(|(i, _)| xml[..i].matches('\n').count() as u64 + 1)
            .collect();
        assert_eq!(lines, expected);
        assert_eq!(lines, vec![10, 16, 19]);
        assert_eq!(text(&records[0], "."), Raw::Text("one\ntwo&"));
    }

    #[test]
    fn a_default_namespace_is_matched_through_a_mapping_prefix_and_other_prefixes_too() {
        let default_ns = r#"<Products xmlns="urn:edi-bridge:products:1"><Product><Name>A</Name></Product></Products>"#;
        let other_prefix = r#"<x:Products xmlns:x="urn:edi-bridge:products:1"><x:Product><x:Name>B</x:Name></x:Product></x:Products>"#;
        for (xml, want) in [(default_ns, "A"), (other_prefix, "B")] {
            let records = read_all(xml.as_bytes(), "/p:Products/p:Product").unwrap();
            assert_eq!(records.len(), 1);
            assert_eq!(text(&records[0], "p:Name"), Raw::Text(want));
            // Unprefixed names in a mapping mean "no namespace", as in XPath.
            assert_eq!(text(&records[0], "Name"), Raw::Absent);
        }
        let unprefixed = read_all(default_ns.as_bytes(), "/Products/Product").unwrap();
        assert!(unprefixed.is_empty(), "no-namespace path must not match");
        let wrong_ns = r#"<Products xmlns="urn:other"><Product/></Products>"#;
        assert!(
            read_all(wrong_ns.as_bytes(), "/p:Products/p:Product")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn attributes_predicates_text_and_dot() {
        let xml = r#"<Products xmlns:p="urn:edi-bridge:products:1">
  <Product kind="service"><Name>skip me</Name></Product>
  <Product kind="goods" p:origin=" BE ">
    <Code type="internal">I-1</Code>
    <Code type="gtin">5400000000001</Code>
    <Code>plain</Code>
    <Unit><Name lang="fr">Unités</Name></Unit>
  </Product>
  <Product kind="goods">  text of the record  </Product>
</Products>"#;
        let records = read_all(xml.as_bytes(), "/Products/Product[@kind='goods']").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].index, 1);
        assert_eq!(records[0].line, 3);
        let r = &records[0];
        assert_eq!(text(r, "Code"), Raw::Text("I-1"));
        assert_eq!(text(r, "Code[@type='gtin']"), Raw::Text("5400000000001"));
        assert_eq!(text(r, "Code[@type='gtin']/@type"), Raw::Text("gtin"));
        assert_eq!(text(r, "Code[@type='other']"), Raw::Absent);
        assert_eq!(text(r, "Unit/Name"), Raw::Text("Unités"));
        assert_eq!(text(r, "Unit/Name/@lang"), Raw::Text("fr"));
        assert_eq!(text(r, "@p:origin"), Raw::Text("BE"));
        // An unprefixed attribute is in no namespace.
        assert_eq!(text(r, "@origin"), Raw::Absent);
        assert_eq!(text(r, "@missing"), Raw::Absent);
        assert_eq!(text(&records[1], "."), Raw::Text("text of the record"));
    }

    #[test]
    fn entities_character_references_and_cdata_are_decoded() {
        let xml = "<R><L a=\"x &amp; y &#233;\"><N>Fish &amp; Chips &lt;3 &#x263A; <![CDATA[<raw> & ]]>end</N></L></R>";
        let records = read_all(xml.as_bytes(), "/R/L").unwrap();
        assert_eq!(text(&records[0], "@a"), Raw::Text("x & y é"));
        assert_eq!(
            text(&records[0], "N"),
            Raw::Text("Fish & Chips <3 \u{263A} <raw> & end")
        );
        let undefined = read_all(b"<R><L>&custom;</L></R>", "/R/L").unwrap_err();
        assert!(
            matches!(&undefined, MapError::Xml { message, .. } if message.contains("custom")),
            "{undefined}"
        );
    }

    #[test]
    fn a_utf8_bom_is_accepted() {
        let mut xml = vec![0xEF, 0xBB, 0xBF];
        xml.extend_from_slice(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R>\n<L>é</L>\n</R>".as_bytes(),
        );
        let records = read_all(&xml, "/R/L").unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].line, 3);
        assert_eq!(text(&records[0], "."), Raw::Text("é"));
    }

    #[test]
    fn a_declared_latin1_or_utf16_document_is_transcoded() {
        let mut latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<R><L>Caf".to_vec();
        latin1.extend_from_slice(&[0xE9, b'<', b'/', b'L', b'>', b'<', b'/', b'R', b'>']);
        let records = read_all(&latin1, "/R/L").unwrap();
        assert_eq!(text(&records[0], "."), Raw::Text("Café"));

        let mut utf16 = vec![0xFF, 0xFE];
        for unit in
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<R>\n<L>Ñandú</L></R>".encode_utf16()
        {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        let records = read_all(&utf16, "/R/L").unwrap();
        assert_eq!(text(&records[0], "."), Raw::Text("Ñandú"));
        assert_eq!(records[0].line, 3);
    }

    #[test]
    fn invalid_utf8_is_a_bad_encoding_with_its_line() {
        let xml = b"<R>\n<L>ok</L>\n<L>\nline 4: caf\xE9</L>\n</R>";
        let err = read_all(xml, "/R/L").unwrap_err();
        assert!(matches!(err, MapError::Encoding { line: 4, .. }), "{err}");
        assert_eq!(err.consequence(), Consequence::Reject);
    }

    #[test]
    fn a_syntax_error_gives_line_and_column() {
        let xml = "<R>\n  <L>\n    <N>a</M>\n  </L>\n</R>";
        let err = read_all(xml.as_bytes(), "/R/L").unwrap_err();
        let MapError::Xml {
            line,
            column,
            message,
        } = &err
        else {
            panic!("expected an XML error, got {err}");
        };
        assert_eq!(*line, 3, "{err}");
        assert!(*column > 1, "{err}");
        assert!(message.contains('M'), "{message}");
        assert_eq!(err.consequence(), Consequence::Reject);

        let truncated = read_all(b"<R>\n<L><N>a</N></L>\n<L><N>b", "/R/L").unwrap_err();
        assert!(
            matches!(truncated, MapError::Xml { line: 3, .. }),
            "{truncated}"
        );

        let doctype = read_all(
            b"<!DOCTYPE R [<!ENTITY e \"x\">]>\n<R><L>&e;</L></R>",
            "/R/L",
        )
        .unwrap_err();
        assert!(
            matches!(&doctype, MapError::Xml { line: 1, message, .. } if message.contains("DOCTYPE")),
            "{doctype}"
        );
    }

    #[test]
    fn an_undeclared_prefix_is_an_xml_error() {
        let err = read_all(b"<R>\n<L><q:N>a</q:N></L></R>", "/R/L").unwrap_err();
        assert!(
            matches!(&err, MapError::Xml { line: 2, message, .. } if message.contains("`q`")),
            "{err}"
        );
    }

    use crate::error::Consequence;

    #[test]
    fn a_record_tree_is_dropped_before_the_next_is_read() {
        // 100 000 records stream through with a handful of elements alive at any time.
        let mut xml = String::from("<p:Products xmlns:p=\"urn:edi-bridge:products:1\">\n");
        for i in 0..100_000 {
            xml.push_str(&format!(
                "<p:Product sku=\"S{i}\"><p:Name>N{i}</p:Name><p:Price>1.5</p:Price></p:Product>\n"
            ));
        }
        xml.push_str("</p:Products>\n");
        let f = file_with(xml.as_bytes());
        let path = parse_record_path("/p:Products/p:Product", &ns()).unwrap();
        let base = LIVE_ELEMENTS.with(|n| n.get());
        let mut records = XmlRecords::open(f.path(), &path).unwrap();
        let (mut count, mut most) = (0u64, 0i64);
        while let Some(r) = records.next_record().unwrap() {
            count += 1;
            assert_eq!(r.line, count + 1);
            most = most.max(LIVE_ELEMENTS.with(|n| n.get()) - base);
        }
        assert_eq!(count, 100_000);
        assert!(
            most <= 3,
            "at most one record's tree alive, saw {most} elements"
        );
        assert_eq!(LIVE_ELEMENTS.with(|n| n.get()), base, "every tree dropped");
    }
}
