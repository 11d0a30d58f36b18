//! XSD validation with libxml2, hardened and streaming: used by import (and later export).
//!
//! A document from a partner is untrusted, so it goes through these layers, each closing a door
//! the one before might leave open:
//!
//! 1. **Prolog scan** (quick-xml, the first 64 KiB): any `<!DOCTYPE` before the root element
//!    is refused with its line before libxml2 sees a byte. edi-bridge accepts no DTDs and no
//!    entities at all, so there is nothing to expand or fetch.
//! 2. **Our own input**: libxml2 reads the document through a Rust reader, not by file name.
//!    `xmlSchemaValidateFile` would open it with `xmlParserInputBufferCreateFilename`, which
//!    silently decompresses gzip/xz files (Debian's libxml2 links zlib and liblzma) and
//!    accepts `http://` names; its `options` argument is unused in libxml2 2.9.14, so
//!    `XML_PARSE_NONET` cannot be passed that way. We call the function it wraps,
//!    `xmlSchemaValidateStream`, the same streaming SAX validation, with our reader.
//! 3. **A SAX plug** on the parser: a DOCTYPE that slipped past the scan stops the parser
//!    (`internalSubset` → `xmlStopParser`), and at document start the parser is hardened
//!    (`XML_PARSE_NONET`, no entity substitution, no external subset), whatever the thread's
//!    libxml2 defaults are. The streaming parser has no entity table, so `&name;` is never
//!    expanded.
//! 4. **A deny-by-default external entity loader** (process-wide, so it also guards any other
//!    libxml2 use in edi-bridge): while a schema compiles it
//!    opens only `.xsd`/`.dtd` files inside the schema tree (see [`schema_root`]) and the
//!    schema itself; while a document is validated it opens nothing. Network URLs are never
//!    fetched.
//!
//! Errors are collected through libxml2's per-thread structured error handler, so
//! well-formedness errors (which `libxml`'s `validate_file()` drops) are reported with
//! schema errors, each with line and column. Compiled schemas are cached per thread:
//! libxml2 objects are not `Send`, so every blocking worker keeps its own.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::rc::Rc;
use std::sync::Once;

use libxml::bindings as ffi;
use quick_xml::events::Event;

use crate::error::Consequence;

/// At most this many problems are reported for one document; a last problem counts the rest.
pub const MAX_PROBLEMS: usize = 100;

/// The problem reported when a document has a DOCTYPE.
pub const DOCTYPE_REFUSED: &str = "DOCTYPE is not allowed (DTDs and entities are refused)";

/// How much of a document's start the prolog scan reads. A prolog longer than this (huge
/// comments) is left to the parser's own DOCTYPE gate.
const PROLOG_WINDOW: usize = 64 * 1024;

/// Read buffer between the file and libxml2, which asks for 4 000 bytes at a time.
const READ_BUFFER: usize = 64 * 1024;

/// The longest text of one element (between two tags) or attribute value a document may hold:
/// libxml2's own limit for attribute values and names (`XML_MAX_TEXT_LENGTH`). libxml2 does not
/// apply it to text streamed to SAX handlers: a 100 MB text node of an `xs:string` would be
/// valid and go on, whole, into memory, the mapping and Odoo. Past the limit the document ends
/// (the input is cut off there).
pub const MAX_TEXT_BYTES: usize = 10_000_000;

/// One problem found in a document, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct XmlProblem {
    /// 1-based line, when the parser knows it.
    pub line: Option<u64>,
    /// 1-based column, when the parser knows it.
    pub column: Option<u64>,
    /// libxml2's message (or ours), on one line, trimmed.
    pub message: String,
}

impl fmt::Display for XmlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The schema cannot be used (missing, not a valid XSD) — a configuration problem — or the
/// local copy of a document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {path}: {message}")]
pub struct SchemaError {
    /// The schema file, or the document for [`SchemaErrorKind::Document`].
    pub path: String,
    /// What is wrong, with libxml2's reason when it gave one.
    pub message: String,
    /// Which of the two it is.
    pub kind: SchemaErrorKind,
}

/// What a [`SchemaError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaErrorKind {
    /// The XSD is missing or does not compile.
    Schema,
    /// The document's local copy could not be read (a local I/O failure, not bad data).
    Document,
}

impl fmt::Display for SchemaErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaErrorKind::Schema => "schema",
            SchemaErrorKind::Document => "document",
        })
    }
}

impl SchemaError {
    fn schema(path: &Path, message: impl Into<String>) -> Self {
        SchemaError {
            path: path.display().to_string(),
            message: message.into(),
            kind: SchemaErrorKind::Schema,
        }
    }

    fn document(path: &Path, error: &io::Error) -> Self {
        SchemaError {
            path: path.display().to_string(),
            message: format!("cannot read it: {error}"),
            kind: SchemaErrorKind::Document,
        }
    }

    /// A broken schema stops the flow until someone fixes the configuration; an unreadable
    /// local copy is retried (the file is still in the inbox).
    pub fn consequence(&self) -> Consequence {
        match self.kind {
            SchemaErrorKind::Schema => Consequence::Stop,
            SchemaErrorKind::Document => Consequence::Retry,
        }
    }
}

