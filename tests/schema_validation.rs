//! XSD validation as the product promises it: the canonical formats and their samples, UBL 2.1
//! multi-file schemas with their official examples, and hostile documents that must produce
//! problems — never a crash, never a file read or a network connection on their behalf.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edi_bridge::error::Consequence;
use edi_bridge::schema::{
    DOCTYPE_REFUSED, MAX_PROBLEMS, SchemaErrorKind, XmlProblem, check_schema, validate_bytes,
    validate_file,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn products_xsd() -> PathBuf {
    repo().join("xsd/products.xsd")
}

fn stock_xsd() -> PathBuf {
    repo().join("xsd/stock.xsd")
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/xml").join(name)
}

/// The OASIS UBL 2.1 tree shared by the team (read-only).
fn ubl() -> PathBuf {
    let dir = support::shared::shared_dir("corpus/ubl-2.1");
    assert!(
        dir.join("xsd/maindoc").is_dir() && dir.join("xml").is_dir(),
        "the UBL 2.1 corpus is missing at {} (expected xsd/maindoc, xsd/common and xml/)",
        dir.display()
    );
    dir
}

/// The UBL schema for an instance: root element `<Doc>` → `xsd/maindoc/UBL-<Doc>-2.1.xsd`.
fn ubl_schema_for(instance: &Path) -> PathBuf {
    let text = std::fs::read_to_string(instance).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    let root = loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) => {
                break e.local_name().into_inner().to_string();
            }
            quick_xml::events::Event::Eof => panic!("{} has no root element", instance.display()),
            _ => {}
        }
    };
    ubl().join(format!("xsd/maindoc/UBL-{root}-2.1.xsd"))
}

