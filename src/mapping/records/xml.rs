//! XML records: a namespace-aware pull parser follows the elements on the way to the record
//! path and reads each record element into a small tree.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use encoding_rs::{Encoding, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{READ_BUFFER, Raw, Record};
use crate::mapping::error::MapError;
use crate::mapping::path::{FieldPath, QName, RecordPath, Step};

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

    /// Every element at `path` (an element path: steps, no attribute) under this one, in
    /// document order: at each step all matching children, as XPath selects.
    pub fn select_all(&self, path: &FieldPath) -> Vec<&Element> {
        let mut here = vec![self];
        for step in &path.steps {
            here = here
                .into_iter()
                .flat_map(|e| e.children.iter().filter(|c| c.matches(step)))
                .collect();
        }
        here
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
        element_value(&self.element, path)
    }
    fn parts(&self, path: &FieldPath) -> Vec<Part<'_>> {
        self.element
            .select_all(path)
            .into_iter()
            .map(|element| Part {
                element,
                index: self.index,
                line: self.line,
            })
            .collect()
    }
}

fn element_value<'a>(element: &'a Element, path: &FieldPath) -> Raw<'a> {
    // Attribute values are trimmed like text: partners pad both alike.
    match element.select(path) {
        Some(v) => Raw::Text(v.trim_matches(is_xml_space)),
        None => Raw::Absent,
    }
}

/// An element inside a record (a line of a delivery confirmation), read with paths relative to
/// it; it reports under its record's index and line.
#[derive(Debug)]
pub struct Part<'a> {
    element: &'a Element,
    index: u64,
    line: u64,
}

impl Record for Part<'_> {
    fn index(&self) -> u64 {
        self.index
    }
    fn line(&self) -> u64 {
        self.line
    }
    fn value(&self, path: &FieldPath) -> Raw<'_> {
        element_value(self.element, path)
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
