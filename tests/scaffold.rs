//! `edi-bridge scaffold` as an integrator uses it: scaffold a partner's schema, complete the
//! mapping by hand, and check that it maps a real file to the expected Odoo operations with
//! `edi-bridge validate` (which also validates the file against the same schema).
//!
//! Each schema is one row of `cases()`: add a row for a new format (the schema, the sample, the
//! lines the scaffold must print, the hand completion and the operations expected).

#[path = "support/shared.rs"]
mod shared;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ubl(sub: &str) -> PathBuf {
    shared::shared_dir("corpus/ubl-2.1").join(sub)
}

fn edi_bridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .args(args)
        .env_remove("EDI_BRIDGE_CONFIG")
        .output()
        .expect("edi-bridge runs")
}

fn scaffold(xsd: &Path, extra: &[&str]) -> String {
    let xsd = xsd.to_str().unwrap();
    let mut args = vec!["scaffold", "--xsd", xsd, "--flow", "partner"];
    args.extend_from_slice(extra);
    let out = edi_bridge(&args);
    assert!(
        out.status.success(),
        "scaffold {xsd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The scaffold's lines without their trailing comments, for comparisons that do not depend on
/// the alignment.
fn assignments(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            // `# FIELD = …  # comment`: the commented-out assignment is kept.
            let start = if l.starts_with("# ") { 2 } else { 0 };
            match l[start..].find(" # ") {
                Some(i) => l[..start + i].trim_end().to_owned(),
                None => l.trim_end().to_owned(),
            }
        })
        .collect()
}

/// A hand completion: replace the line starting with `from` (the scaffold's own line, comments
/// ignored) with `to`.
type Edit = (&'static str, &'static str);

struct Case {
    name: &'static str,
    xsd: PathBuf,
    /// `--record`, when the guess is not wanted.
    record: Option<&'static str>,
    /// Lines the scaffold must print (comments after the value ignored).
    printed: &'static [&'static str],
    /// Substrings the scaffold's comments must contain (types, required, guesses).
    comments: &'static [&'static str],
    edits: &'static [Edit],
    sample: PathBuf,
    expect: Expect,
}