/// Compiles the XSD at `schema` (with its includes and imports) and keeps it for this thread.
/// Used by `check` and at start-up, so a broken schema is reported before any file moves.
pub fn check_schema(schema: &Path) -> Result<(), SchemaError> {
    compiled(schema).map(|_| ())
}

/// Validates `file` against the XSD at `schema`, streaming. `Ok(vec![])` means valid;
/// otherwise the problems say what is wrong and where (at most [`MAX_PROBLEMS`], then a count).
pub fn validate_file(schema: &Path, file: &Path) -> Result<Vec<XmlProblem>, SchemaError> {
    let compiled = compiled(schema)?;
    let mut document = File::open(file).map_err(|e| SchemaError::document(file, &e))?;
    let len = document
        .metadata()
        .map_err(|e| SchemaError::document(file, &e))?
        .len();
    if len == 0 {
        return Ok(vec![empty_document()]);
    }
    let mut window = Vec::with_capacity(PROLOG_WINDOW.min(len as usize));
    (&mut document)
        .take(PROLOG_WINDOW as u64)
        .read_to_end(&mut window)
        .map_err(|e| SchemaError::document(file, &e))?;
    if let Some(refused) =
        compressed(&window).or_else(|| scan_prolog(&window, window.len() as u64 == len))
    {
        return Ok(vec![refused]);
    }
    // The window already read goes first, then the rest of the file: one pass, no seek.
    let mut source = Cursor::new(window).chain(BufReader::with_capacity(READ_BUFFER, document));
    validate_stream(&compiled, &mut source).map_err(|e| SchemaError::document(file, &e))
}

/// Validates a document held in memory (e.g. one rendered for export) like [`validate_file`].
pub fn validate_bytes(schema: &Path, document: &[u8]) -> Result<Vec<XmlProblem>, SchemaError> {
    let compiled = compiled(schema)?;
    if document.is_empty() {
        return Ok(vec![empty_document()]);
    }
    let window = &document[..document.len().min(PROLOG_WINDOW)];
    if let Some(refused) =
        compressed(window).or_else(|| scan_prolog(window, window.len() == document.len()))
    {
        return Ok(vec![refused]);
    }
    let mut source = document;
    validate_stream(&compiled, &mut source)
        .map_err(|e| SchemaError::document(Path::new("(in memory)"), &e))
}

/// The folder tree a schema may load other schema files from: the folder above the
/// schema's own, so that sibling folders resolve — UBL 2.1 keeps its document schemas in
/// `xsd/maindoc/` and imports `../common/*.xsd`. Within it only `.xsd` and `.dtd` files are
/// opened, so nothing else kept near the configuration (keys, the TOML file) can be read.
pub fn schema_root(schema: &Path) -> PathBuf {
    let folder = schema.parent().unwrap_or(Path::new("/"));
    folder.parent().unwrap_or(folder).to_path_buf()
}

fn empty_document() -> XmlProblem {
    XmlProblem {
        line: None,
        column: None,
        message: "the file is empty (0 bytes): an XML document was expected".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Prolog scan

/// A partner who zips a file by mistake gets told so, not "Start tag expected".
fn compressed(window: &[u8]) -> Option<XmlProblem> {
    let format = if window.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if window.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        "xz"
    } else if window.starts_with(b"PK\x03\x04") {
        "zip"
    } else {
        return None;
    };
    Some(XmlProblem {
        line: Some(1),
        column: Some(1),
        message: format!(
            "the file is {format}-compressed: an uncompressed XML document was expected"
        ),
    })
}

/// Looks at what comes before the root element: a DOCTYPE is refused, and a document without
/// any element gets a plain message. `complete` says whether `window` is the whole document.
/// Anything the scan does not understand is left to libxml2, which reports it precisely (and
/// has its own DOCTYPE gate, see [`refuse_doctype`]).
fn scan_prolog(window: &[u8], complete: bool) -> Option<XmlProblem> {
    let mut reader = quick_xml::Reader::from_reader(window);
    loop {
        let end_of_previous = reader.buffer_position() as usize;
        match reader.read_event() {
            Ok(Event::DocType(_)) => {
                // The scan skips the blanks (and a BOM) before an event: point at the `<`.
                let start = window[end_of_previous..]
                    .iter()
                    .position(|&b| b == b'<')
                    .map_or(end_of_previous, |i| end_of_previous + i);
                let (line, column) = line_and_column(window, start);
                return Some(XmlProblem {
                    line: Some(line),
                    column: Some(column),
                    message: DOCTYPE_REFUSED.to_string(),
                });
            }
            Ok(Event::Eof) if complete => {
                let (line, column) = line_and_column(window, window.len());
                return Some(XmlProblem {
                    line: Some(line),
                    column: Some(column),
                    message: "no XML element found: the file holds only blanks, comments or \
                              declarations"
                        .to_string(),
                });
            }
            // Text before the root is an error libxml2 words better ("Start tag expected").
            Ok(Event::Text(text)) if !text.trim().is_empty() => return None,
            Ok(Event::Start(_) | Event::Empty(_) | Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// 1-based line and column (in characters, a BOM not counted) of byte `offset` in `bytes`.
fn line_and_column(bytes: &[u8], offset: usize) -> (u64, u64) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&before[line_start..]);
    let column = text.trim_start_matches('\u{feff}').chars().count() as u64 + 1;
    (line, column)
}

// ---------------------------------------------------------------------------------------------
// libxml2 set-up

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| unsafe {
        ffi::xmlInitParser();
        // The built-in type tables are filled lazily and without a lock in 2.9: fill them
        // now, before two workers compile their first schema at the same moment.
        ffi::xmlSchemaInitTypes();
        ffi::xmlSetExternalEntityLoader(Some(load_external));
    });
}

/// A compiled schema, owned by the thread that compiled it.
struct Compiled {
    schema: ffi::xmlSchemaPtr,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        unsafe { ffi::xmlSchemaFree(self.schema) }
    }
}

