//! Whole configurations, accepted and refused: every refusal names its key.

use super::*;
use std::env::VarError;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::mapping::config::*;

/// The configuration example of the user-facing contract (PRODUCT.md), verbatim.
const CONTRACT: &str = include_str!("../../tests/fixtures/config/contract.toml");

fn env(name: &str) -> Result<String, VarError> {
    match name {
        "ODOO_API_KEY" => Ok("odoo-key".to_string()),
        "EDI_BRIDGE_TOKEN" => Ok("hook-token".to_string()),
        "ACME_SFTP_PASSWORD" => Ok("sftp-secret".to_string()),
        "EMPTY" => Ok(String::new()),
        "HOST" => Ok("sftp.example".to_string()),
        "PORT" => Ok("2222".to_string()),
        _ => Err(VarError::NotPresent),
    }
}

/// A config folder with the schema files the examples name.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("xsd")).unwrap();
    for name in [
        "products.xsd",
        "stock.xsd",
        "picking.xsd",
        "delivery-confirmation.xsd",
    ] {
        std::fs::write(dir.path().join("xsd").join(name), "<xs:schema/>").unwrap();
    }
    dir
}

fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    Config::parse_with_env(text, &dir.join("edi-bridge.toml"), &env)
}

fn parse(text: &str) -> Config {
    let dir = folder();
    parse_in(dir.path(), text).unwrap_or_else(|e| panic!("{e}"))
}

/// The config must be refused, at `key`, with a message containing `says`.
#[track_caller]
fn refused(text: &str, key: &str, says: &str) -> ConfigError {
    let dir = folder();
    let err = match parse_in(dir.path(), text) {
        Ok(_) => panic!("accepted, expected an error at {key} saying {says:?}"),
        Err(e) => e,
    };
    assert_eq!(err.key, key, "{err}");
    assert!(
        err.message.contains(says),
        "{err}\nexpected it to say {says:?}"
    );
    assert!(err.file.ends_with("edi-bridge.toml"), "{err}");
    err
}

const ODOO: &str = r#"
[odoo]
url = "https://erp.example.com"
database = "prod"
login = "edi@example.com"
api_key = "${ODOO_API_KEY}"
"#;

const ACME: &str = r#"
[partners.acme]
host = "sftp.acme.example"
user = "odoo"
key_file = "keys/acme_ed25519"
host_key = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
"#;

const DEMO: &str = "\n[partners.demo]\nroot = \"demo\"\n";

/// An XML upsert flow `p` on the local partner; `flow` and `mapping` add keys to the
/// flow and mapping tables, `fields` to the fields table.
fn xml_flow(flow: &str, mapping: &str, fields: &str) -> String {
    format!(
        r#"{ODOO}{ACME}{DEMO}
[flows.p]
partner = "demo"
direction = "import"
inbox = "/in/products/"
{flow}
[flows.p.mapping]
record = "/p:Products/p:Product"
namespaces = {{ p = "urn:p" }}
{mapping}
[flows.p.mapping.fields]
default_code = "@sku"
{fields}
"#
    )
}

/// `xml_flow` with the usual schema, model, action and key.
fn upsert(flow: &str, mapping: &str, fields: &str) -> String {
    xml_flow(
        &format!("schema = \"xsd/products.xsd\"\n{flow}"),
        &format!(
            "model = \"product.product\"\naction = \"upsert\"\nkey = [\"default_code\"]\n{mapping}"
        ),
        fields,
    )
}

/// A CSV upsert flow `c` with columns sku, qty (float), note (optional).
fn csv_flow(flow: &str, mapping: &str, fields: &str) -> String {
    format!(
        r#"{ODOO}{DEMO}
[flows.c]
partner = "demo"
direction = "import"
inbox = "/in"
format = "csv"
columns = [{{ name = "sku" }}, {{ name = "qty", type = "float" }}, {{ name = "note", optional = true }}]
{flow}
[flows.c.mapping]
model = "product.product"
action = "upsert"
key = ["default_code"]
{mapping}
[flows.c.mapping.fields]
default_code = "sku"
{fields}
"#
    )
}

/// A set_stock flow `s` on the local partner with the given mapping keys.
fn set_stock(mapping: &str) -> String {
    format!(
        r#"{ODOO}{DEMO}
[flows.s]
partner = "demo"
direction = "import"
inbox = "/in"
schema = "xsd/stock.xsd"
[flows.s.mapping]
record = "/StockReport/Line"
action = "set_stock"
{mapping}
"#
    )
}

const STOCK: &str = "product = \"Sku\"\nquantity = \"OnHand\"\nlocation = \"WH/Stock\"\n";

fn import(config: &Config, flow: &str) -> ImportFlow {
    match &config.flows[flow].direction {
        Direction::Import(import) => (**import).clone(),
        Direction::Export(_) => panic!("{flow} is an export flow"),
    }
}

fn upsert_of(flow: &ImportFlow) -> &UpsertMapping {
    match &flow.mapping.action {
        Action::Upsert(upsert) => upsert,
        _ => panic!("not an upsert"),
    }
}

fn set_stock_of(flow: &ImportFlow) -> &SetStockMapping {
    match &flow.mapping.action {
        Action::SetStock(set_stock) => set_stock,
        _ => panic!("not a set_stock"),
    }
}

