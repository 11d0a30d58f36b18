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

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use encoding_rs::{Encoding, UTF_8};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::config::CsvFormat;
use crate::import::mapping::MapError;
use crate::import::path::{FieldPath, QName, RecordPath, Step};

/// Read buffer of the file readers: large enough that a gigabyte file costs few system calls.
const READ_BUFFER: usize = 256 * 1024;

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
}

// ---------------------------------------------------------------------------------------------
// XML
// ---------------------------------------------------------------------------------------------

/// An element or attribute name with its namespace resolved. Namespace URIs are shared between
/// all names of a document (a file usually has one or two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub ns: Option<Arc<str>>,
    pub local: String,
}

impl Name {
    /// Whether this is the name a mapping path asks for.
    pub fn is(&self, wanted: &QName) -> bool {
        self.local == wanted.local && self.ns.as_deref() == wanted.ns.as_deref()
    }
}

/// One element of a record's subtree.
#[derive(Debug)]
pub struct Element {
    pub name: Name,
    /// Attributes in document order, namespace declarations left out.
    pub attributes: Vec<(Name, String)>,
    /// The element's own text and CDATA, concatenated, entities decoded, trimmed.
    pub text: String,
    pub children: Vec<Element>,
}

#[cfg(test)]
thread_local! {
    /// Elements alive on this thread: lets tests prove a record's tree is dropped.
    pub(crate) static LIVE_ELEMENTS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

impl Element {
    pub fn new(name: Name, attributes: Vec<(Name, String)>) -> Element {
        #[cfg(test)]
        LIVE_ELEMENTS.with(|n| n.set(n.get() + 1));
        Element {
            name,
            attributes,
            text: String::new(),
            children: Vec::new(),
        }
    }

    /// The value of attribute `name`, if present.
    pub fn attribute(&self, name: &QName) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n.is(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this element is what `step` asks for (name, then the predicate if any).
    pub fn matches(&self, step: &Step) -> bool {
        self.name.is(&step.name)
            && step
                .predicate
                .as_ref()
                .is_none_or(|p| self.attribute(&p.attr) == Some(p.value.as_str()))
    }

    /// Evaluates a field path relative to this element: at each step the first matching child,
    /// then the attribute if one is named, else the text.
    pub fn select(&self, path: &FieldPath) -> Option<&str> {
        let mut here = self;
        for step in &path.steps {
            here = here.children.iter().find(|c| c.matches(step))?;
        }
        match &path.attr {
            Some(attr) => here.attribute(attr),
            None => Some(here.text.as_str()),
        }
    }

    fn finish_text(&mut self) {
        let trimmed = self.text.trim_matches(is_xml_space);
        if trimmed.len() != self.text.len() {
            self.text = trimmed.to_owned();
        }
    }
}

#[cfg(test)]
impl Drop for Element {
    fn drop(&mut self) {
        LIVE_ELEMENTS.with(|n| n.set(n.get() - 1));
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// One record of an XML file: the record element and everything inside it.
#[derive(Debug)]
pub struct XmlRecord {
    pub index: u64,
    pub line: u64,
    pub element: Element,
}

impl Record for XmlRecord {
    fn index(&self) -> u64 {
        self.index
    }
    fn line(&self) -> u64 {
        self.line
    }
    fn value(&self, path: &FieldPath) -> Raw<'_> {
        // Attribute values are trimmed like text: partners pad both alike.
        match self.element.select(path) {
            Some(v) => Raw::Text(v.trim_matches(is_xml_space)),
            None => Raw::Absent,
        }
    }
}

/// Counts the newlines the parser consumes, so a record's line is known when it starts.
struct LineCounter<R> {
    inner: R,
    newlines: u64,
}

impl<R: BufRead> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.newlines += count_newlines(&out[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amount: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let amount = amount.min(buf.len());
            self.newlines += count_newlines(&buf[..amount]);
        }
        self.inner.consume(amount);
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Reads the records of an XML file one by one.
pub struct XmlRecords {
    file: PathBuf,
    reader: NsReader<LineCounter<Box<dyn BufRead>>>,
    buf: Vec<u8>,
    steps: Vec<Step>,
    /// Namespace URIs seen so far, shared by the names that use them.
    namespaces: Vec<Arc<str>>,
    /// Elements open around the parser's position.
    depth: usize,
    /// How many of the open elements, from the root, are the record path's leading steps.
    matched: usize,
    index: u64,
}

impl XmlRecords {
    /// Opens `file` for reading the elements at `record`. The encoding is taken from a BOM or
    /// the XML declaration; anything not UTF-8 is transcoded while reading.
    pub fn open(file: &Path, record: &RecordPath) -> Result<XmlRecords, MapError> {
        let source = open_xml_source(file)?;
        let reader = NsReader::from_reader(LineCounter {
            inner: source,
            newlines: 0,
        });
        Ok(XmlRecords {
            file: file.to_owned(),
            reader,
            buf: Vec::with_capacity(4096),
            steps: record.steps.clone(),
            namespaces: Vec::new(),
            depth: 0,
            matched: 0,
            index: 0,
        })
    }

    /// The next record, or `None` at the end of the document.
    pub fn next_record(&mut self) -> Result<Option<XmlRecord>, MapError> {
        loop {
            let line = self.reader.get_ref().newlines + 1;
            let start = self.reader.buffer_position();
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => return Err(parse_error(&self.file, &self.reader, start, e)),
            };
            let (tag, empty) = match event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    self.matched = self.matched.min(self.depth);
                    continue;
                }
                Event::DocType(_) => {
                    return Err(xml_error(
                        &self.file,
                        start,
                        "a DOCTYPE is not accepted".into(),
                    ));
                }
                Event::Eof => {
                    if self.depth > 0 {
                        return Err(xml_error(
                            &self.file,
                            start,
                            "the document ends before its root element is closed".into(),
                        ));
                    }
                    return Ok(None);
                }
                _ => continue,
            };
            let level = self.depth;
            if !empty {
                self.depth += 1;
            }
            let mut element = match step_element(
                &self.reader,
                &mut self.namespaces,
                &self.steps,
                self.matched,
                level,
                &tag,
            ) {
                Ok(Some(element)) => element,
                Ok(None) => continue,
                Err(msg) => return Err(xml_error(&self.file, start, msg)),
            };
            // The element is either the next step on the way to the records, or a record.
            if level + 1 < self.steps.len() {
                if !empty {
                    self.matched = level + 1;
                }
                continue;
            }
            if empty {
                element.finish_text();
            } else {
                element = self.read_subtree(element)?;
                self.depth -= 1;
            }
            self.index += 1;
            return Ok(Some(XmlRecord {
                index: self.index,
                line,
                element,
            }));
        }
    }

    /// Reads the content of `root` (whose start tag was just read) up to its end tag.
    fn read_subtree(&mut self, root: Element) -> Result<Element, MapError> {
        let mut open = vec![root];
        loop {
            let start = self.reader.buffer_position();
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => return Err(parse_error(&self.file, &self.reader, start, e)),
            };
            let top = open.last_mut().expect("the record element is open");
            match event {
                Event::Start(e) => {
                    let el = make_element(&self.reader, &mut self.namespaces, &e)
                        .map_err(|msg| xml_error(&self.file, start, msg))?;
                    open.push(el);
                }
                Event::Empty(e) => {
                    let mut el = make_element(&self.reader, &mut self.namespaces, &e)
                        .map_err(|msg| xml_error(&self.file, start, msg))?;
                    el.finish_text();
                    top.children.push(el);
                }
                Event::End(_) => {
                    let mut done = open.pop().expect("an element is open");
                    done.finish_text();
                    match open.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Text(t) => {
                    // Leading whitespace would be trimmed anyway; skipping it keeps the
                    // indentation between children out of memory.
                    if !top.text.is_empty() || !t.trim_matches(is_xml_space).is_empty() {
                        top.text.push_str(&t.xml10_content());
                    }
                }
                Event::CData(c) => top.text.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        Ok(None) => predefined_entity(&r),
                        Err(e) => {
                            return Err(xml_error(&self.file, start, e.to_string()));
                        }
                    };
                    match resolved {
                        Some(c) => top.text.push(c),
                        None => {
                            return Err(xml_error(
                                &self.file,
                                start,
                                format!("undefined entity &{};", &*r),
                            ));
                        }
                    }
                }
                Event::DocType(_) => {
                    return Err(xml_error(
                        &self.file,
                        start,
                        "a DOCTYPE is not accepted".into(),
                    ));
                }
                Event::Eof => {
                    return Err(xml_error(
                        &self.file,
                        start,
                        "the document ends inside a record".into(),
                    ));
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            }
        }
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// For a start tag at `level`: if the ancestors match the record path's first steps and this
/// element matches the next one, the element (for a record, the start of its tree).
fn step_element<R>(
    reader: &NsReader<R>,
    namespaces: &mut Vec<Arc<str>>,
    steps: &[Step],
    matched: usize,
    level: usize,
    start: &BytesStart,
) -> Result<Option<Element>, String> {
    if matched != level || level >= steps.len() {
        return Ok(None);
    }
    // Cheap refusal first: most siblings differ by local name.
    if start.local_name().into_inner() != steps[level].name.local {
        return Ok(None);
    }
    let element = make_element(reader, namespaces, start)?;
    Ok(element.matches(&steps[level]).then_some(element))
}

fn make_element<R>(
    reader: &NsReader<R>,
    namespaces: &mut Vec<Arc<str>>,
    start: &BytesStart,
) -> Result<Element, String> {
    let resolver = reader.resolver();
    let (ns, local) = resolver.resolve_element(start.name());
    let name = Name {
        ns: namespace(namespaces, ns)?,
        local: local.into_inner().to_owned(),
    };
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (ns, local) = resolver.resolve_attribute(attr.key);
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        attributes.push((
            Name {
                ns: namespace(namespaces, ns)?,
                local: local.into_inner().to_owned(),
            },
            value.into_owned(),
        ));
    }
    Ok(Element::new(name, attributes))
}

fn namespace(
    namespaces: &mut Vec<Arc<str>>,
    resolved: ResolveResult,
) -> Result<Option<Arc<str>>, String> {
    match resolved {
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Bound(ns) => {
            let uri = ns.into_inner();
            if let Some(known) = namespaces.iter().find(|n| &***n == uri) {
                return Ok(Some(known.clone()));
            }
            let new: Arc<str> = Arc::from(uri);
            namespaces.push(new.clone());
            Ok(Some(new))
        }
        ResolveResult::Unknown(prefix) => Err(format!("undeclared namespace prefix `{prefix}`")),
    }
}

/// Opens an XML file as UTF-8: a UTF-16 BOM or a declared encoding other than UTF-8 is
/// transcoded while reading (the parser itself only reads UTF-8).
fn open_xml_source(file: &Path) -> Result<Box<dyn BufRead>, MapError> {
    let io_err = |source| MapError::Io {
        path: file.to_owned(),
        source,
    };
    let mut f = File::open(file).map_err(io_err)?;
    let mut head = Vec::with_capacity(512);
    (&mut f).take(512).read_to_end(&mut head).map_err(io_err)?;
    f.seek(SeekFrom::Start(0)).map_err(io_err)?;

    let utf16_bom = head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]);
    let encoding = if utf16_bom {
        // The decoder recognises the BOM itself.
        None
    } else {
        match declared_encoding(&head) {
            None => return Ok(Box::new(BufReader::with_capacity(READ_BUFFER, f))),
            Some(label) => match Encoding::for_label(label.as_bytes()) {
                Some(enc) if enc == UTF_8 => {
                    return Ok(Box::new(BufReader::with_capacity(READ_BUFFER, f)));
                }
                Some(enc) => Some(enc),
                None => {
                    return Err(MapError::Encoding {
                        line: 1,
                        message: format!("the XML declaration names an unknown encoding `{label}`"),
                    });
                }
            },
        }
    };
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(encoding)
        .bom_override(true)
        .build(f);
    Ok(Box::new(BufReader::with_capacity(READ_BUFFER, decoded)))
}