/// When the main schema file last changed: a cached compilation older than that is redone.
type Stamp = Option<(std::time::SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

thread_local! {
    /// Compiled schemas of this thread, by canonical path. A schema that fails to compile is
    /// not kept, so a fixed file is picked up on the next attempt; an edited one is compiled
    /// again (edits to its included files are seen after a restart).
    static SCHEMAS: RefCell<HashMap<PathBuf, (Stamp, Rc<Compiled>)>> =
        RefCell::new(HashMap::new());
}

fn compiled(schema: &Path) -> Result<Rc<Compiled>, SchemaError> {
    let main = std::fs::canonicalize(schema)
        .map_err(|e| SchemaError::schema(schema, format!("cannot open it: {e}")))?;
    if !main.is_file() {
        return Err(SchemaError::schema(schema, "it is not a file"));
    }
    let stamp = stamp(&main);
    let hit = SCHEMAS.with(|s| {
        s.borrow()
            .get(&main)
            .filter(|(cached, _)| *cached == stamp)
            .map(|(_, compiled)| Rc::clone(compiled))
    });
    if let Some(hit) = hit {
        return Ok(hit);
    }
    let (fresh, warnings) = compile(schema, &main)?;
    for warning in &warnings {
        tracing::warn!(schema = %schema.display(), "{}", warning.message);
    }
    let fresh = Rc::new(fresh);
    SCHEMAS.with(|s| s.borrow_mut().insert(main, (stamp, Rc::clone(&fresh))));
    Ok(fresh)
}

/// Compiles `main` (canonical), returning libxml2's warnings with it (e.g. a refused import
/// that turned out not to be needed).
fn compile(shown: &Path, main: &Path) -> Result<(Compiled, Vec<XmlProblem>), SchemaError> {
    init();
    let c_path = CString::new(main.as_os_str().as_bytes())
        .map_err(|_| SchemaError::schema(shown, "its path contains a NUL byte"))?;
    let _scope = LoaderScope::enter(Some(Scope {
        root: schema_root(main),
        main: main.to_path_buf(),
    }));
    let capture = Capture::start(Mode::Schema);
    let schema = unsafe {
        let pctxt = ffi::xmlSchemaNewParserCtxt(c_path.as_ptr());
        if pctxt.is_null() {
            ptr::null_mut()
        } else {
            ffi::xmlSchemaSetParserStructuredErrors(pctxt, Some(on_error), ptr::null_mut());
            let schema = ffi::xmlSchemaParse(pctxt);
            ffi::xmlSchemaFreeParserCtxt(pctxt);
            schema
        }
    };
    let report = capture.finish();
    if schema.is_null() {
        let reasons: Vec<String> = report
            .problems
            .iter()
            .chain(report.warnings.iter())
            .take(10)
            .map(ToString::to_string)
            .collect();
        let message = if reasons.is_empty() {
            "it does not compile (libxml2 gave no reason)".to_string()
        } else {
            format!("it does not compile: {}", reasons.join("; "))
        };
        return Err(SchemaError::schema(shown, message));
    }
    Ok((Compiled { schema }, report.warnings))
}

// ---------------------------------------------------------------------------------------------
// Validating one document

/// What libxml2 reads from: a Rust reader, and the first I/O error it hit.
struct Input<'a> {
    reader: &'a mut dyn Read,
    error: Option<io::Error>,
}

unsafe extern "C" fn read_input(context: *mut c_void, buffer: *mut c_char, len: c_int) -> c_int {
    if context.is_null() || buffer.is_null() || len <= 0 {
        return 0;
    }
    // A text over MAX_TEXT_BYTES ends the document here: stopping the parser from inside the
    // SAX handler that counted it would free the input under the parser's feet (libxml2 2.9).
    let mut oversized = false;
    with_collector(|c| oversized = c.oversized);
    if oversized {
        return 0;
    }
    let input = unsafe { &mut *(context as *mut Input<'_>) };
    let out = unsafe { std::slice::from_raw_parts_mut(buffer as *mut u8, len as usize) };
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        loop {
            match input.reader.read(out) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        }
    }));
    match read {
        Ok(Ok(n)) => n as c_int,
        Ok(Err(e)) => {
            input.error = Some(e);
            -1
        }
        Err(_) => {
            input.error = Some(io::Error::other("the reader panicked"));
            -1
        }
    }
}