fn field<'a>(flow: &'a ImportFlow, name: &str) -> &'a FieldMapping {
    upsert_of(flow)
        .fields
        .iter()
        .find(|f| f.field == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

fn path_text(mapping: &FieldMapping) -> &str {
    match &mapping.source {
        ValueSource::Path(path) => &path.text,
        other => panic!("not one path: {other:?}"),
    }
}

fn lookup(model: &str, field: &str) -> Option<Lookup> {
    Some(Lookup {
        model: model.to_string(),
        field: field.to_string(),
    })
}

#[test]
fn the_contract_example_parses() {
    let dir = folder();
    let config = parse_in(dir.path(), CONTRACT).unwrap_or_else(|e| panic!("{e}"));
    let base = std::path::absolute(dir.path()).unwrap();

    let odoo = config.odoo.connection.as_ref().unwrap();
    assert_eq!(odoo.url, "https://erp.example.com");
    assert_eq!(
        (odoo.database.as_str(), odoo.login.as_str()),
        ("prod", "edi@example.com")
    );
    assert!(matches!(&odoo.credential, Credential::ApiKey(k) if k == "odoo-key"));
    assert_eq!(odoo.protocol, Protocol::Auto);
    assert!(!config.odoo.dry_run);
    assert_eq!(config.odoo.batch_size, 200);
    assert_eq!(config.ledger.path, base.join("edi-bridge.db"));
    assert_eq!(config.spool, base.join("spool"));
    assert_eq!(config.server.listen, "127.0.0.1:8480".parse().unwrap());
    assert_eq!(config.server.token.as_deref(), Some("hook-token"));

    let acme = &config.partners["acme"];
    assert_eq!(acme.timezone.iana_name(), Some("Europe/Brussels"));
    assert_eq!(acme.max_sessions, 2);
    let PartnerTransport::Sftp(sftp) = &acme.transport else {
        panic!("acme is SFTP")
    };
    assert_eq!(
        (sftp.host.as_str(), sftp.port, sftp.user.as_str()),
        ("sftp.acme.example", 22, "odoo")
    );
    assert!(
        matches!(&sftp.auth, SftpAuth::Key { path, passphrase: None } if *path == base.join("keys/acme_ed25519"))
    );
    assert!(matches!(&sftp.host_key, HostKeyPolicy::Fingerprint(f) if f == "SHA256:Xl0i…"));
    let demo = &config.partners["demo"];
    assert!(
        matches!(&demo.transport, PartnerTransport::Local { root } if *root == base.join("demo/partner"))
    );

    let products = import(&config, "acme-products");
    assert_eq!(config.flows["acme-products"].partner, "acme");
    assert!(matches!(
        config.flows["acme-products"].schedule,
        Some(Schedule::Every(d)) if d == Duration::from_secs(12 * 3600)
    ));
    assert_eq!(products.inbox, "/out/products");
    assert!(products.pattern.matches("catalogue.xml") && !products.pattern.matches("a.csv"));
    assert_eq!(products.archive, "/out/products/archive/{yyyy}/{mm}/{dd}");
    assert_eq!(products.error, "/out/products/error");
    assert_eq!(products.settle, Duration::from_secs(10));
    assert!(
        matches!(&products.format, Format::Xml { schema } if *schema == base.join("xsd/products.xsd"))
    );
    assert_eq!(products.on_record_error, OnRecordError::Skip);
    assert_eq!(products.mapping.model, "product.product");
    assert_eq!(
        products.mapping.record.as_ref().unwrap().text,
        "/p:Products/p:Product"
    );
    let upsert = upsert_of(&products);
    assert_eq!(upsert.key, ["default_code"]);
    let names: Vec<&str> = upsert.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        names,
        ["default_code", "name", "barcode", "list_price", "uom_id"],
        "config order"
    );
    assert_eq!(path_text(field(&products, "name")), "p:Name");
    assert!(field(&products, "barcode").optional);
    assert!(!field(&products, "name").optional);
    assert_eq!(field(&products, "list_price").ty, ValueType::Float);
    assert_eq!(field(&products, "uom_id").lookup, lookup("uom.uom", "name"));

    let stock = import(&config, "acme-stock");
    assert_eq!(stock.mapping.model, "stock.quant");
    let set = set_stock_of(&stock);
    assert_eq!(path_text(&set.product), "Sku");
    assert_eq!(
        set.product.lookup,
        lookup("product.product", "default_code")
    );
    assert_eq!(set.quantity.ty, ValueType::Float);
    assert_eq!(path_text(&set.quantity), "OnHand");
    assert!(
        matches!(&set.location.source, ValueSource::Constant(serde_json::Value::String(s)) if s == "WH/Stock")
    );
    assert_eq!(
        set.location.lookup,
        lookup("stock.location", "complete_name")
    );
    let lot = set.lot.as_ref().unwrap();
    assert!(lot.optional);
    assert_eq!(lot.lookup, lookup("stock.lot", "name"));
    assert_eq!(set.snapshot, Snapshot::Partial);

    let Direction::Export(orders) = &config.flows["acme-orders"].direction else {
        panic!("acme-orders is an export flow")
    };
    assert_eq!(orders.outbox, "/in/orders");
    assert_eq!(orders.model, "stock.picking");
    assert_eq!(
        orders.domain,
        serde_json::json!([
            ["picking_type_code", "=", "outgoing"],
            ["state", "=", "assigned"]
        ])
    );
    assert_eq!(orders.template, crate::config::Template::BuiltinPicking);
    assert_eq!(orders.schema, Some(base.join("xsd/picking.xsd")));
    assert_eq!(orders.filename, "{name}.xml");
    assert_eq!(orders.mark.as_deref(), Some("x_edi_exported"));
    assert_eq!(config.flow("acme-orders").unwrap().name, "acme-orders");
}

#[test]
fn load_reads_the_file_and_the_process_environment() {
    let dir = folder();
    let file = dir.path().join("edi.toml");
    // PATH is set wherever tests run; the value must arrive unchanged.
    let path = std::env::var("PATH").unwrap();
    std::fs::write(
        &file,
        "[odoo]\ndry_run = true\n[server]\ntoken = \"[${PATH}]\"\n",
    )
    .unwrap();
    let config = Config::load(&file).unwrap();
    assert_eq!(config.server.token, Some(format!("[{path}]")));
    assert_eq!(config.file, file);
    assert!(config.odoo.connection.is_none());

    let err = Config::load(&dir.path().join("missing.toml")).unwrap_err();
    assert!(err.message.contains("cannot read"), "{err}");
    assert_eq!(err.key, "");
    assert_eq!(err.consequence(), Consequence::Stop);
}

#[test]
fn environment_variables_are_substituted_in_any_string() {
    let config = parse(&format!(
        "{ODOO}[server]\ntoken = \"${{HOST}}:${{PORT}}/${{ODOO_API_KEY}}\"\n\
             [partners.x]\nhost = \"${{HOST}}\"\nport = \"${{PORT}}\"\nuser = \"u\"\n\
             password = \"${{ACME_SFTP_PASSWORD}}\"\nknown_hosts = \"kh\"\n"
    ));
    assert_eq!(
        config.server.token.as_deref(),
        Some("sftp.example:2222/odoo-key")
    );
    let PartnerTransport::Sftp(sftp) = &config.partners["x"].transport else {
        panic!("SFTP")
    };
    assert_eq!((sftp.host.as_str(), sftp.port), ("sftp.example", 2222));
    assert!(matches!(&sftp.auth, SftpAuth::Password(p) if p == "sftp-secret"));
    // Secrets stay out of debug output.
    assert!(!format!("{sftp:?}{:?}", config.odoo).contains("secret"));
    assert!(!format!("{:?}", config.odoo).contains("odoo-key"));
}

#[test]
fn an_unset_environment_variable_names_the_key() {
    refused(
        &ODOO.replace("${ODOO_API_KEY}", "${NOT_SET_ANYWHERE}"),
        "odoo.api_key",
        "environment variable NOT_SET_ANYWHERE is not set",
    );
    // Deep inside an inline table of a mapping.
    refused(
        &upsert(
            "",
            "",
            "uom_id = { path = \"p:Unit\", lookup = { model = \"${NOPE}\", field = \"name\" } }",
        ),
        "flows.p.mapping.fields.uom_id.lookup.model",
        "NOPE is not set",
    );
    refused(
        &format!("{ODOO}[server]\ntoken = \"${{OPEN\"\n"),
        "server.token",
        "closing",
    );
    refused(
        &format!("{ODOO}[server]\ntoken = \"${{}}\"\n"),
        "server.token",
        "${NAME}",
    );
    refused(
        &ODOO.replace("${ODOO_API_KEY}", "${EMPTY}"),
        "odoo.api_key",
        "empty",
    );
}