fn messages(problems: &[XmlProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first line of /etc/passwd (e.g. `root:x:0:0:root:/root:/bin/bash`): if it shows up in
/// a message, a document managed to read the file.
fn passwd_first_line() -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd is readable");
    let first = passwd
        .lines()
        .next()
        .expect("/etc/passwd has a line")
        .to_string();
    assert!(!first.is_empty());
    first
}

/// A TCP listener on loopback that counts the connections it gets, to prove nobody called.
struct Tripwire {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Tripwire {
    fn new() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Tripwire { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn assert_untouched(&self) {
        // A connection attempt would have been accepted by now: the listener runs on its own
        // thread and the validation call has returned.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            self.hits.load(Ordering::SeqCst),
            0,
            "something connected to {}",
            self.url("")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The canonical formats and their samples

#[test]
fn the_shipped_samples_are_valid_against_their_schemas() {
    for (schema, sample) in [
        (products_xsd(), "samples/products-1.xml"),
        (products_xsd(), "samples/products-2.xml"),
        (stock_xsd(), "samples/STOCK_20261127_0800.xml"),
    ] {
        let problems = validate_file(&schema, &repo().join(sample)).unwrap();
        assert!(problems.is_empty(), "{sample}:\n{}", messages(&problems));
    }
}

#[test]
fn the_canonical_schemas_compile() {
    check_schema(&products_xsd()).unwrap();
    check_schema(&stock_xsd()).unwrap();
}

#[test]
fn the_broken_sample_reports_each_xsd_problem_with_its_line() {
    let problems =
        validate_file(&products_xsd(), &repo().join("samples/products-broken.xml")).unwrap();
    let text = messages(&problems);
    assert_eq!(problems.len(), 2, "{text}");
    // The price written in words, on line 12.
    let price = &problems[0];
    assert_eq!(price.line, Some(12), "{text}");
    assert!(price.column.is_some(), "{text}");
    assert!(price.message.contains("'twelve'"), "{text}");
    assert!(price.message.contains("Price"), "{text}");
    // The product without a Name: its first child, Price on line 16, is not what is expected.
    let name = &problems[1];
    assert_eq!(name.line, Some(16), "{text}");
    assert!(name.message.contains("Price"), "{text}");
    assert!(
        name.message.contains("Expected is ( Name )"),
        "names without their namespace, as the partner knows them: {text}"
    );
}

#[test]
fn a_product_breaking_the_format_rules_is_invalid() {
    let cases = [
        ("<Product sku=\"\"><Name>x</Name></Product>", "sku"),
        (
            "<Product sku=\"A\"><Name>x</Name><Ean>12345</Ean></Product>",
            "Ean",
        ),
        (
            "<Product sku=\"A\"><Name>x</Name><Price>-1</Price></Product>",
            "Price",
        ),
        (
            "<Product sku=\"A\"><Name>x</Name><Price currency=\"eur\">1</Price></Product>",
            "currency",
        ),
        (
            "<Product sku=\"A\"><Name>x</Name><Storable>yes</Storable></Product>",
            "Storable",
        ),
        ("<Product sku=\"A\"><Name> </Name></Product>", "Name"),
        (
            "<Product sku=\"A\"><Unit>Units</Unit><Name>x</Name></Product>",
            "Unit",
        ),
    ];
    for (products, expected) in cases {
        let document =
            format!("<Products xmlns=\"urn:edi-bridge:products:1\">{products}</Products>");
        let problems = validate_bytes(&products_xsd(), document.as_bytes()).unwrap();
        assert!(
            problems.iter().any(|p| p.message.contains(expected)),
            "{products}: expected a problem about {expected}, got:\n{}",
            messages(&problems)
        );
    }
}

#[test]
fn a_stock_line_without_quantity_is_invalid() {
    let document =
        "<StockReport><Line><Sku>A</Sku><Location>WH/Stock</Location></Line></StockReport>";
    let problems = validate_bytes(&stock_xsd(), document.as_bytes()).unwrap();
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert!(
        problems[0].message.contains("OnHand"),
        "{}",
        messages(&problems)
    );
    assert_eq!(problems[0].line, Some(1));
}

// ---------------------------------------------------------------------------------------------
// UBL 2.1: multi-file schemas

#[test]
fn every_official_ubl_example_validates_against_its_multi_file_schema() {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(ubl().join("xml"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 10,
        "only {} UBL examples found",
        examples.len()
    );
    let names: Vec<String> = examples
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "DespatchAdvice",
        "Order-2.1",
        "ReceiptAdvice",
        "InventoryReport",
    ] {
        assert!(
            names.iter().any(|n| n.contains(wanted)),
            "no {wanted} example in {names:?}"
        );
    }
    for example in &examples {
        let schema = ubl_schema_for(example);
        let problems = validate_file(&schema, example).unwrap();
        assert!(
            problems.is_empty(),
            "{} against {}:\n{}",
            example.display(),
            schema.display(),
            messages(&problems)
        );
    }
}

#[test]
fn a_modified_ubl_example_is_rejected_with_line_and_column() {
    let original = ubl().join("xml/UBL-Order-2.1-Example.xml");
    let text = std::fs::read_to_string(&original).unwrap();
    let needle = "<cbc:IssueDate>2010-01-20</cbc:IssueDate>";
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not found in {}", original.display()));
    let expected_line = text[..at].matches('\n').count() as u64 + 1;
    let broken = text.replacen(needle, "<cbc:IssueDate>20 January 2010</cbc:IssueDate>", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("order.xml");
    std::fs::write(&file, broken).unwrap();

    let problems = validate_file(&ubl_schema_for(&original), &file).unwrap();
    let text = messages(&problems);
    assert_eq!(problems.len(), 1, "{text}");
    assert_eq!(problems[0].line, Some(expected_line), "{text}");
    assert!(problems[0].column.is_some_and(|c| c > 1), "{text}");
    assert!(problems[0].message.contains("IssueDate"), "{text}");
    assert!(problems[0].message.contains("'20 January 2010'"), "{text}");
}

#[test]
fn a_ubl_document_given_the_wrong_schema_is_rejected() {
    let order = ubl().join("xml/UBL-Order-2.1-Example.xml");
    let despatch_schema = ubl().join("xsd/maindoc/UBL-DespatchAdvice-2.1.xsd");
    let problems = validate_file(&despatch_schema, &order).unwrap();
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert!(
        problems[0]
            .message
            .contains("No matching global declaration"),
        "{}",
        messages(&problems)
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile and damaged documents

#[test]
fn a_doctype_is_refused_with_its_line() {
    let problems = validate_file(&products_xsd(), &fixture("doctype.xml")).unwrap();
    assert_eq!(
        problems,
        vec![XmlProblem {
            line: Some(2),
            column: Some(1),
            message: DOCTYPE_REFUSED.to_string()
        }]
    );
}

#[test]
fn an_external_entity_never_reads_the_local_file() {
    let problems = validate_file(&products_xsd(), &fixture("xxe-general.xml")).unwrap();
    let text = messages(&problems);
    assert!(
        problems.iter().any(|p| p.message == DOCTYPE_REFUSED),
        "{text}"
    );
    assert_eq!(problems[0].line, Some(3), "{text}");
    let secret = passwd_first_line();
    assert!(!text.contains(&secret), "/etc/passwd leaked into:\n{text}");
}

#[test]
fn a_parameter_entity_never_reaches_the_network() {
    let tripwire = Tripwire::new();
    let document = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE Products [\n  <!ENTITY % remote SYSTEM \"{}\">\n  %remote;\n]>\n\
         <Products xmlns=\"urn:edi-bridge:products:1\"/>\n",
        tripwire.url("evil.dtd")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pe.xml");
    std::fs::write(&file, document).unwrap();
    let problems = validate_file(&products_xsd(), &file).unwrap();
    assert!(
        problems.iter().any(|p| p.message == DOCTYPE_REFUSED),
        "{}",
        messages(&problems)
    );
    tripwire.assert_untouched();
}

#[test]
fn a_schema_location_hint_in_a_document_is_not_fetched() {
    let tripwire = Tripwire::new();
    let document = format!(
        "<Products xmlns=\"urn:edi-bridge:products:1\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"urn:edi-bridge:products:1 {}\">\
         <Product sku=\"A\"><Name>Desk</Name></Product></Products>",
        tripwire.url("products.xsd")
    );
    let problems = validate_bytes(&products_xsd(), document.as_bytes()).unwrap();
    assert!(problems.is_empty(), "{}", messages(&problems));
    tripwire.assert_untouched();
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let problems = validate_file(&products_xsd(), &fixture("billion-laughs.xml")).unwrap();
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert_eq!(problems[0].message, DOCTYPE_REFUSED);
    assert_eq!(problems[0].line, Some(2));
}

#[test]
fn a_truncated_document_is_reported_where_it_ends() {
    let problems = validate_file(&products_xsd(), &fixture("truncated.xml")).unwrap();
    let text = messages(&problems);
    assert!(!problems.is_empty());
    assert!(problems.iter().all(|p| p.line == Some(7)), "{text}");
    assert!(text.contains("Premature end of data"), "{text}");
}

#[test]
fn an_empty_file_is_a_clear_problem() {
    let problems = validate_file(&products_xsd(), &fixture("empty.xml")).unwrap();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains("empty"),
        "{}",
        messages(&problems)
    );
    let problems = validate_bytes(&products_xsd(), b"").unwrap();
    assert!(problems[0].message.contains("empty"));
    let problems = validate_bytes(&products_xsd(), b"  \n  ").unwrap();
    assert!(!problems.is_empty());
    assert!(
        messages(&problems).contains("no XML element"),
        "{}",
        messages(&problems)
    );
}

#[test]
fn invalid_utf8_is_reported_with_its_line() {
    let problems = validate_file(&products_xsd(), &fixture("invalid-utf8.xml")).unwrap();
    let text = messages(&problems);
    assert!(!problems.is_empty());
    assert_eq!(problems[0].line, Some(4), "{text}");
    assert!(text.contains("UTF-8"), "{text}");
}

#[test]
fn a_utf8_bom_is_fine() {
    let mut head = [0u8; 3];
    std::fs::File::open(fixture("bom.xml"))
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert_eq!(
        head,
        [0xEF, 0xBB, 0xBF],
        "the fixture must start with a BOM"
    );
    let problems = validate_file(&products_xsd(), &fixture("bom.xml")).unwrap();
    assert!(problems.is_empty(), "{}", messages(&problems));
}

#[test]
fn a_doctype_after_a_bom_and_comments_is_still_found() {
    let document = "\u{feff}<?xml version=\"1.0\"?>\n<!-- a -->\n<?pi x?>\n  <!DOCTYPE Products SYSTEM \"products.dtd\">\n<Products xmlns=\"urn:edi-bridge:products:1\"/>";
    let problems = validate_bytes(&products_xsd(), document.as_bytes()).unwrap();
    assert_eq!(
        problems,
        vec![XmlProblem {
            line: Some(4),
            column: Some(3),
            message: DOCTYPE_REFUSED.to_string()
        }]
    );
}

#[test]
fn a_compressed_document_is_not_silently_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("products.xml");
    std::fs::copy(repo().join("samples/products-1.xml"), &plain).unwrap();
    let status = Command::new("gzip")
        .arg("-k")
        .arg(&plain)
        .status()
        .expect("gzip is needed for this test: apt-get install gzip");
    assert!(status.success());
    let problems = validate_file(&products_xsd(), &dir.path().join("products.xml.gz")).unwrap();
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert_eq!(problems[0].line, Some(1));
    assert!(
        problems[0].message.contains("gzip-compressed"),
        "{}",
        messages(&problems)
    );
}

#[test]
fn entity_references_without_a_doctype_are_errors() {
    let document = "<Products xmlns=\"urn:edi-bridge:products:1\"><Product sku=\"A\"><Name>&xxe;</Name></Product></Products>";
    let problems = validate_bytes(&products_xsd(), document.as_bytes()).unwrap();
    assert!(
        messages(&problems).contains("Entity 'xxe' not defined"),
        "{}",
        messages(&problems)
    );
}

#[test]
fn problems_are_capped_and_the_rest_counted() {
    let lines: String = (0..250)
        .map(|i| format!("<Line><Sku>S{i}</Sku><OnHand>many</OnHand></Line>\n"))
        .collect();
    let document = format!("<StockReport>\n{lines}</StockReport>\n");
    let problems = validate_bytes(&stock_xsd(), document.as_bytes()).unwrap();
    assert_eq!(problems.len(), MAX_PROBLEMS + 1);
    assert_eq!(problems[0].line, Some(2));
    assert_eq!(
        problems[MAX_PROBLEMS - 1].line,
        Some(MAX_PROBLEMS as u64 + 1)
    );
    assert_eq!(
        problems[MAX_PROBLEMS].message,
        format!("… {} more problems not shown", 250 - MAX_PROBLEMS)
    );
}

// ---------------------------------------------------------------------------------------------
// Schemas: missing, broken, confined

#[test]
fn a_missing_schema_is_a_configuration_error() {
    let missing = repo().join("xsd/does-not-exist.xsd");
    let error = check_schema(&missing).unwrap_err();
    assert_eq!(error.kind, SchemaErrorKind::Schema);
    assert_eq!(error.consequence(), Consequence::Stop);
    assert!(error.path.contains("does-not-exist.xsd"));
    assert!(error.message.contains("No such file"), "{error}");
    let error = validate_file(&missing, &repo().join("samples/products-1.xml")).unwrap_err();
    assert_eq!(error.consequence(), Consequence::Stop);
}

#[test]
fn a_schema_that_does_not_compile_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("bad.xsd");
    std::fs::write(
        &schema,
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n\
         <xs:element name=\"A\" type=\"xs:nonsense\"/>\n</xs:schema>\n",
    )
    .unwrap();
    let error = check_schema(&schema).unwrap_err();
    assert_eq!(error.consequence(), Consequence::Stop);
    assert!(error.message.contains("does not compile"), "{error}");
    assert!(error.message.contains("nonsense"), "{error}");
    assert!(error.message.contains("bad.xsd"), "{error}");

    std::fs::write(&schema, "this is not XML").unwrap();
    let error = check_schema(&schema).unwrap_err();
    assert!(error.message.contains("Start tag expected"), "{error}");
}

#[test]
fn an_unreadable_document_is_retried_not_rejected() {
    let error =
        validate_file(&products_xsd(), &repo().join("samples/no-such-file.xml")).unwrap_err();
    assert_eq!(error.kind, SchemaErrorKind::Document);
    assert_eq!(error.consequence(), Consequence::Retry);
}

#[test]
fn an_http_import_in_a_schema_is_refused_without_connecting() {
    let tripwire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("remote-import.xsd");
    std::fs::write(
        &schema,
        format!(
            "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:o=\"urn:other\">\n\
             <xs:import namespace=\"urn:other\" schemaLocation=\"{}\"/>\n\
             <xs:element name=\"A\" type=\"o:Thing\"/>\n</xs:schema>\n",
            tripwire.url("other.xsd")
        ),
    )
    .unwrap();
    let error = check_schema(&schema).unwrap_err();
    assert!(
        error.message.contains(&format!(
            "refused to load \"{}\"",
            tripwire.url("other.xsd")
        )),
        "{error}"
    );
    assert!(error.message.contains("no network access"), "{error}");
    tripwire.assert_untouched();
}

/// A schema tree like UBL's: `main/` imports `../common/`, under a folder with a space.
fn write_two_folder_schema(base: &Path) -> PathBuf {
    let tree = base.join("partner schemas");
    std::fs::create_dir_all(tree.join("main")).unwrap();
    std::fs::create_dir_all(tree.join("common")).unwrap();
    std::fs::write(
        tree.join("common/types.xsd"),
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" targetNamespace=\"urn:t\">\n\
         <xs:simpleType name=\"Code\"><xs:restriction base=\"xs:string\"><xs:pattern value=\"[A-Z]{3}\"/></xs:restriction></xs:simpleType>\n\
         </xs:schema>\n",
    )
    .unwrap();
    let main = tree.join("main/order.xsd");
    std::fs::write(
        &main,
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:t=\"urn:t\">\n\
         <xs:import namespace=\"urn:t\" schemaLocation=\"../common/types.xsd\"/>\n\
         <xs:element name=\"Order\" type=\"t:Code\"/>\n</xs:schema>\n",
    )
    .unwrap();
    main
}

#[test]
fn a_schema_may_import_from_a_sibling_folder() {
    let dir = tempfile::tempdir().unwrap();
    let main = write_two_folder_schema(dir.path());
    check_schema(&main).unwrap();
    assert!(
        validate_bytes(&main, b"<Order>ABC</Order>")
            .unwrap()
            .is_empty()
    );
    let problems = validate_bytes(&main, b"<Order>abc</Order>").unwrap();
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
}

#[test]
fn a_schema_may_not_include_files_outside_its_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree/main");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        dir.path().join("outside.xsd"),
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n\
         <xs:simpleType name=\"Code\"><xs:restriction base=\"xs:string\"/></xs:simpleType>\n</xs:schema>\n",
    )
    .unwrap();
    let schema = tree.join("main.xsd");
    std::fs::write(
        &schema,
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n\
         <xs:include schemaLocation=\"../../outside.xsd\"/>\n\
         <xs:element name=\"A\" type=\"Code\"/>\n</xs:schema>\n",
    )
    .unwrap();
    let error = check_schema(&schema).unwrap_err();
    assert!(
        error.message.contains("outside the schema folder"),
        "{error}"
    );

    // Inside the tree, only schema files: not the configuration or keys kept next to it.
    std::fs::write(dir.path().join("tree/secret.txt"), "<xs:schema/>").unwrap();
    std::fs::write(
        &schema,
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n\
         <xs:include schemaLocation=\"../secret.txt\"/>\n\
         <xs:element name=\"A\" type=\"Code\"/>\n</xs:schema>\n",
    )
    .unwrap();
    let error = check_schema(&schema).unwrap_err();
    assert!(
        error.message.contains("only .xsd and .dtd files"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// Threads

#[test]
fn two_threads_validate_with_different_schemas_at_once() {
    let order_schema = ubl().join("xsd/maindoc/UBL-Order-2.1.xsd");
    let order = ubl().join("xml/UBL-Order-2.1-Example.xml");
    let ubl_worker = std::thread::spawn(move || {
        for _ in 0..5 {
            let problems = validate_file(&order_schema, &order).unwrap();
            assert!(problems.is_empty(), "{}", messages(&problems));
        }
    });
    let products_worker = std::thread::spawn(|| {
        for _ in 0..50 {
            assert!(
                validate_file(&products_xsd(), &repo().join("samples/products-1.xml"))
                    .unwrap()
                    .is_empty()
            );
            let broken =
                validate_file(&products_xsd(), &repo().join("samples/products-broken.xml"))
                    .unwrap();
            assert_eq!(broken.len(), 2, "{}", messages(&broken));
            assert!(
                validate_file(
                    &stock_xsd(),
                    &repo().join("samples/STOCK_20261127_0800.xml")
                )
                .unwrap()
                .is_empty()
            );
        }
    });
    ubl_worker.join().expect("the UBL worker failed");
    products_worker.join().expect("the products worker failed");
}

#[test]
fn an_edited_schema_is_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("code.xsd");
    let write = |pattern: &str| {
        std::fs::write(
            &schema,
            format!(
                "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n\
                 <xs:element name=\"Code\"><xs:simpleType><xs:restriction base=\"xs:string\">\
                 <xs:pattern value=\"{pattern}\"/></xs:restriction></xs:simpleType></xs:element>\n\
                 </xs:schema>\n"
            ),
        )
        .unwrap()
    };
    write("[A-Z]{3}");
    assert!(
        validate_bytes(&schema, b"<Code>ABC</Code>")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        validate_bytes(&schema, b"<Code>1234</Code>").unwrap().len(),
        1
    );
    write("[0-9]{4,5}");
    assert!(
        validate_bytes(&schema, b"<Code>1234</Code>")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        validate_bytes(&schema, b"<Code>ABC</Code>").unwrap().len(),
        1
    );
}

#[test]
fn text_that_is_not_xml_is_reported_as_such() {
    let problems = validate_bytes(&products_xsd(), b"SKU;NAME\nA-1;Desk\n").unwrap();
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert_eq!(problems[0].line, Some(1));
    assert!(
        problems[0].message.contains("Start tag expected"),
        "{}",
        messages(&problems)
    );
}