/// The reader belongs to the caller's stack frame; libxml2 only drops its reference.
unsafe extern "C" fn close_input(_context: *mut c_void) -> c_int {
    0
}

fn validate_stream(compiled: &Compiled, reader: &mut dyn Read) -> io::Result<Vec<XmlProblem>> {
    init();
    let mut input = Input {
        reader,
        error: None,
    };
    // SAFETY: every field of the handler is a nullable pointer or an integer.
    let mut sax: ffi::xmlSAXHandler = unsafe { std::mem::zeroed() };
    sax.initialized = ffi::XML_SAX2_MAGIC;
    sax.setDocumentLocator = Some(harden_parser);
    sax.internalSubset = Some(refuse_doctype);
    // Counted alongside the schema's own handlers (libxml2 calls both), for MAX_TEXT_BYTES.
    sax.startElementNs = Some(count_attributes);
    sax.endElementNs = Some(end_element);
    sax.characters = Some(count_text);
    sax.ignorableWhitespace = Some(count_text);
    sax.cdataBlock = Some(count_text);

    let _scope = LoaderScope::enter(None);
    let capture = Capture::start(Mode::Document);
    let status = unsafe {
        let vctxt = ffi::xmlSchemaNewValidCtxt(compiled.schema);
        if vctxt.is_null() {
            None
        } else {
            ffi::xmlSchemaSetValidStructuredErrors(vctxt, Some(on_error), ptr::null_mut());
            let buffer = ffi::xmlParserInputBufferCreateIO(
                Some(read_input),
                Some(close_input),
                &mut input as *mut Input<'_> as *mut c_void,
                ffi::xmlCharEncoding_XML_CHAR_ENCODING_NONE,
            );
            let status = if buffer.is_null() {
                None
            } else {
                // The validation context is the user data of our SAX callbacks: they need it
                // to reach the parser, and libxml2's own `referenceSplit` passes that pointer
                // on as a validation context.
                Some(ffi::xmlSchemaValidateStream(
                    vctxt,
                    buffer,
                    ffi::xmlCharEncoding_XML_CHAR_ENCODING_NONE,
                    &mut sax,
                    vctxt as *mut c_void,
                ))
            };
            ffi::xmlSchemaFreeValidCtxt(vctxt);
            status
        }
    };
    let report = capture.finish();
    if let Some(error) = input.error {
        return Err(error);
    }
    let mut problems = report.into_problems();
    match status {
        None => return Err(io::Error::other("libxml2 could not set up validation")),
        Some(0) => {}
        Some(code) if problems.is_empty() => problems.push(XmlProblem {
            line: None,
            column: None,
            message: format!("the document is not valid (libxml2 status {code})"),
        }),
        Some(_) => {}
    }
    Ok(problems)
}

/// The parser that reads the document is created inside `xmlSchemaValidateStream` from the
/// thread's defaults; before it reads anything, take away everything that could fetch or
/// expand: network, entity substitution, external subset, DTD validation.
unsafe extern "C" fn harden_parser(vctxt: *mut c_void, _locator: ffi::xmlSAXLocatorPtr) {
    unsafe {
        let pctxt = ffi::xmlSchemaValidCtxtGetParserCtxt(vctxt as ffi::xmlSchemaValidCtxtPtr);
        if pctxt.is_null() {
            return;
        }
        (*pctxt).options |= ffi::xmlParserOption_XML_PARSE_NONET as c_int;
        (*pctxt).replaceEntities = 0;
        (*pctxt).loadsubset = 0;
        (*pctxt).validate = 0;
    }
}

/// Where the parser behind validation context `vctxt` stands: line and column, when known.
unsafe fn parser_position(vctxt: *mut c_void) -> (Option<u64>, Option<u64>) {
    unsafe {
        let pctxt = ffi::xmlSchemaValidCtxtGetParserCtxt(vctxt as ffi::xmlSchemaValidCtxtPtr);
        if pctxt.is_null() {
            return (None, None);
        }
        let ctx = pctxt as *mut c_void;
        (
            positive(ffi::xmlSAX2GetLineNumber(ctx)),
            positive(ffi::xmlSAX2GetColumnNumber(ctx)),
        )
    }
}