/// The `encoding` of the XML declaration at the start of `head`, if any.
fn declared_encoding(head: &[u8]) -> Option<String> {
    let head = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
    let decl = head.strip_prefix(b"<?xml")?;
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// `start` is where the failing event began: the parser gives no position for bad UTF-8.
fn parse_error<R>(
    file: &Path,
    reader: &NsReader<R>,
    start: u64,
    error: quick_xml::Error,
) -> MapError {
    match error {
        quick_xml::Error::Io(e) => MapError::Io {
            path: file.to_owned(),
            source: io::Error::new(e.kind(), e.to_string()),
        },
        quick_xml::Error::Encoding(e) => {
            // The checked bytes begin at the event's start (text) or just after its `<`.
            let valid = match &e {
                quick_xml::encoding::EncodingError::Utf8(utf8) => utf8.valid_up_to() as u64,
                _ => 0,
            };
            let (line, _) = locate(file, start + valid);
            MapError::Encoding {
                line,
                message: format!("{e} (the file is not valid UTF-8 and declares no encoding)"),
            }
        }
        other => xml_error(file, reader.error_position(), other.to_string()),
    }
}

fn xml_error(file: &Path, offset: u64, message: String) -> MapError {
    let (line, column) = locate(file, offset);
    MapError::Xml {
        line,
        column,
        message,
    }
}

/// Line and column (1-based, in characters) of byte `offset` of the decoded document. Only
/// used on the way to an error, so reading the start of the file again is fine.
fn locate(file: &Path, offset: u64) -> (u64, u64) {
    let Ok(mut source) = open_xml_source(file) else {
        return (0, 0);
    };
    // The parser does not count a UTF-8 BOM.
    let bom = source
        .fill_buf()
        .is_ok_and(|buf| buf.starts_with(&[0xEF, 0xBB, 0xBF]));
    if bom {
        source.consume(3);
    }
    let (mut line, mut column) = (1u64, 1u64);
    let mut left = offset;
    while left > 0 {
        let Ok(buf) = source.fill_buf() else { break };
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(left as usize);
        for &b in &buf[..n] {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                // Continuation bytes belong to the character before them.
                column += 1;
            }
        }
        source.consume(n);
        left -= n as u64;
    }
    (line, column)
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

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
    use crate::import::path::{parse_field_path, parse_record_path};

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
