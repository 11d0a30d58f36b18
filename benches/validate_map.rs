//! How fast a large products file goes through validation and mapping, and how much memory
//! each step needs.
//!
//! `cargo bench --bench validate_map` writes a canonical products file (namespace
//! `urn:edi-bridge:products:1`, valid against `xsd/products.xsd`) of `EDI_BENCH_MB` megabytes
//! (default 1024) under `target/bench-data/`, reusing it when it is already there, then times
//! `schema::validate_file` and `mapping::map_file` (with a sink that only counts) one after the
//! other. For each step it prints seconds, MB/s and the peak resident memory of that step
//! (VmHWM, reset between steps through /proc/self/clear_refs). `EDI_BENCH_VALIDATE=0` times
//! the mapping alone.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use edi_bridge::config::{
    Action, FieldMapping, Format, Lookup, Mapping, UpsertMapping, ValueSource, ValueType,
};
use edi_bridge::import::mapping::map_file;
use edi_bridge::import::path::{FieldPath, QName, RecordPath, Step};
use edi_bridge::schema::validate_file;

const NS: &str = "urn:edi-bridge:products:1";

fn main() {
    let mb: u64 = std::env::var("EDI_BENCH_MB")
        .ok()
        .map(|v| v.parse().expect("EDI_BENCH_MB is a number of megabytes"))
        .unwrap_or(1024);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench-data");
    fs::create_dir_all(&dir).expect("create target/bench-data");
    let file = dir.join(format!("products-{mb}MB.xml"));

    if file.exists() {
        println!("reusing {}", file.display());
    } else {
        let started = Instant::now();
        let products = write_products(&file, mb * 1024 * 1024);
        println!(
            "wrote {} ({products} products) in {:.1} s",
            file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let size = fs::metadata(&file).expect("bench file").len();
    let size_mb = size as f64 / (1024.0 * 1024.0);
    println!("file: {size_mb:.0} MB");
    println!(
        "{:<10} {:>9} {:>9} {:>14}",
        "step", "seconds", "MB/s", "peak RSS (MB)"
    );

    let mut total = 0.0;

    let schema = root.join("xsd/products.xsd");
    reset_peak_rss();
    let started = Instant::now();
    let validated = if std::env::var("EDI_BENCH_VALIDATE").as_deref() == Ok("0") {
        None
    } else {
        Some(std::panic::catch_unwind(|| validate_file(&schema, &file)))
    };
    let secs = started.elapsed().as_secs_f64();
    match validated {
        None => println!("validate   skipped (EDI_BENCH_VALIDATE=0)"),
        Some(Ok(Ok(problems))) => {
            assert!(
                problems.is_empty(),
                "generated file invalid: {:?}",
                &problems[..1]
            );
            total += secs;
            report("validate", secs, size_mb);
        }
        Some(Ok(Err(e))) => println!("validate   skipped: {e}"),
        Some(Err(_)) => {
            println!("validate   skipped: schema::validate_file is not implemented yet")
        }
    }

    reset_peak_rss();
    let started = Instant::now();
    let mut operations = 0u64;
    let outcome = map_file(
        &xml_format(&schema),
        &products_mapping(),
        &file,
        &mut |op| {
            std::hint::black_box(&op);
            operations += 1;
        },
    )
    .expect("mapping the bench file");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(outcome.problem_count, 0, "{:?}", outcome.problems.first());
    assert_eq!(operations, outcome.records);
    total += secs;
    report("map", secs, size_mb);
    println!("{:<10} {total:>9.2} {:>9.1}", "total", size_mb / total);
    println!("records: {}", outcome.records);
}

fn report(step: &str, secs: f64, size_mb: f64) {
    println!(
        "{step:<10} {secs:>9.2} {:>9.1} {:>14.1}",
        size_mb / secs,
        peak_rss_kb() as f64 / 1024.0
    );
}

/// Writes products until the file reaches `bytes`; returns how many.
fn write_products(file: &Path, bytes: u64) -> u64 {
    let partial = file.with_extension("part");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&partial).expect("create"));
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Products xmlns=\"{NS}\" version=\"1\">\n"
    );
    let tail = "</Products>\n";
    out.write_all(head.as_bytes()).expect("write");
    let mut written = head.len() as u64;
    let mut n = 0u64;
    let mut product = String::with_capacity(256);
    while written + tail.len() as u64 <= bytes {
        n += 1;
        product.clear();
        use std::fmt::Write as _;
        write!(
            product,
            "  <Product sku=\"SKU-{n:010}\">\n    <Name>Product {n}, steel &amp; oak, size {}</Name>\n    \
             <Ean>{:013}</Ean>\n    <Price>{}.{:02}</Price>\n    <Unit>Units</Unit>\n  </Product>\n",
            n % 7 + 1,
            5_400_000_000_000u64 + n,
            n % 1000,
            n % 100,
        )
        .expect("format");
        out.write_all(product.as_bytes()).expect("write");
        written += product.len() as u64;
    }
    out.write_all(tail.as_bytes()).expect("write");
    out.flush().expect("flush");
    drop(out);
    fs::rename(&partial, file).expect("rename");
    n
}

fn xml_format(schema: &Path) -> Format {
    Format::Xml {
        schema: schema.to_owned(),
    }
}

fn qname(local: &str) -> QName {
    QName {
        ns: Some(NS.to_owned()),
        local: local.to_owned(),
    }
}

fn child(local: &str) -> FieldPath {
    FieldPath {
        steps: vec![Step {
            name: qname(local),
            predicate: None,
        }],
        attr: None,
        text: format!("p:{local}"),
    }
}

fn field(name: &str, path: FieldPath, ty: ValueType) -> FieldMapping {
    FieldMapping {
        field: name.to_owned(),
        source: ValueSource::Path(path),
        ty,
        optional: false,
        lookup: None,
    }
}

/// The mapping of PRODUCT.md's example flow.
fn products_mapping() -> Mapping {
    let sku = FieldPath {
        steps: vec![],
        attr: Some(QName {
            ns: None,
            local: "sku".into(),
        }),
        text: "@sku".into(),
    };
    let mut barcode = field("barcode", child("Ean"), ValueType::String);
    barcode.optional = true;
    let mut uom = field("uom_id", child("Unit"), ValueType::String);
    uom.lookup = Some(Lookup {
        model: "uom.uom".into(),
        field: "name".into(),
    });
    Mapping {
        record: Some(RecordPath {
            steps: vec![
                Step {
                    name: qname("Products"),
                    predicate: None,
                },
                Step {
                    name: qname("Product"),
                    predicate: None,
                },
            ],
            text: "/p:Products/p:Product".into(),
        }),
        namespaces: BTreeMap::from([("p".to_owned(), NS.to_owned())]),
        model: "product.product".into(),
        action: Action::Upsert(UpsertMapping {
            key: vec!["default_code".into()],
            fields: vec![
                field("default_code", sku, ValueType::String),
                field("name", child("Name"), ValueType::String),
                barcode,
                field("list_price", child("Price"), ValueType::Float),
                uom,
            ],
        }),
    }
}

/// Resets the kernel's peak-RSS mark so the next step's VmHWM is its own.
fn reset_peak_rss() {
    // "5" resets the peak resident set size (Linux ≥ 4.0). Without it the peak is cumulative.
    let _ = fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kb() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