/// Second DOCTYPE gate, inside the parser: called as soon as `<!DOCTYPE name ...` is read,
/// before its internal subset. Reports it and stops the parser.
unsafe extern "C" fn refuse_doctype(
    vctxt: *mut c_void,
    _name: *const ffi::xmlChar,
    _external_id: *const ffi::xmlChar,
    _system_id: *const ffi::xmlChar,
) {
    unsafe {
        let (line, column) = parser_position(vctxt);
        with_collector(|c| {
            c.record(
                Severity::Error,
                XmlProblem {
                    line,
                    column,
                    message: DOCTYPE_REFUSED.to_string(),
                },
            );
            // What the halted parser says afterwards is noise.
            c.closed = true;
        });
        let pctxt = ffi::xmlSchemaValidCtxtGetParserCtxt(vctxt as ffi::xmlSchemaValidCtxtPtr);
        if !pctxt.is_null() {
            ffi::xmlStopParser(pctxt);
        }
    }
}

/// A new element starts: its attribute values must be within [`MAX_TEXT_BYTES`], and the text
/// count starts again.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn count_attributes(
    vctxt: *mut c_void,
    _localname: *const ffi::xmlChar,
    _prefix: *const ffi::xmlChar,
    _uri: *const ffi::xmlChar,
    _nb_namespaces: c_int,
    _namespaces: *mut *const ffi::xmlChar,
    nb_attributes: c_int,
    _nb_defaulted: c_int,
    attributes: *mut *const ffi::xmlChar,
) {
    with_collector(|c| c.text = 0);
    if attributes.is_null() {
        return;
    }
    // Five pointers per attribute: local name, prefix, URI, value, end of the value.
    for i in 0..nb_attributes.max(0) as usize {
        let (value, end) = unsafe { (*attributes.add(5 * i + 3), *attributes.add(5 * i + 4)) };
        if !value.is_null()
            && !end.is_null()
            && (end as usize).saturating_sub(value as usize) > MAX_TEXT_BYTES
        {
            unsafe { refuse_oversized(vctxt, "an attribute value") };
            return;
        }
    }
}

unsafe extern "C" fn end_element(
    _vctxt: *mut c_void,
    _localname: *const ffi::xmlChar,
    _prefix: *const ffi::xmlChar,
    _uri: *const ffi::xmlChar,
) {
    with_collector(|c| c.text = 0);
}

/// Text, whitespace or CDATA of the current element, in the chunks the parser hands out.
unsafe extern "C" fn count_text(vctxt: *mut c_void, _text: *const ffi::xmlChar, len: c_int) {
    let mut over = false;
    with_collector(|c| {
        c.text = c.text.saturating_add(len.max(0) as usize);
        over = c.text > MAX_TEXT_BYTES;
    });
    if over {
        unsafe { refuse_oversized(vctxt, "the text of an element") };
    }
}

/// Reports a text or attribute value over [`MAX_TEXT_BYTES`]; the input ends at the next read.
unsafe fn refuse_oversized(vctxt: *mut c_void, what: &str) {
    unsafe {
        let (line, column) = parser_position(vctxt);
        with_collector(|c| {
            c.record(
                Severity::Error,
                XmlProblem {
                    line,
                    column,
                    message: format!(
                        "{what} is longer than {} MB, the most a document may hold",
                        MAX_TEXT_BYTES / 1_000_000
                    ),
                },
            );
            // What the parser says about the cut-off document is noise.
            c.closed = true;
            c.oversized = true;
        });
    }
}

fn positive(n: c_int) -> Option<u64> {
    (n > 0).then_some(n as u64)
}

// ---------------------------------------------------------------------------------------------
// Error collection

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Compiling a schema: messages name the schema file; refusals are warnings (an unused
    /// import may fail harmlessly) and explain a failed compilation.
    Schema,
    /// Validating a document: every error or refusal is a problem; warnings are not.
    Document,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Severity {
    Warning,
    Error,
}

struct Collector {
    mode: Mode,
    problems: Vec<XmlProblem>,
    warnings: Vec<XmlProblem>,
    more: usize,
    closed: bool,
    /// Bytes of text the current element holds so far (for [`MAX_TEXT_BYTES`]).
    text: usize,
    /// A text or attribute value went over [`MAX_TEXT_BYTES`]: the input is at its end.
    oversized: bool,
}

impl Collector {
    fn record(&mut self, severity: Severity, problem: XmlProblem) {
        if self.closed {
            return;
        }
        let list = match severity {
            Severity::Error => &mut self.problems,
            Severity::Warning => &mut self.warnings,
        };
        if list.len() < MAX_PROBLEMS {
            list.push(problem);
        } else if severity == Severity::Error {
            self.more += 1;
        }
    }

    fn into_problems(mut self) -> Vec<XmlProblem> {
        if self.more > 0 {
            self.problems.push(XmlProblem {
                line: None,
                column: None,
                message: format!("… {} more problems not shown", self.more),
            });
        }
        self.problems
    }
}

thread_local! {
    static COLLECTOR: RefCell<Option<Collector>> = const { RefCell::new(None) };
}

fn with_collector(f: impl FnOnce(&mut Collector)) {
    // Never panics: this runs inside libxml2 callbacks, where a panic would abort.
    let _ = COLLECTOR.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut()
            && let Some(collector) = slot.as_mut()
        {
            f(collector);
        }
    });
}

