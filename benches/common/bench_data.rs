//! The large canonical products file the benchmarks share: `EDI_BENCH_MB` megabytes (default
//! 1024) under `target/bench-data/`, valid against `xsd/products.xsd`, written once and reused.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const NS: &str = "urn:edi-bridge:products:1";

/// The file of `EDI_BENCH_MB` megabytes (default 1024), written first when it is not there.
pub fn products_file() -> PathBuf {
    products_file_of(megabytes("EDI_BENCH_MB", 1024))
}

/// A whole number of megabytes from environment variable `name`, or `default`.
pub fn megabytes(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} is a number of megabytes"))
        })
        .unwrap_or(default)
}

/// The products file of `mb` megabytes, written first when it is not there yet.
pub fn products_file_of(mb: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
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
    file
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