enum Expect {
    /// Exactly the operations that flow of demo/edi-bridge.toml (the ready, hand-written
    /// mapping) gives for the same sample.
    SameAsDemo(&'static str),
    /// Exactly the operations that flow of that ready config gives for the same sample.
    SameAs(PathBuf, &'static str),
    /// These values per record (a subset of each operation's `values`), in order.
    Values(Vec<Value>),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "products (canonical)",
            xsd: repo().join("xsd/products.xsd"),
            record: None,
            printed: &[
                "record = \"/p:Products/p:Product\"",
                "namespaces = { p = \"urn:edi-bridge:products:1\" }",
                "model = \"product.product\"",
                "action = \"upsert\"",
                "key = [\"default_code\"]",
                "default_code = \"@sku\"",
                "name = \"p:Name\"",
                "barcode = { path = \"p:Ean\", optional = true }",
                "list_price = { path = \"p:Price\", type = \"float\", optional = true }",
                "standard_price = { path = \"p:Cost\", type = \"float\", optional = true }",
                "weight = { path = \"p:Weight\", type = \"float\", optional = true }",
                "# FIELD = { path = \"p:Unit\", optional = true }",
                "# FIELD = { path = \"p:Price/@currency\", optional = true }",
            ],
            comments: &[
                "p:Sku (text), required",
                "xs:boolean, optional",
                "likely uom_id (lookup uom.uom by name)",
                "the first element under /p:Products that may repeat",
            ],
            edits: &[
                (
                    "# FIELD = { path = \"p:Unit\", optional = true }",
                    "uom_id = { path = \"p:Unit\", optional = true, lookup = { model = \"uom.uom\", field = \"name\" } }",
                ),
                (
                    "# FIELD = { path = \"p:Storable\", type = \"boolean\", optional = true }",
                    "is_storable = { path = \"p:Storable\", type = \"boolean\", optional = true }",
                ),
            ],
            sample: repo().join("samples/products-1.xml"),
            expect: Expect::SameAsDemo("products"),
        },
        Case {
            name: "stock levels (canonical)",
            xsd: repo().join("xsd/stock.xsd"),
            record: None,
            printed: &[
                "record = \"/StockReport/Line\"",
                "action = \"set_stock\"",
                "product = { path = \"Sku\", by = \"default_code\" }",
                "quantity = \"OnHand\"",
                "location = \"WH/Stock\"",
                "lot = { path = \"Lot\", optional = true }",
                "snapshot = \"partial\"",
                "# location = { path = \"Location\", by = \"complete_name\" }",
            ],
            comments: &["Quantity (a decimal number), required"],
            edits: &[],
            sample: repo().join("samples/STOCK_20261127_0800.xml"),
            expect: Expect::SameAsDemo("stock"),
        },
        Case {
            name: "delivery confirmations (canonical)",
            xsd: repo().join("xsd/delivery-confirmation.xsd"),
            record: None,
            printed: &[
                "record = \"/con:Confirmations/con:Shipment\"",
                "namespaces = { con = \"urn:edi-bridge:delivery-confirmation:1\" }",
                "# FIELD = \"con:Order\"",
                "# FIELD = { path = \"con:Tracking\", optional = true }",
                "# FIELD = { path = \"con:Line/con:Shipped\", type = \"float\" }",
            ],
            comments: &[
                "likely confirm_delivery: tracking",
                "likely confirm_delivery: quantity (under lines)",
                "likely set_stock / confirm_delivery: lot",
            ],
            // A shipment closes the delivery order it names: the head becomes a
            // confirm_delivery, the values under con:Line its lines.
            edits: &[
                (
                    "model = ",
                    "picking = { path = \"con:Order\", by = \"name\" }",
                ),
                ("action = ", "action = \"confirm_delivery\""),
                (
                    "key = ",
                    "lines = \"con:Line\"\n\
                     product = { path = \"con:Sku\", by = \"default_code\" }\n\
                     quantity = \"con:Shipped\"\n\
                     lot = { path = \"con:Lot\", optional = true }\n\
                     tracking = { path = \"con:Tracking\", optional = true }\n\
                     backorder = \"create\"",
                ),
                ("[flows.partner.mapping.fields]", ""),
                ("default_code = ", ""),
            ],
            sample: repo().join("samples/SHIPPED_20261129_1630.xml"),
            expect: Expect::SameAs(
                repo().join("examples/delivery-confirmation.toml"),
                "shipped",
            ),
        },
        Case {
            name: "delivery orders (canonical, what export flows publish)",
            xsd: repo().join("xsd/picking.xsd"),
            record: None,
            printed: &[
                "record = \"/d:DeliveryOrder/d:Lines/d:Line\"",
                "namespaces = { d = \"urn:edi-bridge:picking:1\" }",
                "model = \"product.product\"",
                "action = \"upsert\"",
                "key = [\"default_code\"]",
                "default_code = \"d:ProductCode\"",
                "barcode = { path = \"d:Barcode\", optional = true }",
                "name = \"d:ProductName\"",
                "# FIELD = \"d:Unit\"",
            ],
            comments: &[
                "d:Line is the first element under /d:DeliveryOrder",
                "optional in the schema, but a record without its key is refused",
                "likely uom_id (lookup uom.uom by name)",
            ],
            // The products a warehouse is sent, upserted by their code: the unit too.
            edits: &[(
                "# FIELD = \"d:Unit\"",
                "uom_id = { path = \"d:Unit\", lookup = { model = \"uom.uom\", field = \"name\" } }",
            )],
            sample: repo().join("samples/WH_OUT_00001.xml"),
            expect: Expect::Values(vec![
                json!({"default_code": "FURN_7777", "name": "Office Chair",
                       "barcode": "5412345000013"}),
                json!({"default_code": "FURN_8888", "name": "Office Lamp"}),
            ]),
        },
        Case {
            name: "UBL 2.1 Catalogue",
            xsd: ubl("xsd/maindoc/UBL-Catalogue-2.1.xsd"),
            record: None,
            printed: &[
                "record = \"/cat:Catalogue/cac:CatalogueLine\"",
                "namespaces = { cac = \"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\", cat = \"urn:oasis:names:specification:ubl:schema:xsd:Catalogue-2\", cbc = \"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\" }",
                "key = [\"default_code\"]",
                "default_code = \"cac:Item/cac:SellersItemIdentification/cbc:ID\"",
                "name = { path = \"cac:Item/cbc:Name\", optional = true }",
                "barcode = { path = \"cac:Item/cac:StandardItemIdentification/cbc:ID\", optional = true }",
                "description_sale = { path = \"cac:Item/cbc:Description\", optional = true }",
                "list_price = { path = \"cac:RequiredItemLocationQuantity/cac:Price/cbc:PriceAmount\", type = \"float\", optional = true }",
                "# FIELD = \"cbc:ID\"",
            ],
            comments: &[
                "14 schema files read",
                "cac:CatalogueLine is the first element under /cat:Catalogue that a valid file must have and that may repeat",
                "optional in the schema, but a record without its key is refused",
                "optional attributes: @schemeID",
                "Not expanded, more than 4 levels below the record",
                "Not expanded, their type contains itself (recursive)",
                "further from the record not listed",
            ],
            // The partner always names its products: the name is required here.
            edits: &[(
                "name = { path = \"cac:Item/cbc:Name\", optional = true }",
                "name = \"cac:Item/cbc:Name\"",
            )],
            sample: repo().join("tests/fixtures/ubl/catalogue.xml"),
            expect: Expect::Values(vec![
                json!({"default_code": "FURN-DESK-160", "name": "Sit-stand desk 160 x 80 cm",
                       "barcode": "5412345000013", "list_price": 649.0,
                       "description_sale": "Electric height-adjustable desk"}),
                json!({"default_code": "FURN-CHAIR-ERGO", "name": "Ergonomic office chair",
                       "barcode": "5412345000020", "list_price": 329.9}),
                json!({"default_code": "LIGHT-DESK-01", "name": "Desk lamp"}),
            ]),
        },
        Case {
            name: "UBL 2.1 DespatchAdvice (OASIS example)",
            xsd: ubl("xsd/maindoc/UBL-DespatchAdvice-2.1.xsd"),
            record: None,
            printed: &[
                "record = \"/des:DespatchAdvice/cac:DespatchLine\"",
                "default_code = \"cac:Item/cac:SellersItemIdentification/cbc:ID\"",
                "name = { path = \"cac:Item/cbc:Name\", optional = true }",
                "# FIELD = { path = \"cbc:DeliveredQuantity\", type = \"float\", optional = true }",
            ],
            comments: &[
                "likely confirm_delivery: quantity (under lines)",
                "Other elements that may repeat: /des:DespatchAdvice/cac:OrderReference",
            ],
            // This partner sends no GTINs: the barcode line goes.
            edits: &[(
                "barcode = { path = \"cac:Item/cac:StandardItemIdentification/cbc:ID\", optional = true }",
                "",
            )],
            sample: ubl("xml/UBL-DespatchAdvice-2.0-Example.xml"),
            expect: Expect::Values(vec![json!({
                "default_code": "17589683", "name": "beeswax", "description_sale": "Acme beeswax"
            })]),
        },
        Case {
            name: "UBL 2.1 DespatchAdvice, --record without prefixes",
            xsd: ubl("xsd/maindoc/UBL-DespatchAdvice-2.1.xsd"),
            record: Some("/DespatchAdvice/DespatchLine"),
            printed: &["record = \"/des:DespatchAdvice/cac:DespatchLine\""],
            comments: &[],
            edits: &[],
            sample: ubl("xml/UBL-DespatchAdvice-2.0-Example.xml"),
            expect: Expect::Values(vec![json!({"default_code": "17589683", "name": "beeswax"})]),
        },
    ]
}