/// Routes this thread's libxml2 errors to a fresh [`Collector`] until finished or dropped,
/// then puts the previous handler back.
struct Capture {
    saved_handler: ffi::xmlStructuredErrorFunc,
    saved_context: *mut c_void,
}

impl Capture {
    fn start(mode: Mode) -> Capture {
        COLLECTOR.with(|c| {
            *c.borrow_mut() = Some(Collector {
                mode,
                problems: Vec::new(),
                warnings: Vec::new(),
                more: 0,
                closed: false,
                text: 0,
                oversized: false,
            })
        });
        unsafe {
            let capture = Capture {
                saved_handler: *ffi::__xmlStructuredError(),
                saved_context: *ffi::__xmlStructuredErrorContext(),
            };
            ffi::xmlSetStructuredErrorFunc(ptr::null_mut(), Some(on_error));
            capture
        }
    }

    fn finish(self) -> Collector {
        let collector = COLLECTOR.with(|c| c.borrow_mut().take());
        drop(self);
        collector.unwrap_or(Collector {
            mode: Mode::Document,
            problems: Vec::new(),
            warnings: Vec::new(),
            more: 0,
            closed: false,
            text: 0,
            oversized: false,
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        unsafe { ffi::xmlSetStructuredErrorFunc(self.saved_context, self.saved_handler) };
        COLLECTOR.with(|c| c.borrow_mut().take());
    }
}

unsafe extern "C" fn on_error(_context: *mut c_void, error: ffi::xmlErrorPtr) {
    if error.is_null() {
        return;
    }
    let error = unsafe { &*error };
    let severity = if error.level == ffi::xmlErrorLevel_XML_ERR_WARNING {
        Severity::Warning
    } else {
        Severity::Error
    };
    let message = one_line(&unsafe { lossy(error.message) });
    if message.is_empty() {
        return;
    }
    let file = unsafe { lossy(error.file) };
    let line = positive(error.line);
    with_collector(|c| {
        let problem = match c.mode {
            // Which of a schema's files, and where: `…/common/types.xsd:12: message`.
            Mode::Schema => XmlProblem {
                line: None,
                column: None,
                message: match (file.is_empty(), line) {
                    (false, Some(line)) => format!("{file}:{line}: {message}"),
                    (false, None) => format!("{file}: {message}"),
                    (true, _) => message,
                },
            },
            Mode::Document => XmlProblem {
                line,
                column: positive(error.int2),
                message,
            },
        };
        c.record(severity, problem);
    });
}

unsafe fn lossy(text: *const c_char) -> String {
    if text.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

/// libxml2 messages end with a newline and some span two lines; a report wants one. Names
/// come in Clark notation (`'{urn:edi-bridge:products:1}Price'`): the person reading the report
/// knows the element as `Price`, so the namespace part is dropped.
fn one_line(message: &str) -> String {
    let joined = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            // Only a `{uri}` glued to a name: a URI has no spaces.
            Some(close)
                if !after[..close].contains(' ')
                    && close > 0
                    && after[close + 1..].starts_with(|c: char| c.is_alphabetic() || c == '_') =>
            {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod message_tests {
    use super::one_line;

    #[test]
    fn namespaces_are_dropped_from_names_in_messages() {
        assert_eq!(
            one_line(
                "Element '{urn:edi-bridge:products:1}Price': 'twelve' is not a valid value of the atomic type '{urn:edi-bridge:products:1}NonNegativeDecimal'.\n"
            ),
            "Element 'Price': 'twelve' is not a valid value of the atomic type 'NonNegativeDecimal'."
        );
        assert_eq!(
            one_line("Expected is ( {urn:x}Name )."),
            "Expected is ( Name )."
        );
        assert_eq!(one_line("a { b } c"), "a { b } c");
    }
}

// ---------------------------------------------------------------------------------------------
// External entity loader

/// What this thread may load right now.
struct Scope {
    /// Canonical folder tree schema files may come from.
    root: PathBuf,
    /// The canonical schema being compiled (loadable whatever its extension).
    main: PathBuf,
}

thread_local! {
    static LOADER_SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Sets this thread's loader scope (`None`: load nothing) and restores the previous one.
struct LoaderScope {
    previous: Option<Scope>,
}

impl LoaderScope {
    fn enter(scope: Option<Scope>) -> LoaderScope {
        let previous = LOADER_SCOPE.with(|s| s.replace(scope));
        LoaderScope { previous }
    }
}

impl Drop for LoaderScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        LOADER_SCOPE.with(|s| *s.borrow_mut() = previous);
    }
}

/// The process-wide external entity loader: deny unless the thread's scope allows the file.
unsafe extern "C" fn load_external(
    url: *const c_char,
    _id: *const c_char,
    context: ffi::xmlParserCtxtPtr,
) -> ffi::xmlParserInputPtr {
    let url = unsafe { lossy(url) };
    let decision = LOADER_SCOPE
        .try_with(|s| match s.try_borrow() {
            Ok(scope) => allowed(scope.as_ref(), &url),
            Err(_) => Err("the loader is busy".to_string()),
        })
        .unwrap_or_else(|_| Err("the thread is ending".to_string()));
    match decision {
        Ok(path) => match CString::new(path.as_os_str().as_bytes()) {
            Ok(c_path) => unsafe { ffi::xmlNewInputFromFile(context, c_path.as_ptr()) },
            Err(_) => ptr::null_mut(),
        },
        Err(reason) => {
            with_collector(|c| {
                let severity = match c.mode {
                    Mode::Schema => Severity::Warning,
                    Mode::Document => Severity::Error,
                };
                c.record(
                    severity,
                    XmlProblem {
                        line: None,
                        column: None,
                        message: format!("refused to load \"{url}\": {reason}"),
                    },
                );
            });
            ptr::null_mut()
        }
    }
}

/// Decides whether `url` may be opened in `scope`, and which local file it is.
fn allowed(scope: Option<&Scope>, url: &str) -> Result<PathBuf, String> {
    let Some(scope) = scope else {
        return Err("documents may not reference external resources".to_string());
    };
    let path = local_path(url)?;
    let canonical =
        std::fs::canonicalize(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if canonical == scope.main {
        return Ok(canonical);
    }
    if !canonical.starts_with(&scope.root) {
        return Err(format!(
            "{} is outside the schema folder {}",
            canonical.display(),
            scope.root.display()
        ));
    }
    let schema_file = canonical
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("xsd") || e.eq_ignore_ascii_case("dtd"));
    if !schema_file {
        return Err("only .xsd and .dtd files are loaded".to_string());
    }
    Ok(canonical)
}

/// The local path a URL names, or why it is not a local path.
fn local_path(url: &str) -> Result<PathBuf, String> {
    let rest = if let Some(rest) = url.strip_prefix("file://") {
        rest.strip_prefix("localhost").unwrap_or(rest)
    } else if let Some(rest) = url.strip_prefix("file:") {
        rest
    } else {
        url
    };
    if let Some(scheme) = scheme_of(rest) {
        return Err(format!(
            "{scheme}: resources are not loaded (no network access)"
        ));
    }
    let path = Path::new(rest);
    if !path.is_absolute() {
        return Err("not an absolute path".to_string());
    }
    // libxml2 escapes what it resolves relative to a base (a space becomes %20).
    if rest.contains('%') && !path.exists() {
        return Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&percent_decode(
            rest.as_bytes(),
        ))));
    }
    Ok(path.to_path_buf())
}

/// `http` for `http://…`: a URI scheme is a letter followed by letters, digits, `+`, `-`, `.`
/// and then a colon.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn products() -> Rc<Compiled> {
        compiled(&Path::new(env!("CARGO_MANIFEST_DIR")).join("xsd/products.xsd")).unwrap()
    }

    /// Straight to libxml2, without the prolog scan: what the parser itself does.
    fn parser_only(document: &str) -> Vec<XmlProblem> {
        validate_stream(&products(), &mut document.as_bytes()).unwrap()
    }

    fn passwd_first_line() -> String {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        passwd.lines().next().unwrap().to_string()
    }

    /// Streamed from a file, a huge attribute makes libxml2 give up on the start tag and read
    /// what follows as text: the text limit then ends the input (stopping the parser from the
    /// SAX handler instead crashed libxml2 2.9.14).
    #[test]
    fn huge_attribute_and_text_files_end_with_a_problem_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("xsd/products.xsd");
        let ns = "urn:edi-bridge:products:1";
        let huge = "0123456789".repeat(3 * MAX_TEXT_BYTES / 10);
        for (name, document) in [
            (
                "attribute.xml",
                format!(
                    "<Products xmlns=\"{ns}\"><Product sku=\"{huge}\"><Name>n</Name></Product></Products>"
                ),
            ),
            (
                "text.xml",
                format!(
                    "<Products xmlns=\"{ns}\"><Product sku=\"A\"><Name>{huge}</Name></Product></Products>"
                ),
            ),
        ] {
            let file = dir.path().join(name);
            std::fs::write(&file, document).unwrap();
            let problems = validate_file(&schema, &file).unwrap();
            assert!(
                problems
                    .iter()
                    .any(|p| p.message.contains("longer than 10 MB")
                        || p.message.contains("AttValue length too long")),
                "{name}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_text_or_attribute_over_the_limit_stops_the_parser() {
        let ns = "urn:edi-bridge:products:1";
        let with_name = |name: &str| {
            format!(
                "<Products xmlns=\"{ns}\"><Product sku=\"A\"><Name>{name}</Name></Product></Products>"
            )
        };
        assert!(parser_only(&with_name(&"a".repeat(MAX_TEXT_BYTES))).is_empty());
        let problems = parser_only(&with_name(&"a".repeat(MAX_TEXT_BYTES + 1)));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("the text of an element is longer than 10 MB")
        );
        assert_eq!(problems[0].line, Some(1));
        // Text split by child elements is counted per stretch.
        let half = "b".repeat(MAX_TEXT_BYTES / 2 + 1);
        let mixed = format!(
            "<Products xmlns=\"{ns}\">{half}<Product sku=\"A\"><Name>n</Name></Product>{half}</Products>"
        );
        assert!(
            !parser_only(&mixed)
                .iter()
                .any(|p| p.message.contains(" MB")),
            "each stretch is under the limit"
        );
        let attribute = format!(
            "<Products xmlns=\"{ns}\"><Product sku=\"{}\"><Name>n</Name></Product></Products>",
            "c".repeat(MAX_TEXT_BYTES + 1)
        );
        // libxml2 has its own limit for attribute values, with its own words.
        assert!(!parser_only(&attribute).is_empty());
    }

    #[test]
    fn positions_count_lines_and_characters_without_the_bom() {
        assert_eq!(line_and_column(b"a\nbc", 3), (2, 2));
        assert_eq!(line_and_column("\u{feff}<x/>".as_bytes(), 3), (1, 1));
        assert_eq!(line_and_column("é\n\t<!".as_bytes(), 4), (2, 2));
    }

    #[test]
    fn urls_are_local_absolute_paths_or_refused() {
        assert!(
            local_path("http://example.com/a.xsd")
                .unwrap_err()
                .contains("no network")
        );
        assert!(local_path("https://example.com/a.xsd").is_err());
        assert!(local_path("ftp://example.com/a.xsd").is_err());
        assert!(local_path("file://example.com/a.xsd").is_err());
        assert!(local_path("relative.xsd").is_err());
        assert_eq!(
            local_path("file:///srv/x.xsd").unwrap(),
            Path::new("/srv/x.xsd")
        );
        assert_eq!(
            local_path("file://localhost/srv/x.xsd").unwrap(),
            Path::new("/srv/x.xsd")
        );
        assert_eq!(
            local_path("/no/such%20dir/x.xsd").unwrap(),
            Path::new("/no/such dir/x.xsd")
        );
        assert_eq!(scheme_of("/a:b/x.xsd"), None);
        assert_eq!(scheme_of("http://x"), Some("http"));
    }

    #[test]
    fn nothing_is_loaded_while_a_document_is_validated() {
        assert!(allowed(None, "/etc/passwd").is_err());
        let xsd = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/xsd/stock.xsd"));
        assert!(allowed(None, xsd.unwrap().to_str().unwrap()).is_err());
    }

    #[test]
    fn the_parser_stops_at_a_doctype_the_scan_did_not_see() {
        let problems = parser_only(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE Products [\n<!ENTITY a \"aaaaaaaaaa\">\n\
             <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n]>\n\
             <Products xmlns=\"urn:edi-bridge:products:1\"><Product sku=\"A\"><Name>&c;</Name></Product></Products>\n",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].message, DOCTYPE_REFUSED);
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn the_parser_never_expands_entities_even_after_an_earlier_error() {
        // A malformed XML declaration turns SAX events off before the DOCTYPE, so the gate
        // is not called; the streaming parser still has no entity table to expand from.
        let problems = parser_only(
            "<?xml version=\"1.0\" standalone=\"maybe\"?>\n<!DOCTYPE Products [\n\
             <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n<!ENTITY % pe SYSTEM \"file:///etc/passwd\">\n%pe;\n]>\n\
             <Products xmlns=\"urn:edi-bridge:products:1\"><Product sku=\"A\"><Name>&xxe;</Name></Product></Products>\n",
        );
        assert!(!problems.is_empty());
        let text = format!("{problems:?}");
        assert!(!text.contains(&passwd_first_line()), "{text}");
    }

    #[test]
    fn an_external_entity_in_a_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entity.xsd");
        std::fs::write(
            &path,
            "<?xml version=\"1.0\"?>\n<!DOCTYPE xs:schema [<!ENTITY secret SYSTEM \"file:///etc/passwd\">]>\n\
             <xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n<xs:element name=\"A\" type=\"xs:string\">\
             <xs:annotation><xs:documentation>&secret;</xs:documentation></xs:annotation></xs:element>\n</xs:schema>\n",
        )
        .unwrap();
        let main = std::fs::canonicalize(&path).unwrap();
        let (_, warnings) = compile(&path, &main).unwrap();
        let text = format!("{warnings:?}");
        assert!(
            text.contains("refused to load \\\"file:///etc/passwd\\\""),
            "{text}"
        );
        assert!(text.contains("outside the schema folder"), "{text}");
        assert!(!text.contains(&passwd_first_line()), "{text}");
    }

    #[test]
    fn the_error_handler_is_restored_after_validation() {
        let before = unsafe { *ffi::__xmlStructuredError() };
        let _ = parser_only("<Products xmlns=\"urn:edi-bridge:products:1\"><oops/></Products>");
        let after = unsafe { *ffi::__xmlStructuredError() };
        assert_eq!(before.map(|f| f as usize), after.map(|f| f as usize));
        assert!(COLLECTOR.with(|c| c.borrow().is_none()));
        assert!(LOADER_SCOPE.with(|s| s.borrow().is_none()));
    }
}