#[test]
fn a_toml_syntax_error_gives_line_and_column() {
    let err = refused("[odoo]\ndry_run = true\nurl = \n", "", "line 3, column 7");
    assert!(err.message.starts_with("TOML syntax error"), "{err}");
    assert!(
        err.to_string()
            .ends_with(&format!("edi-bridge.toml: {}", err.message)),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_refused_everywhere_with_their_full_key() {
    let err = refused(
        &upsert("", "", "").replace("[flows.p.mapping.fields]", "[flows.p.mapping.feilds]"),
        "flows.p.mapping.feilds",
        "did you mean fields?",
    );
    assert_eq!(
        err.to_string(),
        format!("{}: flows.p.mapping.feilds: {}", err.file, err.message)
    );
    refused(
        &format!("{ODOO}[spool]\npath = \"x\"\n"),
        "spool",
        "unknown key",
    );
    refused(
        &format!("{ODOO}urll = \"x\"\n"),
        "odoo.urll",
        "did you mean url?",
    );
    refused(
        &format!("{ODOO}{ACME}colour = \"red\"\n"),
        "partners.acme.colour",
        "unknown key",
    );
    refused(
        &upsert("inboxx = \"/a\"", "", ""),
        "flows.p.inboxx",
        "did you mean inbox?",
    );
    refused(
        &upsert("", "", "x = { path = \"a\", typ = \"float\" }"),
        "flows.p.mapping.fields.x.typ",
        "did you mean type?",
    );
    refused(
        &upsert(
            "",
            "",
            "x = { path = \"a\", lookup = { model = \"m\", feld = \"n\" } }",
        ),
        "flows.p.mapping.fields.x.lookup.feld",
        "unknown key",
    );
    refused(
        &csv_flow("", "", "").replace("{ name = \"sku\" }", "{ name = \"sku\", kind = \"x\" }"),
        "flows.c.columns[0].kind",
        "unknown key",
    );
    refused(
        &format!("{ODOO}[ledger]\nspol = \"x\"\n"),
        "ledger.spol",
        "did you mean spool?",
    );
    refused(
        &format!("{ODOO}[server]\nlistn = \"x\"\n"),
        "server.listn",
        "did you mean listen?",
    );
    refused(
        &set_stock(&format!("{STOCK}lot = {{ path = \"Lot\", by = \"name\" }}")),
        "flows.s.mapping.lot.by",
        "unknown key",
    );
    // An import key on an export flow.
    refused(
        &format!(
            "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/o\"\ninbox = \"/i\"\n"
        ),
        "flows.e.inbox",
        "unknown key",
    );
    // Names that are not bare TOML keys are quoted, so the key stays unambiguous.
    refused(
        &format!("{ODOO}[partners.\"a.b\"]\nroot = \"x\"\nport = 22\n"),
        "partners.\"a.b\".port",
        "SFTP setting",
    );
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let dir = folder();
    let config = parse_in(dir.path(), &upsert("", "", "")).unwrap();
    let base = std::path::absolute(dir.path()).unwrap();
    assert_eq!(config.odoo.batch_size, 200);
    assert_eq!(config.odoo.timeout, Duration::from_secs(60));
    // A busy database answers SerializationFailure only after Odoo's own retries, 15–18 s
    // later (transcripts 18/128, 19/135): the default call timeout leaves room for it.
    assert!(config.odoo.timeout >= 2 * Duration::from_secs(18));
    assert_eq!(config.odoo.max_concurrency, 4);
    assert_eq!(config.ledger.path, base.join("edi-bridge.db"));
    assert_eq!(config.spool, base.join("spool"));
    assert_eq!(
        config.server.listen,
        SocketAddr::from(([127, 0, 0, 1], 8480))
    );
    assert_eq!(config.server.token, None);

    let acme = &config.partners["acme"];
    assert_eq!(acme.timezone, jiff::tz::TimeZone::UTC);
    assert_eq!(acme.max_sessions, 2);
    let PartnerTransport::Sftp(sftp) = &acme.transport else {
        panic!("SFTP")
    };
    assert_eq!(sftp.port, 22);
    assert_eq!(sftp.connect_timeout, Duration::from_secs(15));
    assert_eq!(sftp.op_timeout, Duration::from_secs(30));
    assert_eq!(sftp.keepalive, Duration::from_secs(15));

    let flow = import(&config, "p");
    assert!(config.flows["p"].schedule.is_none());
    assert_eq!(flow.inbox, "/in/products", "trailing slash dropped");
    assert!(flow.pattern.matches("anything.at.all"));
    assert_eq!(flow.archive, "/in/products/archive");
    assert_eq!(flow.error, "/in/products/error");
    assert_eq!(flow.settle, Duration::from_secs(10));
    assert_eq!(flow.settle_max, Duration::from_secs(3600));
    assert_eq!(flow.min_age, None);
    assert_eq!(flow.done_marker, None);
    assert_eq!(flow.max_file_size, 2 * 1024 * 1024 * 1024);
    assert_eq!(flow.on_record_error, OnRecordError::Skip);
    let code = field(&flow, "default_code");
    assert_eq!(
        (code.ty, code.optional, code.lookup.clone()),
        (ValueType::String, false, None)
    );

    // An inbox at the root does not give `//archive`.
    let root = import(
        &parse(&upsert("", "", "").replace("/in/products/", "/")),
        "p",
    );
    assert_eq!(
        (root.inbox.as_str(), root.archive.as_str()),
        ("/", "/archive")
    );
}

#[test]
fn given_values_replace_the_defaults() {
    let dir = folder();
    let text = upsert(
            "pattern = \"*.XML\"\narchive = \"done/{yyyy}-{mm}-{dd}/{name}\"\nerror = \"bad/\"\n\
             settle = \"500ms\"\nsettle_max = \"2h\"\nmin_age = \"15m\"\ndone_marker = \".ok\"\n\
             done_marker_replaces_extension = true\nmax_file_size = \"500MB\"\non_record_error = \"fail_file\"\n\
             every = \"15m\"",
            "",
            "",
        )
        .replace("[odoo]\n", "[odoo]\nbatch_size = 50\ntimeout = \"2m\"\nmax_concurrency = 8\nprotocol = \"json2\"\n")
        .replace("[partners.demo]\nroot = \"demo\"", "[partners.demo]\nroot = \"/srv/demo\"\ntimezone = \"America/New_York\"\nmax_sessions = 5")
        + "[ledger]\npath = \"state/ledger.db\"\nspool = \"/var/spool/edi\"\n[server]\nlisten = \"0.0.0.0:9000\"\n";
    let config = parse_in(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
    let base = std::path::absolute(dir.path()).unwrap();
    assert_eq!(config.odoo.batch_size, 50);
    assert_eq!(config.odoo.timeout, Duration::from_secs(120));
    assert_eq!(config.odoo.max_concurrency, 8);
    assert_eq!(
        config.odoo.connection.as_ref().unwrap().protocol,
        Protocol::Json2
    );
    assert_eq!(config.ledger.path, base.join("state/ledger.db"));
    assert_eq!(
        config.spool,
        PathBuf::from("/var/spool/edi"),
        "absolute paths stay"
    );
    assert_eq!(config.server.listen, "0.0.0.0:9000".parse().unwrap());
    let demo = &config.partners["demo"];
    assert!(
        matches!(&demo.transport, PartnerTransport::Local { root } if root == Path::new("/srv/demo"))
    );
    assert_eq!(demo.timezone.iana_name(), Some("America/New_York"));
    assert_eq!(demo.max_sessions, 5);
    assert!(
        matches!(config.flows["p"].schedule, Some(Schedule::Every(d)) if d == Duration::from_secs(900))
    );
    let flow = import(&config, "p");
    assert!(flow.pattern.matches("a.XML") && !flow.pattern.matches("a.xml"));
    assert_eq!(flow.archive, "done/{yyyy}-{mm}-{dd}/{name}");
    assert_eq!(flow.error, "bad");
    assert_eq!(flow.settle, Duration::from_millis(500));
    assert_eq!(flow.settle_max, Duration::from_secs(7200));
    assert_eq!(flow.min_age, Some(Duration::from_secs(900)));
    assert_eq!(
        flow.done_marker,
        Some(DoneMarker {
            suffix: ".ok".to_string(),
            replaces_extension: true
        })
    );
    assert_eq!(flow.max_file_size, 500_000_000);
    assert_eq!(flow.on_record_error, OnRecordError::FailFile);
}

#[test]
fn durations_are_checked() {
    refused(
        &upsert("settle = \"10\"", "", ""),
        "flows.p.settle",
        "\"500ms\", \"10s\", \"15m\" or \"12h\"",
    );
    refused(&upsert("settle = 10", "", ""), "flows.p.settle", "found 10");
    refused(
        &upsert("settle_max = \"5s\"", "", ""),
        "flows.p.settle_max",
        "at least settle",
    );
    refused(
        &upsert("min_age = \"soon\"", "", ""),
        "flows.p.min_age",
        "duration",
    );
    refused(
        &upsert("every = \"0s\"", "", ""),
        "flows.p.every",
        "longer than zero",
    );
    refused(
        &format!("{ODOO}timeout = \"1 fortnight\"\n"),
        "odoo.timeout",
        "duration",
    );
    refused(
        &format!("{ODOO}{ACME}keepalive = \"0ms\"\n"),
        "partners.acme.keepalive",
        "longer than zero",
    );
    refused(
        &format!("{ODOO}{ACME}connect_timeout = true\n"),
        "partners.acme.connect_timeout",
        "duration",
    );
    refused(
        &format!("{ODOO}{ACME}timeout = \"x\"\n"),
        "partners.acme.timeout",
        "duration",
    );
}

#[test]
fn max_file_size_takes_bytes_or_a_unit() {
    let size = |v: &str| {
        import(
            &parse(&upsert(&format!("max_file_size = {v}"), "", "")),
            "p",
        )
        .max_file_size
    };
    assert_eq!(size("1048576"), 1_048_576);
    assert_eq!(size("\"2GB\""), 2_000_000_000);
    assert_eq!(size("\"2GiB\""), 2 << 30);
    assert_eq!(size("\"64 KiB\""), 65_536);
    assert_eq!(size("\"100\""), 100);
    for bad in ["\"2XB\"", "0", "-5", "\"GB\"", "1.5"] {
        refused(
            &upsert(&format!("max_file_size = {bad}"), "", ""),
            "flows.p.max_file_size",
            "a size such as",
        );
    }
}

#[test]
fn odoo_connection_rules() {
    refused(
        &ODOO.replace("url = \"https://erp.example.com\"\n", ""),
        "odoo.url",
        "dry_run = true",
    );
    refused(
        &ODOO.replace("https://erp.example.com", "erp.example.com"),
        "odoo.url",
        "http:// or https://",
    );
    refused(
        &ODOO.replace("database = \"prod\"\n", ""),
        "odoo.database",
        "missing",
    );
    refused(
        &ODOO.replace("login = \"edi@example.com\"\n", ""),
        "odoo.login",
        "missing",
    );
    refused(
        &ODOO.replace("api_key = \"${ODOO_API_KEY}\"\n", ""),
        "odoo.api_key",
        "api_key",
    );
    refused(
        &format!("{ODOO}password = \"pw\"\n"),
        "odoo.password",
        "either api_key or password",
    );
    refused(
        &format!("{ODOO}protocol = \"xmlrpc\"\n"),
        "odoo.protocol",
        "\"auto\", \"jsonrpc\" or \"json2\"",
    );
    refused(
        &ODOO.replace(
            "api_key = \"${ODOO_API_KEY}\"",
            "password = \"pw\"\nprotocol = \"json2\"",
        ),
        "odoo.protocol",
        "API key",
    );
    refused(
        &format!("{ODOO}batch_size = 0\n"),
        "odoo.batch_size",
        "from 1 to 10000",
    );
    refused(
        &format!("{ODOO}batch_size = 10001\n"),
        "odoo.batch_size",
        "from 1 to 10000",
    );
    refused(
        &format!("{ODOO}max_concurrency = \"many\"\n"),
        "odoo.max_concurrency",
        "whole number",
    );
    refused(
        &format!("{ODOO}dry_run = \"yes\"\n"),
        "odoo.dry_run",
        "true or false",
    );
    refused(
        "[odoo]\ndry_run = true\ndatabase = \"prod\"\n",
        "odoo.database",
        "without odoo.url",
    );

    let config = parse(&ODOO.replace("https://erp.example.com", "http://localhost:8069//"));
    let connection = config.odoo.connection.unwrap();
    assert_eq!(connection.url, "http://localhost:8069");
    assert_eq!(connection.credential.secret(), "odoo-key");
    let config = parse(&ODOO.replace(
        "api_key = \"${ODOO_API_KEY}\"",
        "password = \"pw\"\nprotocol = \"jsonrpc\"\ndry_run = true",
    ));
    assert!(config.odoo.dry_run);
    let connection = config.odoo.connection.unwrap();
    assert!(matches!(connection.credential, Credential::Password(ref p) if p == "pw"));
    assert_eq!(connection.protocol, Protocol::JsonRpc);
    assert!(
        parse("[odoo]\ndry_run = \"true\"\n")
            .odoo
            .connection
            .is_none()
    );
}

#[test]
fn server_rules() {
    refused(
        &format!("{ODOO}[server]\nlisten = \"localhost\"\n"),
        "server.listen",
        "127.0.0.1:8480",
    );
    refused(
        &format!("{ODOO}[server]\ntoken = \"\"\n"),
        "server.token",
        "empty",
    );
    refused(&format!("server = 5\n{ODOO}"), "server", "expected a table");
}

#[test]
fn sftp_partner_rules() {
    let acme = |from: &str, to: &str| format!("{ODOO}{}", ACME.replace(from, to));
    refused(
        &format!("{ODOO}[partners.\"ac me\"]\nroot = \"x\"\n"),
        "partners.\"ac me\"",
        "not a usable partner name",
    );
    refused(
        &format!("{ODOO}{ACME}root = \"x\"\n"),
        "partners.acme.root",
        "not both",
    );
    refused(
        &format!("{ODOO}[partners.x]\ntimezone = \"UTC\"\n"),
        "partners.x",
        "host",
    );
    refused(
        &acme("user = \"odoo\"\n", ""),
        "partners.acme.user",
        "missing",
    );
    refused(
        &format!("{ODOO}{ACME}password = \"pw\"\n"),
        "partners.acme.password",
        "either key_file or password",
    );
    refused(
        &acme("key_file = \"keys/acme_ed25519\"\n", ""),
        "partners.acme.key_file",
        "password",
    );
    refused(
        &acme(
            "key_file = \"keys/acme_ed25519\"",
            "password = \"pw\"\nkey_passphrase = \"x\"",
        ),
        "partners.acme.key_passphrase",
        "only used with key_file",
    );
    refused(
        &format!("{ODOO}{ACME}known_hosts = \"kh\"\n"),
        "partners.acme.known_hosts",
        "not both",
    );
    refused(
        &format!("{ODOO}{ACME}accept_new = true\n"),
        "partners.acme.accept_new",
        "only works with known_hosts",
    );
    refused(
        &acme(
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "MD5:16:27:ac",
        ),
        "partners.acme.host_key",
        "SHA256:",
    );
    refused(
        &acme(
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "256 SHA256:47DE host (ED25519)",
        ),
        "partners.acme.host_key",
        "ssh-keygen -lf",
    );
    let err = refused(
        &acme(
            "host_key = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n",
            "port = 2222\n",
        ),
        "partners.acme.host_key",
        "host keys are always verified",
    );
    assert!(
        err.message
            .contains("ssh-keyscan -p 2222 sftp.acme.example"),
        "{err}"
    );
    assert!(
        err.message.contains("ssh-keygen -lf") && err.message.contains("known_hosts"),
        "{err}"
    );
    refused(
        &acme("sftp.acme.example", "sftp.acme.example:22"),
        "partners.acme.host",
        "host name",
    );
    refused(
        &format!("{ODOO}{ACME}port = 0\n"),
        "partners.acme.port",
        "from 1 to 65535",
    );
    refused(
        &format!("{ODOO}{ACME}port = 70000\n"),
        "partners.acme.port",
        "from 1 to 65535",
    );
    refused(
        &format!("{ODOO}{ACME}max_sessions = 0\n"),
        "partners.acme.max_sessions",
        "whole number",
    );
    refused(
        &format!("{ODOO}{ACME}timezone = \"Mars/Olympus\"\n"),
        "partners.acme.timezone",
        "unknown time zone",
    );
    refused(
        &format!("{ODOO}{DEMO}user = \"u\"\n"),
        "partners.demo.user",
        "SFTP setting",
    );

    let dir = folder();
    let config = parse_in(
            dir.path(),
            &acme(
                "host_key = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"",
                "known_hosts = \"keys/known_hosts\"\naccept_new = true\nkey_passphrase = \"${ACME_SFTP_PASSWORD}\"",
            ),
        )
        .unwrap();
    let PartnerTransport::Sftp(sftp) = &config.partners["acme"].transport else {
        panic!("SFTP")
    };
    let base = std::path::absolute(dir.path()).unwrap();
    assert!(
        matches!(&sftp.host_key, HostKeyPolicy::KnownHosts { path, accept_new: true } if *path == base.join("keys/known_hosts"))
    );
    assert!(matches!(&sftp.auth, SftpAuth::Key { passphrase: Some(p), .. } if p == "sftp-secret"));
    let padded = parse(&acme("hSuFU\"", "hSuFU=\""));
    let PartnerTransport::Sftp(sftp) = &padded.partners["acme"].transport else {
        panic!("SFTP")
    };
    assert!(
        matches!(&sftp.host_key, HostKeyPolicy::Fingerprint(f) if f == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")
    );
}

#[test]
fn flow_rules() {
    let err = refused(
        &upsert("", "", "").replace("partner = \"demo\"", "partner = \"acne\""),
        "flows.p.partner",
        "no partner named \"acne\"",
    );
    assert!(err.message.contains("acme, demo"), "{err}");
    refused(
        &upsert("", "", "")
            .replace("[flows.p]", "[flows.\"p q\"]")
            .replace("[flows.p.", "[flows.\"p q\"."),
        "flows.\"p q\"",
        "not a usable flow name",
    );
    refused(
        &upsert("", "", "").replace("direction = \"import\"", "direction = \"in\""),
        "flows.p.direction",
        "\"import\" or \"export\"",
    );
    refused(
        &upsert("", "", "").replace("direction = \"import\"\n", ""),
        "flows.p.direction",
        "missing",
    );
    refused(
        &upsert("", "", "").replace("inbox = \"/in/products/\"\n", ""),
        "flows.p.inbox",
        "missing",
    );
    refused(
        &upsert("every = \"1h\"\ncron = \"0 6 * * *\"", "", ""),
        "flows.p.cron",
        "either every or cron",
    );
    let cron = parse(&upsert("cron = \"0 6,18 * * *\"", "", ""));
    assert!(
        matches!(&cron.flows["p"].schedule, Some(Schedule::Cron(c)) if c.pattern.to_string() == "0 6,18 * * *")
    );
    let with_seconds = parse(&upsert("cron = \"*/5 * * * * *\"", "", ""));
    assert!(matches!(
        &with_seconds.flows["p"].schedule,
        Some(Schedule::Cron(_))
    ));
    for bad in [
        "\"every day\"",
        "\"61 * * * *\"",
        "\"0 6 * *\"",
        "\"0 25 * * *\"",
    ] {
        refused(
            &upsert(&format!("cron = {bad}"), "", ""),
            "flows.p.cron",
            "invalid cron expression",
        );
    }
    refused(
        &upsert("pattern = \"[abc\"", "", ""),
        "flows.p.pattern",
        "invalid glob",
    );
    refused(
        &upsert("archive = \"a/{yyyy}/{hh}\"", "", ""),
        "flows.p.archive",
        "unknown placeholder {hh}",
    );
    refused(
        &upsert("archive = \"a/{yyyy\"", "", ""),
        "flows.p.archive",
        "{yyyy}, {mm}, {dd} and {name}",
    );
    refused(
        &upsert("archive = \"a/yyyy}\"", "", ""),
        "flows.p.archive",
        "`}` without `{`",
    );
    refused(
        &upsert("done_marker = \"done\"", "", ""),
        "flows.p.done_marker",
        "\".done\"",
    );
    refused(
        &upsert("done_marker = \"./x\"", "", ""),
        "flows.p.done_marker",
        "suffix",
    );
    refused(
        &upsert("done_marker_replaces_extension = true", "", ""),
        "flows.p.done_marker_replaces_extension",
        "only used with done_marker",
    );
    let marker = import(&parse(&upsert("done_marker = \".done\"", "", "")), "p").done_marker;
    assert_eq!(
        marker,
        Some(DoneMarker {
            suffix: ".done".to_string(),
            replaces_extension: false
        })
    );
    refused(
        &upsert("format = \"json\"", "", ""),
        "flows.p.format",
        "\"xml\" or \"csv\"",
    );
    refused(
        &upsert("on_record_error = \"ignore\"", "", ""),
        "flows.p.on_record_error",
        "\"skip\" or \"fail_file\"",
    );
    refused(
        &upsert("", "", "").replace("schema = \"xsd/products.xsd\"\n", ""),
        "flows.p.schema",
        "XSD",
    );
    refused(
        &upsert("", "", "").replace("xsd/products.xsd", "xsd/nope.xsd"),
        "flows.p.schema",
        "not found",
    );
    refused(
        &upsert("delimiter = \";\"", "", ""),
        "flows.p.delimiter",
        "CSV setting",
    );
    refused(
        &upsert("columns = []", "", ""),
        "flows.p.columns",
        "CSV setting",
    );
    refused(
        &xml_flow(
            "schema = \"xsd/products.xsd\"",
            "model = \"m\"\naction = \"upsert\"\nkey = [\"default_code\"]",
            "",
        )
        .replace("[flows.p.mapping]\n", "[flows.p.mappings]\n")
        .replace("[flows.p.mapping.fields]", "[flows.p.mappings.fields]"),
        "flows.p.mappings",
        "did you mean mapping?",
    );
    let whole = upsert("", "", "");
    refused(
        &whole[..whole.find("[flows.p.mapping]").unwrap()],
        "flows.p.mapping",
        "missing",
    );
}

#[test]
fn export_flows_are_read_leniently() {
    let config = parse(&format!(
        "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/out\"\nmark = \"x_done\"\n"
    ));
    let Direction::Export(export) = &config.flows["e"].direction else {
        panic!("export")
    };
    assert_eq!(export.mark.as_deref(), Some("x_done"));
    assert_eq!(export.schema, None);
    assert_eq!(export.template, crate::config::Template::BuiltinPicking);
    assert!(!export.chatter && !export.note_on_failure);
    assert_eq!(export.filename, "{name}.xml");
    refused(
        &format!("{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\n"),
        "flows.e.outbox",
        "missing",
    );
    refused(
        &format!(
            "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/o\"\nfilename = \"out/{{name}}.xml\"\n"
        ),
        "flows.e.filename",
        "names a folder",
    );
    refused(
        &format!(
            "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/o\"\nfilename = \"{{origin}}.xml\"\n"
        ),
        "flows.e.filename",
        "same file name",
    );
    refused(
        &format!(
            "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/o\"\nfilename = \"{{nam}}.xml\"\n"
        ),
        "flows.e.filename",
        "unknown placeholder {nam}",
    );
    refused(
        &format!(
            "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/o\"\ntemplate = \"builtin:invoice\"\n"
        ),
        "flows.e.template",
        "no built-in template",
    );
}

#[test]
fn csv_flows() {
    let config = parse(&csv_flow(
        "delimiter = \"\\t\"\nencoding = \"windows-1252\"\ndecimal = \",\"",
        "",
        "qty_available = \"qty\"\ndescription = \"note\"\nweight = { path = \"qty\", type = \"string\" }",
    ));
    let flow = import(&config, "c");
    let Format::Csv(csv) = &flow.format else {
        panic!("csv")
    };
    assert_eq!(
        (csv.delimiter, csv.decimal, csv.encoding),
        (b'\t', ',', encoding_rs::WINDOWS_1252)
    );
    let names: Vec<(&str, ValueType, bool)> = csv
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.ty, c.optional))
        .collect();
    assert_eq!(
        names,
        [
            ("sku", ValueType::String, false),
            ("qty", ValueType::Float, false),
            ("note", ValueType::String, true)
        ]
    );
    assert!(flow.mapping.record.is_none());
    // A field takes its column's type and optionality unless it says otherwise.
    assert_eq!(field(&flow, "qty_available").ty, ValueType::Float);
    assert!(field(&flow, "description").optional);
    assert_eq!(field(&flow, "weight").ty, ValueType::String);
    let ValueSource::Path(path) = &field(&flow, "qty_available").source else {
        panic!("path")
    };
    assert_eq!(*path, crate::mapping::path::column_path("qty"));

    let defaults = import(&parse(&csv_flow("", "", "")), "c");
    let Format::Csv(csv) = &defaults.format else {
        panic!("csv")
    };
    assert_eq!(
        (csv.delimiter, csv.decimal, csv.encoding),
        (b',', '.', encoding_rs::UTF_8)
    );

    let err = refused(
        &csv_flow("", "", "name = \"Name\""),
        "flows.c.mapping.fields.name",
        "not a declared column",
    );
    assert!(err.message.contains("\"sku\", \"qty\", \"note\""), "{err}");
    refused(
        &csv_flow("", "", "name = { path = \"@sku\" }"),
        "flows.c.mapping.fields.name.path",
        "not a declared column",
    );
    refused(
        &csv_flow("delimiter = \";;\"", "", ""),
        "flows.c.delimiter",
        "one ASCII character",
    );
    refused(
        &csv_flow("delimiter = \"§\"", "", ""),
        "flows.c.delimiter",
        "one ASCII character",
    );
    refused(
        &csv_flow("encoding = \"klingon\"", "", ""),
        "flows.c.encoding",
        "unknown encoding",
    );
    refused(
        &csv_flow("decimal = \"·\"", "", ""),
        "flows.c.decimal",
        "\".\" or \",\"",
    );
    refused(
        &csv_flow("schema = \"xsd/products.xsd\"", "", ""),
        "flows.c.schema",
        "no XSD",
    );
    refused(
        &csv_flow("", "record = \"/a/b\"", ""),
        "flows.c.mapping.record",
        "XML flows",
    );
    refused(
        &csv_flow("", "namespaces = { p = \"urn:p\" }", ""),
        "flows.c.mapping.namespaces",
        "XML flows",
    );
    refused(
        &csv_flow("", "", "").replace("columns = [", "# columns = ["),
        "flows.c.columns",
        "missing",
    );
    refused(
        &csv_flow("", "", "")
            .replace("columns = [{ name = \"sku\" }, ", "columns = [")
            .replace("]\n\n", ", {name=\"x\"}]\n"),
        "flows.c.mapping.fields.default_code",
        "not a declared column",
    );
    refused(
        &csv_flow("", "", "").replace("{ name = \"note\", optional = true }", "{ name = \"sku\" }"),
        "flows.c.columns[2].name",
        "declared twice",
    );
    refused(
        &csv_flow("", "", "").replace("type = \"float\"", "type = \"decimal\""),
        "flows.c.columns[1].type",
        "\"string\", \"float\", \"integer\", \"boolean\" or \"date\"",
    );
}

#[test]
fn upsert_mapping_rules() {
    refused(
        &upsert("", "", "").replace("record = \"/p:Products/p:Product\"\n", ""),
        "flows.p.mapping.record",
        "absolute path",
    );
    refused(
        &upsert("", "", "").replace("/p:Products/p:Product", "//p:Product"),
        "flows.p.mapping.record",
        "`//`",
    );
    refused(
        &upsert("", "", "").replace("/p:Products/p:Product", "/q:Products"),
        "flows.p.mapping.record",
        "unknown namespace prefix `q`",
    );
    refused(
        &upsert("", "", "name = \"q:Name\""),
        "flows.p.mapping.fields.name",
        "unknown namespace prefix `q`",
    );
    refused(
        &upsert("", "", "name = { path = \"p:Name/text()\" }"),
        "flows.p.mapping.fields.name.path",
        "functions",
    );
    refused(
        &upsert("", "", "name = \"\""),
        "flows.p.mapping.fields.name",
        "empty",
    );
    refused(
        &upsert("", "", "name = 5"),
        "flows.p.mapping.fields.name",
        "a path string",
    );
    refused(
        &upsert("", "", "").replace(
            "namespaces = { p = \"urn:p\" }",
            "namespaces = { \"1p\" = \"urn:p\" }",
        ),
        "flows.p.mapping.namespaces.1p",
        "usable prefix",
    );
    refused(
        &upsert("", "", "").replace("action = \"upsert\"", "action = \"delete\""),
        "flows.p.mapping.action",
        "\"confirm_delivery\"",
    );
    refused(
        &upsert("", "", "").replace("model = \"product.product\"\n", ""),
        "flows.p.mapping.model",
        "missing",
    );
    refused(
        &upsert("", "", "").replace("key = [\"default_code\"]\n", ""),
        "flows.p.mapping.key",
        "missing",
    );
    refused(
        &upsert("", "", "").replace("key = [\"default_code\"]", "key = []"),
        "flows.p.mapping.key",
        "at least one",
    );
    refused(
        &upsert("", "", "").replace("key = [\"default_code\"]", "key = \"default_code\""),
        "flows.p.mapping.key",
        "expected an array",
    );
    refused(
        &upsert("", "", "").replace("key = [\"default_code\"]", "key = [\"barcode\"]"),
        "flows.p.mapping.key",
        "\"barcode\" is not mapped",
    );
    refused(
        &upsert("", "", "").replace(
            "default_code = \"@sku\"",
            "default_code = { path = \"@sku\", optional = true }",
        ),
        "flows.p.mapping.key",
        "optional",
    );
    refused(
        &upsert("", "", "").replace("[flows.p.mapping.fields]\ndefault_code = \"@sku\"\n", ""),
        "flows.p.mapping.fields",
        "missing",
    );
    refused(
        &upsert("", "product = \"Sku\"", ""),
        "flows.p.mapping.product",
        "set_stock setting",
    );
    refused(
        &upsert("", "", "\"x y\" = \"a\""),
        "flows.p.mapping.fields.\"x y\"",
        "not an Odoo field name",
    );
    refused(
        &upsert(
            "",
            "",
            "list_price = { path = \"p:Price\", type = \"money\" }",
        ),
        "flows.p.mapping.fields.list_price.type",
        "\"float\"",
    );
    refused(
        &upsert("", "", "list_price = { path = \"p:Price\", value = 1 }"),
        "flows.p.mapping.fields.list_price.value",
        "not both",
    );
    refused(
        &upsert("", "", "list_price = { type = \"float\" }"),
        "flows.p.mapping.fields.list_price.path",
        "value = ",
    );
    refused(
        &upsert("", "", "sale_ok = { value = true, optional = true }"),
        "flows.p.mapping.fields.sale_ok.optional",
        "always present",
    );
    refused(
        &upsert(
            "",
            "",
            "uom_id = { path = \"p:Unit\", lookup = { model = \"uom.uom\" } }",
        ),
        "flows.p.mapping.fields.uom_id.lookup.field",
        "missing",
    );
    refused(
        &upsert(
            "",
            "",
            "uom_id = { path = \"p:Unit\", lookup = \"uom.uom\" }",
        ),
        "flows.p.mapping.fields.uom_id.lookup",
        "model = ",
    );
    refused(
        &upsert("", "", "uom_id = { path = \"p:Unit\", optional = 1 }"),
        "flows.p.mapping.fields.uom_id.optional",
        "true or false",
    );
    refused(
        &upsert("", "", "x = { value = nan }"),
        "flows.p.mapping.fields.x.value",
        "finite",
    );
}

#[test]
fn constants_become_json_values() {
    let flow = import(
        &parse(&upsert(
            "",
            "",
            "is_storable = { value = true }\nsequence = { value = 10 }\nweight = { value = 0.5 }\n\
                 type = { value = \"consu\" }\ntags = { value = [1, \"two\"] }\n\
                 meta = { value = { a = { b = false } } }\nsince = { value = 2024-01-31 }\n\
                 categ_id = { value = \"All/Saleable\", lookup = { model = \"product.category\", field = \"complete_name\" } }\n\
                 code = { value = 7, type = \"string\" }",
        )),
        "p",
    );
    let constant = |name: &str| match &field(&flow, name).source {
        ValueSource::Constant(value) => (value.clone(), field(&flow, name).ty),
        other => panic!("not a constant: {other:?}"),
    };
    use serde_json::json;
    assert_eq!(constant("is_storable"), (json!(true), ValueType::Boolean));
    assert_eq!(constant("sequence"), (json!(10), ValueType::Integer));
    assert_eq!(constant("weight"), (json!(0.5), ValueType::Float));
    assert_eq!(constant("type"), (json!("consu"), ValueType::String));
    assert_eq!(constant("tags").0, json!([1, "two"]));
    assert_eq!(constant("meta").0, json!({"a": {"b": false}}));
    assert_eq!(constant("since"), (json!("2024-01-31"), ValueType::Date));
    assert_eq!(constant("code"), (json!(7), ValueType::String));
    assert_eq!(
        field(&flow, "categ_id").lookup,
        lookup("product.category", "complete_name")
    );
}

#[test]
fn field_paths_are_resolved_through_the_mapping_namespaces() {
    let flow = import(
        &parse(&upsert(
            "",
            "",
            "barcode = \"p:Id[@scheme='gtin']/@value\"\nname = \"p:Name\"",
        )),
        "p",
    );
    let ValueSource::Path(path) = &field(&flow, "barcode").source else {
        panic!("path")
    };
    assert_eq!(path.steps[0].name.ns.as_deref(), Some("urn:p"));
    assert_eq!(path.steps[0].predicate.as_ref().unwrap().value, "gtin");
    assert_eq!(path.attr.as_ref().unwrap().local, "value");
    assert_eq!(path.text, "p:Id[@scheme='gtin']/@value");
    let record = flow.mapping.record.as_ref().unwrap();
    assert!(
        record
            .steps
            .iter()
            .all(|s| s.name.ns.as_deref() == Some("urn:p"))
    );
    assert_eq!(flow.mapping.namespaces["p"], "urn:p");
}

#[test]
fn set_stock_mapping_rules() {
    let flow = import(
        &parse(&set_stock(
            "model = \"stock.quant\"\nproduct = { path = \"Ean\", by = \"barcode\" }\nquantity = { path = \"Qty\" }\n\
                 location = { path = \"Loc\", by = \"barcode\" }\nlot = \"Lot\"\nsnapshot = \"full\"",
        )),
        "s",
    );
    let set = set_stock_of(&flow);
    assert_eq!(set.product.field, "product_id");
    assert_eq!(set.product.lookup, lookup("product.product", "barcode"));
    assert_eq!(path_text(&set.quantity), "Qty");
    assert_eq!(set.quantity.field, "inventory_quantity");
    assert_eq!(path_text(&set.location), "Loc");
    assert_eq!(set.location.field, "location_id");
    assert_eq!(set.location.lookup, lookup("stock.location", "barcode"));
    let lot = set.lot.as_ref().unwrap();
    assert_eq!((lot.field.as_str(), lot.optional), ("lot_id", false));
    assert_eq!(set.snapshot, Snapshot::Full);

    let plain = import(&parse(&set_stock(STOCK)), "s");
    let set = set_stock_of(&plain);
    assert_eq!(
        set.product.lookup,
        lookup("product.product", "default_code")
    );
    assert!(set.lot.is_none());
    assert_eq!(set.snapshot, Snapshot::Partial);
    let by_path = import(
        &parse(&set_stock(
            &STOCK.replace("\"WH/Stock\"", "{ path = \"Loc\" }"),
        )),
        "s",
    );
    assert_eq!(
        set_stock_of(&by_path).location.lookup,
        lookup("stock.location", "complete_name")
    );
    for by in ["name", "warehouse"] {
        let flow = import(
            &parse(&set_stock(&STOCK.replace(
                "\"WH/Stock\"",
                &format!("{{ path = \"Loc\", by = \"{by}\" }}"),
            ))),
            "s",
        );
        assert_eq!(
            set_stock_of(&flow).location.lookup,
            lookup("stock.location", by)
        );
    }
    refused(
        &set_stock(&STOCK.replace("\"WH/Stock\"", "{ path = \"Loc\", by = \"city\" }")),
        "flows.s.mapping.location.by",
        "\"warehouse\"",
    );

    refused(
        &set_stock(&format!("{STOCK}model = \"stock.move\"")),
        "flows.s.mapping.model",
        "stock.quant",
    );
    refused(
        &set_stock(&format!("{STOCK}key = [\"product_id\"]")),
        "flows.s.mapping.key",
        "upsert setting",
    );
    refused(
        &set_stock(&format!("{STOCK}[flows.s.mapping.fields]\na = \"b\"")),
        "flows.s.mapping.fields",
        "upsert setting",
    );
    refused(
        &set_stock(&STOCK.replace("product = \"Sku\"\n", "")),
        "flows.s.mapping.product",
        "missing",
    );
    refused(
        &set_stock(&STOCK.replace("quantity = \"OnHand\"\n", "")),
        "flows.s.mapping.quantity",
        "missing",
    );
    refused(
        &set_stock(&STOCK.replace("location = \"WH/Stock\"\n", "")),
        "flows.s.mapping.location",
        "missing",
    );
    refused(
        &set_stock(&STOCK.replace("\"Sku\"", "{ path = \"Sku\", by = \"bad name\" }")),
        "flows.s.mapping.product.by",
        "field name",
    );
    refused(
        &set_stock(&STOCK.replace("\"Sku\"", "{ by = \"barcode\" }")),
        "flows.s.mapping.product.path",
        "missing",
    );
    refused(
        &set_stock(&STOCK.replace("\"OnHand\"", "{ path = \"OnHand\", type = \"integer\" }")),
        "flows.s.mapping.quantity.type",
        "unknown key",
    );
    refused(
        &set_stock(&STOCK.replace("\"OnHand\"", "\"../OnHand\"")),
        "flows.s.mapping.quantity",
        "`..`",
    );
    refused(
        &set_stock(&format!("{STOCK}snapshot = \"all\"")),
        "flows.s.mapping.snapshot",
        "\"partial\" or \"full\"",
    );
    refused(
        &set_stock(&format!("{STOCK}lot = {{ optional = true }}")),
        "flows.s.mapping.lot.path",
        "missing",
    );
}

fn first_of_texts(mapping: &FieldMapping) -> Vec<&str> {
    match &mapping.source {
        ValueSource::FirstOf(paths) => paths.iter().map(|p| p.text.as_str()).collect(),
        other => panic!("not several paths: {other:?}"),
    }
}

#[test]
fn a_field_path_may_be_the_paths_tried_in_order() {
    let flow = import(
        &parse(&upsert(
            "",
            "",
            "barcode = { path = [\"p:Seller/p:Id\", \"p:Std/p:Id[@scheme='gtin']\", \"@ean\"], \
             optional = true }\nname = { path = [\"p:Name\"] }\nweight = \"p:Weight\"",
        )),
        "p",
    );
    let barcode = field(&flow, "barcode");
    assert_eq!(
        first_of_texts(barcode),
        ["p:Seller/p:Id", "p:Std/p:Id[@scheme='gtin']", "@ean"]
    );
    assert!(barcode.optional);
    let ValueSource::FirstOf(paths) = &barcode.source else {
        unreachable!()
    };
    assert_eq!(paths[1].steps[0].name.ns.as_deref(), Some("urn:p"));
    // One entry is one path; the plain string stays one path.
    assert_eq!(path_text(field(&flow, "name")), "p:Name");
    assert_eq!(path_text(field(&flow, "weight")), "p:Weight");

    refused(
        &upsert("", "", "name = { path = [] }"),
        "flows.p.mapping.fields.name.path",
        "empty array",
    );
    refused(
        &upsert("", "", "name = { path = [\"p:Name\", \"q:Name\"] }"),
        "flows.p.mapping.fields.name.path[1]",
        "unknown namespace prefix `q`",
    );
    refused(
        &upsert("", "", "name = { path = [\"p:Name\", \"\"] }"),
        "flows.p.mapping.fields.name.path[1]",
        "empty",
    );
    refused(
        &upsert("", "", "name = { path = [\"p:Name\", 3] }"),
        "flows.p.mapping.fields.name.path[1]",
        "expected a string",
    );
    refused(
        &upsert("", "", "name = { path = [\"p:Name\", \"p:Name\"] }"),
        "flows.p.mapping.fields.name.path[1]",
        "listed twice",
    );
    refused(
        &upsert("", "", "name = { path = 3 }"),
        "flows.p.mapping.fields.name.path",
        "array of paths",
    );
    // A bare array is not a field mapping: `path = […]` says what it is.
    refused(
        &upsert("", "", "name = [\"p:Name\", \"p:Title\"]"),
        "flows.p.mapping.fields.name",
        "expected a path string",
    );
}

#[test]
fn csv_fields_may_try_several_columns() {
    let text = csv_flow(
        "",
        "",
        "description = { path = [\"note\", \"alt\"] }\nname = { path = [\"alt\", \"sku\"] }",
    )
    .replace(
        "{ name = \"note\", optional = true }]",
        "{ name = \"note\", optional = true }, { name = \"alt\", optional = true }, \
         { name = \"count\", type = \"integer\", optional = true }]",
    );
    let flow = import(&parse(&text), "c");
    let description = field(&flow, "description");
    assert_eq!(first_of_texts(description), ["note", "alt"]);
    // Both columns may be empty, so the field may be too; `sku` always has a value.
    assert!(description.optional);
    assert!(!field(&flow, "name").optional);

    refused(
        &text.replace("[\"alt\", \"sku\"]", "[\"alt\", \"Sku\"]"),
        "flows.c.mapping.fields.name.path[1]",
        "not a declared column",
    );
    refused(
        &text.replace("[\"alt\", \"sku\"]", "[\"sku\", \"count\"]"),
        "flows.c.mapping.fields.name.path",
        "different types",
    );
    let typed = import(
        &parse(&text.replace(
            "[\"alt\", \"sku\"]",
            "[\"qty\", \"count\"], type = \"float\"",
        )),
        "c",
    );
    assert_eq!(field(&typed, "name").ty, ValueType::Float);
}

#[test]
fn set_stock_paths_may_be_the_paths_tried_in_order() {
    let flow = import(
        &parse(&set_stock(
            "product = { path = [\"Sku\", \"Ean\"], by = \"default_code\" }\n\
             quantity = { path = [\"OnHand\", \"Qty\"] }\n\
             location = { path = [\"Bin\", \"Loc\"], by = \"barcode\" }\n\
             lot = { path = [\"Lot\", \"Batch\"], optional = true }",
        )),
        "s",
    );
    let set = set_stock_of(&flow);
    assert_eq!(first_of_texts(&set.product), ["Sku", "Ean"]);
    assert_eq!(first_of_texts(&set.quantity), ["OnHand", "Qty"]);
    assert_eq!(first_of_texts(&set.location), ["Bin", "Loc"]);
    assert_eq!(set.location.lookup, lookup("stock.location", "barcode"));
    let lot = set.lot.as_ref().unwrap();
    assert_eq!(first_of_texts(lot), ["Lot", "Batch"]);
    assert!(lot.optional);

    refused(
        &set_stock(&STOCK.replace("\"Sku\"", "{ path = [] }")),
        "flows.s.mapping.product.path",
        "empty array",
    );
    refused(
        &set_stock(&STOCK.replace("\"OnHand\"", "{ path = [\"OnHand\", \"../Qty\"] }")),
        "flows.s.mapping.quantity.path[1]",
        "`..`",
    );
}

/// A confirm_delivery flow `d` on the local partner with the contract's mapping, `extra` keys
/// appended to it.
fn confirm_delivery(extra: &str) -> String {
    format!(
        r#"{ODOO}{DEMO}
[flows.d]
partner = "demo"
direction = "import"
inbox = "/out/shipped"
schema = "xsd/delivery-confirmation.xsd"
[flows.d.mapping]
record = "/dc:Confirmations/dc:Shipment"
namespaces = {{ dc = "urn:edi-bridge:delivery-confirmation:1" }}
action = "confirm_delivery"
picking = {{ path = "dc:Order", by = "name" }}
lines = "dc:Line"
product = {{ path = "dc:Sku", by = "default_code" }}
quantity = "dc:Shipped"
{extra}
"#
    )
}

fn confirm_of(flow: &ImportFlow) -> &ConfirmDeliveryMapping {
    match &flow.mapping.action {
        Action::ConfirmDelivery(c) => c,
        _ => panic!("not a confirm_delivery"),
    }
}

#[test]
fn confirm_delivery_mapping_as_in_the_contract() {
    let flow = import(
        &parse(&confirm_delivery(
            "lot = { path = \"dc:Lot\", optional = true }\n\
             tracking = { path = \"dc:Tracking\", optional = true }\n\
             backorder = \"none\"\nallow_over_delivery = true",
        )),
        "d",
    );
    assert_eq!(flow.mapping.model, "stock.picking");
    let c = confirm_of(&flow);
    assert_eq!(c.picking.field, "name");
    assert_eq!(c.lines.text, "dc:Line");
    assert_eq!(
        c.product.lookup,
        Some(Lookup {
            model: "product.product".into(),
            field: "default_code".into()
        })
    );
    assert_eq!(c.quantity.ty, ValueType::Float);
    assert!(c.lot.as_ref().is_some_and(|l| l.optional));
    assert_eq!(
        c.tracking.as_ref().map(|t| t.field.as_str()),
        Some("carrier_tracking_ref")
    );
    assert_eq!(c.backorder, Backorder::None);
    assert!(c.allow_over_delivery);

    // Defaults: backorders are created, over-delivery is refused, no lot, no tracking.
    let plain = import(&parse(&confirm_delivery("")), "d");
    let c = confirm_of(&plain);
    assert_eq!(c.backorder, Backorder::Create);
    assert!(!c.allow_over_delivery);
    assert!(c.lot.is_none() && c.tracking.is_none());

    let by_origin = import(
        &parse(
            &confirm_delivery("")
                .replace("by = \"name\"", "by = \"origin\"")
                .replace("by = \"default_code\"", "by = \"barcode\""),
        ),
        "d",
    );
    assert_eq!(confirm_of(&by_origin).picking.field, "origin");
    assert_eq!(
        confirm_of(&by_origin)
            .product
            .lookup
            .as_ref()
            .unwrap()
            .field,
        "barcode"
    );
}

#[test]
fn confirm_delivery_mapping_rules() {
    refused(
        &confirm_delivery("").replace("by = \"name\"", "by = \"ref\""),
        "flows.d.mapping.picking.by",
        "\"origin\"",
    );
    refused(
        &confirm_delivery("").replace("lines = \"dc:Line\"\n", ""),
        "flows.d.mapping.lines",
        "missing",
    );
    refused(
        &confirm_delivery("").replace("lines = \"dc:Line\"", "lines = \"dc:Line/@n\""),
        "flows.d.mapping.lines",
        "not an element path",
    );
    refused(
        &confirm_delivery("").replace("picking = { path = \"dc:Order\", by = \"name\" }\n", ""),
        "flows.d.mapping.picking",
        "missing",
    );
    refused(
        &confirm_delivery("backorder = \"later\""),
        "flows.d.mapping.backorder",
        "\"create\"",
    );
    refused(
        &confirm_delivery("model = \"stock.move\""),
        "flows.d.mapping.model",
        "stock.picking",
    );
    refused(
        &confirm_delivery("key = [\"name\"]"),
        "flows.d.mapping.key",
        "not a confirm_delivery setting",
    );
    refused(
        &confirm_delivery("allow_over_delivery = \"yes\""),
        "flows.d.mapping.allow_over_delivery",
        "expected true or false",
    );
    refused(
        &csv_flow("", "", "").replace("action = \"upsert\"", "action = \"confirm_delivery\""),
        "flows.c.mapping.action",
        "XML",
    );
    refused(
        &upsert("", "lines = \"dc:Line\"", ""),
        "flows.p.mapping.lines",
        "set_stock setting",
    );
}

#[test]
fn daemon_keys_server_allow_stop_timeout_and_local_root() {
    let c = parse(&format!(
        "{ODOO}[server]\nallow = [\"10.0.0.0/8\", \"127.0.0.1\"]\nstop_timeout = \"5s\"\n{ACME}local_root = \"/srv/sftp/acme\"\n{DEMO}"
    ));
    assert_eq!(c.server.allow.len(), 2);
    assert_eq!(c.server.stop_timeout, std::time::Duration::from_secs(5));
    assert_eq!(
        c.partners["acme"].local_root.as_deref(),
        Some(Path::new("/srv/sftp/acme"))
    );
    assert!(
        c.partners["demo"]
            .local_root
            .as_deref()
            .unwrap()
            .ends_with("demo")
    );
    refused(
        &format!("{ODOO}[server]\nallow = [\"10.0.0.0/40\"]\n"),
        "server.allow[0]",
        "10.0.0.0/8",
    );
    refused(
        &format!("{ODOO}\n[partners.demo]\nroot = \"demo\"\nlocal_root = \"/\"\n"),
        "partners.demo.local_root",
        "SFTP setting",
    );
}
