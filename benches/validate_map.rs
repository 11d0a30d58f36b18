//! How fast a large products file goes through validation and mapping, and how much memory
//! each step needs.
//!
//! `cargo bench --bench validate_map` writes a canonical products file (namespace
//! `urn:edi-bridge:products:1`, valid against `xsd/products.xsd`) of `EDI_BENCH_MB` megabytes
//! (default 1024) under `target/bench-data/`, reusing it when it is already there, then times
//! `schema::validate_file` and `mapping::map_file` (with a sink that only counts) one after the
//! other, each in a process of its own so that its peak resident memory (VmHWM) is its own.
//! For each step it prints seconds, MB/s and that peak. `EDI_BENCH_VALIDATE=0` times the
//! mapping alone.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use edi_bridge::mapping::config::{
    Action, FieldMapping, Format, Lookup, Mapping, UpsertMapping, ValueSource, ValueType,
};
use edi_bridge::mapping::map_file;
use edi_bridge::mapping::path::{FieldPath, QName, RecordPath, Step};
use edi_bridge::schema::validate_file;

#[path = "common/bench_data.rs"]
mod bench_data;

const NS: &str = bench_data::NS;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, step, file] = args.as_slice()
        && flag == "--step"
    {
        run_step(step, Path::new(file));
        return;
    }

    let file = bench_data::products_file();
    let size_mb = fs::metadata(&file).expect("bench file").len() as f64 / (1024.0 * 1024.0);
    println!("file: {size_mb:.0} MB");
    println!(
        "{:<10} {:>9} {:>9} {:>14}",
        "step", "seconds", "MB/s", "peak RSS (MB)"
    );

    let mut steps = vec!["validate", "map"];
    if std::env::var("EDI_BENCH_VALIDATE").as_deref() == Ok("0") {
        steps.remove(0);
    }
    let mut total = 0.0;
    for step in steps {
        // Each step runs in a process of its own, so the peak memory it reports is its own.
        let out = Command::new(std::env::current_exe().expect("own path"))
            .args(["--step", step])
            .arg(&file)
            .output()
            .expect("run a step");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let result = stdout.lines().find_map(|l| l.strip_prefix("step-result "));
        let Some((secs, rss_kb, note)) = result.and_then(parse_result) else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = if stderr.contains("not yet implemented") {
                "not implemented yet"
            } else {
                stderr
                    .lines()
                    .find(|l| l.contains("panicked"))
                    .unwrap_or("failed")
            };
            println!("{step:<10} skipped: {why}");
            continue;
        };
        total += secs;
        println!(
            "{step:<10} {secs:>9.2} {:>9.1} {:>14.1}  {note}",
            size_mb / secs,
            rss_kb as f64 / 1024.0
        );
    }
    if total > 0.0 {
        println!("{:<10} {total:>9.2} {:>9.1}", "total", size_mb / total);
    }
}

fn parse_result(line: &str) -> Option<(f64, u64, &str)> {
    let mut parts = line.splitn(3, ' ');
    let secs = parts.next()?.parse().ok()?;
    let rss_kb = parts.next()?.parse().ok()?;
    Some((secs, rss_kb, parts.next().unwrap_or("")))
}

/// Runs one step on `file` and prints `step-result <seconds> <peak RSS kB> <note>`.
fn run_step(step: &str, file: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("xsd/products.xsd");
    let started = Instant::now();
    let note = match step {
        "validate" => {
            let problems = validate_file(&schema, file).expect("products.xsd compiles");
            assert!(
                problems.is_empty(),
                "bench file invalid: {:?}",
                &problems[..1]
            );
            "valid".to_owned()
        }
        "map" => {
            let mut operations = 0u64;
            let outcome = map_file(
                &Format::Xml { schema },
                &products_mapping(),
                file,
                &mut |op| {
                    std::hint::black_box(&op);
                    operations += 1;
                },
            )
            .expect("mapping the bench file");
            assert_eq!(outcome.problem_count, 0, "{:?}", outcome.problems.first());
            assert_eq!(operations, outcome.records);
            format!("{operations} operations")
        }
        other => panic!("unknown step {other}"),
    };
    let secs = started.elapsed().as_secs_f64();
    println!("step-result {secs} {} {note}", peak_rss_kb());
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

fn peak_rss_kb() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