/// The config an integrator would write around the scaffold: a local partner, the flow with the
/// schema, and the completed mapping. A dry run needs no Odoo server.
fn config_around(mapping: &str, xsd: &Path) -> String {
    format!(
        "[odoo]\ndry_run = true\n\n[ledger]\npath = \"run/edi-bridge.db\"\n\n\
         [partners.local]\nroot = \"partner\"\n\n\
         [flows.partner]\npartner = \"local\"\ndirection = \"import\"\ninbox = \"/in\"\n\
         schema = {}\n\n{mapping}",
        toml_string(xsd.to_str().unwrap())
    )
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn complete(scaffolded: &str, edits: &[Edit], case: &str) -> String {
    let mut lines: Vec<String> = scaffolded.lines().map(str::to_owned).collect();
    for (from, to) in edits {
        let at = lines
            .iter()
            .position(|l| l.starts_with(from))
            .unwrap_or_else(|| panic!("{case}: the scaffold has no line starting with {from}"));
        lines[at] = (*to).to_owned();
    }
    lines.join("\n") + "\n"
}

/// `edi-bridge validate` on `sample` with the config at `config`: the operations.
fn operations(config: &Path, flow: &str, sample: &Path, case: &str) -> Vec<Value> {
    let out = edi_bridge(&[
        "--config",
        config.to_str().unwrap(),
        "validate",
        sample.to_str().unwrap(),
        "--flow",
        flow,
    ]);
    assert!(
        out.status.success(),
        "{case}: validate {} failed:\n{}\nconfig:\n{}",
        sample.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(config).unwrap_or_default()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an operation per line"))
        .collect()
}

#[test]
fn a_scaffolded_mapping_completed_by_hand_maps_the_real_samples() {
    for case in cases() {
        let record: Vec<&str> = case.record.map(|r| vec!["--record", r]).unwrap_or_default();
        let text = scaffold(&case.xsd, &record);
        let printed = assignments(&text);
        for line in case.printed {
            assert!(
                printed.iter().any(|p| p == line),
                "{}: the scaffold lacks the line\n  {line}\n--- scaffold:\n{text}",
                case.name
            );
        }
        for part in case.comments {
            assert!(
                text.contains(part),
                "{}: the scaffold does not say {part:?}\n--- scaffold:\n{text}",
                case.name
            );
        }
        // The scaffold as printed is a valid mapping: it loads as part of a config.
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("edi-bridge.toml");
        std::fs::write(&config, config_around(&text, &case.xsd)).unwrap();
        edi_bridge::config::Config::load(&config).unwrap_or_else(|e| {
            panic!(
                "{}: the scaffold as printed does not load: {e}\n{text}",
                case.name
            )
        });

        let completed = complete(&text, case.edits, case.name);
        std::fs::write(&config, config_around(&completed, &case.xsd)).unwrap();
        let ops = operations(&config, "partner", &case.sample, case.name);
        match &case.expect {
            Expect::SameAsDemo(flow) | Expect::SameAs(_, flow) => {
                let ready_config = match &case.expect {
                    Expect::SameAs(config, _) => config.clone(),
                    _ => repo().join("demo/edi-bridge.toml"),
                };
                let ready = operations(&ready_config, flow, &case.sample, case.name);
                assert!(!ready.is_empty(), "{}: the sample has records", case.name);
                assert_eq!(
                    ops, ready,
                    "{}: not the ready mapping's operations",
                    case.name
                );
            }
            Expect::Values(expected) => {
                assert_eq!(ops.len(), expected.len(), "{}: {ops:#?}", case.name);
                for (op, want) in ops.iter().zip(expected) {
                    for (field, value) in want.as_object().unwrap() {
                        assert_eq!(
                            op["values"].get(field),
                            Some(value),
                            "{}: {field} in {op}",
                            case.name
                        );
                    }
                    assert_eq!(op["action"], "upsert", "{}", case.name);
                    assert_eq!(op["model"], "product.product", "{}", case.name);
                    assert_eq!(
                        op["key"],
                        json!({"default_code": want["default_code"]}),
                        "{}",
                        case.name
                    );
                }
            }
        }
    }
}

#[test]
fn the_output_stays_bounded_on_ubl() {
    let xsd = ubl("xsd/maindoc/UBL-Catalogue-2.1.xsd");
    let text = scaffold(&xsd, &[]);
    let lines = text.lines().count();
    // 200 values at most by default, plus the head and the notes.
    assert!((200..260).contains(&lines), "{lines} lines");
    let narrow = scaffold(&xsd, &["--depth", "1", "--max-fields", "10"]);
    assert!(
        narrow.contains("more than 1 level below the record"),
        "{narrow}"
    );
    let fields = narrow
        .lines()
        .filter(|l| l.starts_with("# FIELD =") || (!l.starts_with('#') && l.contains(" = ")))
        .count();
    // 10 nearest values; the guessed key is beyond --depth 1, so none is active.
    assert!(fields <= 10 + 6, "{narrow}");
    assert!(
        narrow.contains("values further from the record not listed"),
        "{narrow}"
    );
}

#[test]
fn a_schema_with_includes_extensions_choices_groups_and_recursion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orders.xsd"),
        r#"<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:example:orders"
           targetNamespace="urn:example:orders" elementFormDefault="unqualified">
  <xs:include schemaLocation="parts.xsd"/>
  <xs:element name="Orders">
    <xs:complexType><xs:sequence>
      <xs:element name="Header" type="xs:string"/>
      <xs:element name="Order" type="o:OrderType" maxOccurs="unbounded"/>
    </xs:sequence></xs:complexType>
  </xs:element>
  <xs:complexType name="Base">
    <xs:sequence><xs:element name="Number" type="xs:integer"/></xs:sequence>
    <xs:attribute name="id" type="xs:string" use="required"/>
  </xs:complexType>
  <xs:complexType name="OrderType">
    <xs:complexContent><xs:extension base="o:Base">
      <xs:sequence>
        <xs:choice>
          <xs:element name="Sku" type="xs:string"/>
          <xs:element name="Ean" type="xs:string"/>
        </xs:choice>
        <xs:group ref="o:Amounts"/>
        <xs:element name="Part" type="o:PartType" minOccurs="0"/>
      </xs:sequence>
    </xs:extension></xs:complexContent>
  </xs:complexType>
</xs:schema>"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("parts.xsd"),
        r#"<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:example:orders"
           targetNamespace="urn:example:orders" elementFormDefault="unqualified">
  <xs:group name="Amounts"><xs:sequence>
    <xs:element name="Price" type="xs:decimal"/>
    <xs:element name="Delivered" type="xs:date" minOccurs="0"/>
  </xs:sequence></xs:group>
  <xs:complexType name="PartType">
    <xs:sequence>
      <xs:element name="Name" type="xs:string"/>
      <xs:element name="Part" type="o:PartType" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
  </xs:complexType>
</xs:schema>"#,
    )
    .unwrap();
    let text = scaffold(&dir.path().join("orders.xsd"), &[]);
    let printed = assignments(&text);
    for line in [
        // Unqualified local elements carry no prefix; the global root does.
        "record = \"/o:Orders/Order\"",
        // From the base type, extended.
        "# FIELD = \"@id\"",
        "# FIELD = { path = \"Number\", type = \"integer\" }",
        // One of a choice: optional whatever its minOccurs.
        "barcode = { path = \"Ean\", optional = true }",
        // From the group, in the included file.
        "list_price = { path = \"Price\", type = \"float\" }",
        "# FIELD = { path = \"Delivered\", type = \"date\", optional = true }",
        "# FIELD = { path = \"Part/Name\", optional = true }",
    ] {
        assert!(
            printed.iter().any(|p| p == line),
            "missing {line}\n--- scaffold:\n{text}"
        );
    }
    assert!(
        text.contains("their type contains itself (recursive): Part/Part"),
        "{text}"
    );
}

#[test]
fn clear_errors_for_a_missing_file_a_broken_schema_and_an_unknown_record() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.xsd");
    let out = edi_bridge(&["scaffold", "--xsd", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.xsd: no such file"), "{err}");

    let broken = dir.path().join("broken.xsd");
    std::fs::write(
        &broken,
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><xs:element name=\"A\">",
    )
    .unwrap();
    let out = edi_bridge(&["scaffold", "--xsd", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.xsd: not a schema xsd-parser can read"),
        "{err}"
    );

    // A well-formed document that is not a schema declares no element to start from.
    let sample = repo().join("samples/products-1.xml");
    let out = edi_bridge(&["scaffold", "--xsd", sample.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("products-1.xml: not a schema") || err.contains("declares no global element"),
        "{err}"
    );

    let products = repo().join("xsd/products.xsd");
    let out = edi_bridge(&[
        "scaffold",
        "--xsd",
        products.to_str().unwrap(),
        "--record",
        "/p:Products/p:Item",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--record /p:Products/p:Item: no element `p:Item` there; the elements under /p:Products are: p:Product"),
        "{err}"
    );
    let out = edi_bridge(&[
        "scaffold",
        "--xsd",
        products.to_str().unwrap(),
        "--record",
        "/Catalogue",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no element `Catalogue` there; the schema's root elements are: p:Products"),
        "{err}"
    );
    // A value is not a record.
    let out = edi_bridge(&[
        "scaffold",
        "--xsd",
        products.to_str().unwrap(),
        "--record",
        "/Products/Product/Name",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds a single value, not fields"), "{err}");
}
