//! The transports against real peers: the SFTP transport against a real OpenSSH sshd on
//! loopback, the local-folder transport against a temporary folder. The file operations are
//! checked once, generically, and run against both.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use edi_bridge::config::{HostKeyPolicy, SftpAuth, SftpPartner};
use edi_bridge::error::Consequence;
use edi_bridge::transport::local::LocalTransport;
use edi_bridge::transport::sftp::SftpTransport;
use edi_bridge::transport::{Transport, TransportError};
use support::sshd::{KEY_PASSPHRASE, TestSshd};

/// Where a transport's files are: `remote` as the transport names it, `local` on this disk.
struct Place {
    remote: String,
    local: PathBuf,
}

impl Place {
    fn remote(&self, rel: &str) -> String {
        format!("{}/{rel}", self.remote.trim_end_matches('/'))
    }
    fn local(&self, rel: &str) -> PathBuf {
        self.local.join(rel)
    }
}

/// The SFTP server serves its data folder at the same absolute path.
fn sftp_place(sshd: &TestSshd) -> Place {
    let local = sshd.data_dir();
    Place {
        remote: local.display().to_string(),
        local,
    }
}

/// A local partner rooted at a temporary folder; paths start with `/` (the root).
fn local_place(root: &Path) -> Place {
    Place {
        remote: "/".to_string(),
        local: root.to_path_buf(),
    }
}

async fn sftp(sshd: &TestSshd) -> SftpTransport {
    connect(&sshd.partner()).await
}

async fn connect(partner: &SftpPartner) -> SftpTransport {
    SftpTransport::connect(partner)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Deterministic, incompressible-looking bytes.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// sha256 as the system's `sha256sum` computes it: an independent witness.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn mtime(path: &Path) -> i64 {
    fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------
// The file operations, once for both transports.

/// "List the inbox (one listing per poll, attributes included)": hundreds of files, names
/// with spaces and accents, a subfolder, no `.`/`..`.
async fn lists_with_attributes(t: &mut impl Transport, place: &Place) {
    let inbox = place.local("inbox");
    fs::create_dir_all(inbox.join("archive")).unwrap();
    let mut expected = Vec::new();
    for i in 0..600 {
        let name = match i % 3 {
            0 => format!("ORDER {i:04}.xml"),
            1 => format!("façade été {i:04}.xml"),
            _ => format!("stock_{i:04}.csv"),
        };
        fs::write(inbox.join(&name), content(i % 50, i as u64)).unwrap();
        expected.push((name, (i % 50) as u64));
    }
    let started = Instant::now();
    let mut entries = t.list(&place.remote("inbox")).await.unwrap();
    eprintln!(
        "listed {} entries in {:?}",
        entries.len(),
        started.elapsed()
    );
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(entries.len(), 601, "600 files and one folder, no . or ..");
    let folder = entries.iter().find(|e| e.name == "archive").unwrap();
    assert!(!folder.is_file);
    for (name, size) in &expected {
        let e = entries
            .iter()
            .find(|e| &e.name == name)
            .unwrap_or_else(|| panic!("{name} missing from the listing"));
        assert!(e.is_file, "{name}");
        assert_eq!(e.size, *size, "{name}");
        assert_eq!(e.mtime, mtime(&inbox.join(name)), "{name}");
    }
    assert!(
        matches!(
            t.list(&place.remote("no-such-folder")).await,
            Err(TransportError::NotFound { .. })
        ),
        "a missing folder is NotFound"
    );
}

/// "Download to a local spool with a size cap, streaming, computing sha256."
async fn fetches_with_sha256_and_a_size_cap(t: &mut impl Transport, place: &Place) {
    let spool = tempfile::tempdir().unwrap();
    fs::create_dir_all(place.local("in")).unwrap();
    // Larger than 64 requests of 256 KiB, so the pipeline refills; and odd-sized.
    for (name, len) in [
        ("big.xml", 20 * 1024 * 1024 + 12345),
        ("small.xml", 700),
        ("empty.xml", 0),
    ] {
        fs::write(place.local(&format!("in/{name}")), content(len, len as u64)).unwrap();
        let dest = spool.path().join(name);
        let fetched = t
            .fetch(&place.remote(&format!("in/{name}")), &dest, 1 << 30)
            .await
            .unwrap();
        assert_eq!(fetched.size, len as u64, "{name}");
        assert_eq!(
            fetched.sha256,
            sha256sum(&place.local(&format!("in/{name}"))),
            "{name}"
        );
        assert_eq!(
            sha256sum(&dest),
            fetched.sha256,
            "{name}: the spool copy is identical"
        );
    }
    // Exactly at the cap is fine; one byte over is refused and leaves no partial file.
    let exact = t
        .fetch(
            &place.remote("in/small.xml"),
            &spool.path().join("exact"),
            700,
        )
        .await
        .unwrap();
    assert_eq!(exact.size, 700);
    let dest = spool.path().join("capped");
    let err = t
        .fetch(&place.remote("in/big.xml"), &dest, 1024 * 1024)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::TooLarge { limit: 1048576, .. }),
        "{err}"
    );
    assert_eq!(err.consequence(), Consequence::Reject);
    assert!(!dest.exists(), "the partial download is removed");
    let err = t
        .fetch(
            &place.remote("in/none.xml"),
            &spool.path().join("none"),
            100,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::NotFound { .. }), "{err}");
}

/// The cheap look at a file's end for "is the root element closed".
async fn reads_the_tail(t: &mut impl Transport, place: &Place) {
    fs::create_dir_all(place.local("tail")).unwrap();
    let body = b"<Products><Product sku=\"A\"/></Products>\n";
    fs::write(place.local("tail/a.xml"), body).unwrap();
    let tail = t.read_tail(&place.remote("tail/a.xml"), 12).await.unwrap();
    assert_eq!(tail, b"</Products>\n");
    let all = t
        .read_tail(&place.remote("tail/a.xml"), 4096)
        .await
        .unwrap();
    assert_eq!(all, body);
    fs::write(place.local("tail/empty.xml"), b"").unwrap();
    assert!(
        t.read_tail(&place.remote("tail/empty.xml"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// "A name collision never overwrites."
async fn renames_without_overwriting(t: &mut impl Transport, place: &Place) {
    fs::create_dir_all(place.local("mv/archive")).unwrap();
    fs::write(place.local("mv/a.xml"), "first").unwrap();
    t.rename_noclobber(&place.remote("mv/a.xml"), &place.remote("mv/archive/a.xml"))
        .await
        .unwrap();
    assert!(!place.local("mv/a.xml").exists(), "the source name is gone");
    assert_eq!(
        fs::read_to_string(place.local("mv/archive/a.xml")).unwrap(),
        "first"
    );

    fs::write(place.local("mv/a.xml"), "second").unwrap();
    let err = t
        .rename_noclobber(&place.remote("mv/a.xml"), &place.remote("mv/archive/a.xml"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::AlreadyExists { .. }), "{err}");
    assert_eq!(
        fs::read_to_string(place.local("mv/archive/a.xml")).unwrap(),
        "first"
    );
    assert_eq!(
        fs::read_to_string(place.local("mv/a.xml")).unwrap(),
        "second"
    );

    // Folders cannot be hard-linked: the fallback moves them, and refuses to overwrite too.
    fs::create_dir_all(place.local("mv/folder/inner")).unwrap();
    fs::create_dir_all(place.local("mv/folder2")).unwrap();
    t.rename_noclobber(&place.remote("mv/folder"), &place.remote("mv/moved"))
        .await
        .unwrap();
    assert!(place.local("mv/moved/inner").is_dir() && !place.local("mv/folder").exists());
    let err = t
        .rename_noclobber(&place.remote("mv/folder2"), &place.remote("mv/moved"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::AlreadyExists { .. }), "{err}");
    assert!(place.local("mv/folder2").is_dir() && place.local("mv/moved/inner").is_dir());

    let err = t
        .rename_noclobber(
            &place.remote("mv/gone.xml"),
            &place.remote("mv/archive/gone.xml"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::NotFound { .. }), "{err}");
}

async fn creates_nested_folders(t: &mut impl Transport, place: &Place) {
    let dir = place.remote("archive/2026/11/27");
    t.mkdir_all(&dir).await.unwrap();
    assert!(place.local("archive/2026/11/27").is_dir());
    t.mkdir_all(&dir).await.unwrap();
    t.mkdir_all(&format!("{dir}/")).await.unwrap();
    fs::write(place.local("archive/file"), "x").unwrap();
    assert!(
        t.mkdir_all(&place.remote("archive/file/sub"))
            .await
            .is_err()
    );
}

/// "Outgoing files appear atomically, never half-written."
async fn puts_atomically(t: &mut impl Transport, place: &Place) {
    fs::create_dir_all(place.local("outbox")).unwrap();
    let data = content(3 * 1024 * 1024 + 7, 42);
    t.put(&place.remote("outbox/WH-OUT-0001.xml"), &data)
        .await
        .unwrap();
    assert_eq!(
        fs::read(place.local("outbox/WH-OUT-0001.xml")).unwrap(),
        data
    );
    // A retry overwrites its own file.
    t.put(&place.remote("outbox/WH-OUT-0001.xml"), b"<again/>")
        .await
        .unwrap();
    assert_eq!(
        fs::read(place.local("outbox/WH-OUT-0001.xml")).unwrap(),
        b"<again/>"
    );
    let names: Vec<String> = fs::read_dir(place.local("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["WH-OUT-0001.xml"], "no .part file left behind");
    let err = t
        .put(&place.remote("missing/x.xml"), b"x")
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::NotFound { .. }), "{err}");
}

async fn stats_and_removes(t: &mut impl Transport, place: &Place) {
    fs::create_dir_all(place.local("rm")).unwrap();
    fs::write(place.local("rm/a.xml"), "12345").unwrap();
    let e = t.stat(&place.remote("rm/a.xml")).await.unwrap().unwrap();
    assert_eq!((e.name.as_str(), e.size, e.is_file), ("a.xml", 5, true));
    assert_eq!(e.mtime, mtime(&place.local("rm/a.xml")));
    assert!(!t.stat(&place.remote("rm")).await.unwrap().unwrap().is_file);
    t.remove(&place.remote("rm/a.xml")).await.unwrap();
    assert!(!place.local("rm/a.xml").exists());
    assert_eq!(t.stat(&place.remote("rm/a.xml")).await.unwrap(), None);
    t.remove(&place.remote("rm/a.xml")).await.unwrap();
}

async fn all_file_operations(t: &mut impl Transport, place: &Place) {
    lists_with_attributes(t, place).await;
    fetches_with_sha256_and_a_size_cap(t, place).await;
    reads_the_tail(t, place).await;
    renames_without_overwriting(t, place).await;
    creates_nested_folders(t, place).await;
    puts_atomically(t, place).await;
    stats_and_removes(t, place).await;
    t.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// SFTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_file_operations() {
    let sshd = TestSshd::start();
    let mut t = sftp(&sshd).await;
    all_file_operations(&mut t, &sftp_place(&sshd)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_file_operations() {
    let root = tempfile::tempdir().unwrap();
    let mut t = LocalTransport::new(root.path().to_path_buf());
    all_file_operations(&mut t, &local_place(root.path())).await;
}

#[tokio::test]
async fn local_paths_cannot_leave_the_root() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("in")).unwrap();
    let mut t = LocalTransport::new(root.path().join("in"));
    fs::write(root.path().join("secret"), "x").unwrap();
    for path in ["../secret", "/in/../../secret", ".."] {
        assert!(
            matches!(
                t.read_tail(path, 10).await,
                Err(TransportError::PermissionDenied { .. })
            ),
            "{path} must be refused"
        );
    }
    assert!(t.remove("../secret").await.is_err());
    assert!(root.path().join("secret").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_wrong_pinned_key_is_refused_before_anything_happens() {
    let sshd = TestSshd::start();
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut partner = sshd.partner();
    partner.host_key = HostKeyPolicy::Fingerprint(wrong.to_string());
    let before = fs::read_dir(sshd.data_dir()).unwrap().count();
    let err = SftpTransport::connect(&partner)
        .await
        .err()
        .expect("refused");
    eprintln!("{err}");
    let TransportError::HostKey { detail, .. } = &err else {
        panic!("expected a host key error, got {err}");
    };
    assert!(detail.contains(sshd.host_key_fingerprint()), "{detail}");
    assert!(detail.contains("ssh-ed25519"), "{detail}");
    assert!(
        detail.contains("host_key"),
        "says what to configure: {detail}"
    );
    assert!(
        detail.contains(sshd.rsa_host_key_fingerprint()),
        "names the server's other keys too: {detail}"
    );
    assert_eq!(err.consequence(), Consequence::Stop);
    // No login was attempted, nothing was written.
    let log = sshd.log();
    assert!(
        !log.contains("Accepted") && !log.contains("Failed"),
        "{log}"
    );
    assert_eq!(fs::read_dir(sshd.data_dir()).unwrap().count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_pinned_rsa_host_key_is_found() {
    // The server prefers to show its ed25519 key; a pin of its RSA key must still work.
    let sshd = TestSshd::start();
    let mut partner = sshd.partner();
    partner.host_key = HostKeyPolicy::Fingerprint(sshd.rsa_host_key_fingerprint().to_string());
    let mut t = connect(&partner).await;
    t.list(&sshd.data_dir().display().to_string())
        .await
        .unwrap();
    t.close().await.unwrap();
}

fn known_hosts_partner(sshd: &TestSshd, path: &Path, accept_new: bool) -> SftpPartner {
    SftpPartner {
        host_key: HostKeyPolicy::KnownHosts {
            path: path.to_path_buf(),
            accept_new,
        },
        ..sshd.partner()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_known_hosts_accepts_the_recorded_key() {
    let sshd = TestSshd::start();
    let mut t = connect(&known_hosts_partner(&sshd, &sshd.known_hosts(), false)).await;
    t.close().await.unwrap();
    // A file holding only the RSA key: the server is asked for that kind of key.
    let dir = tempfile::tempdir().unwrap();
    let rsa_only = dir.path().join("known_hosts");
    fs::write(&rsa_only, format!("{}\n", sshd.host_key_line("rsa"))).unwrap();
    let mut t = connect(&known_hosts_partner(&sshd, &rsa_only, false)).await;
    t.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_changed_host_key_is_refused_even_with_accept_new() {
    let sshd = TestSshd::start();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let blob = fs::read_to_string(other.with_extension("pub")).unwrap();
    let blob: Vec<&str> = blob.split_whitespace().take(2).collect();
    let known_hosts = dir.path().join("known_hosts");
    let text = format!("[127.0.0.1]:{} {}\n", sshd.port(), blob.join(" "));
    fs::write(&known_hosts, &text).unwrap();
    for accept_new in [false, true] {
        let err = SftpTransport::connect(&known_hosts_partner(&sshd, &known_hosts, accept_new))
            .await
            .err()
            .expect("a changed key is refused");
        let TransportError::HostKey { detail, .. } = &err else {
            panic!("expected a host key error, got {err}");
        };
        assert!(detail.contains(sshd.host_key_fingerprint()), "{detail}");
        assert!(detail.contains("line 1"), "{detail}");
        assert_eq!(err.consequence(), Consequence::Stop);
        assert_eq!(
            fs::read_to_string(&known_hosts).unwrap(),
            text,
            "file untouched"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_unknown_host_is_refused_or_recorded_with_accept_new() {
    let sshd = TestSshd::start();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("keys/known_hosts");
    let err = SftpTransport::connect(&known_hosts_partner(&sshd, &known_hosts, false))
        .await
        .err()
        .expect("an unknown host is refused");
    eprintln!("{err}");
    let TransportError::HostKey { detail, .. } = &err else {
        panic!("expected a host key error, got {err}");
    };
    assert!(detail.contains(sshd.host_key_fingerprint()), "{detail}");
    assert!(detail.contains("accept_new"), "{detail}");
    assert!(!known_hosts.exists(), "nothing recorded without accept_new");

    let mut t = connect(&known_hosts_partner(&sshd, &known_hosts, true)).await;
    t.close().await.unwrap();
    let recorded = fs::read_to_string(&known_hosts).unwrap();
    assert!(
        recorded.contains(&sshd.host_key_line("ed25519")),
        "{recorded}"
    );
    // From now on the host is known, also without accept_new.
    let mut t = connect(&known_hosts_partner(&sshd, &known_hosts, false)).await;
    t.close().await.unwrap();
    assert_eq!(
        fs::read_to_string(&known_hosts).unwrap(),
        recorded,
        "recorded once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_logs_in_with_rsa_and_passphrase_keys() {
    let sshd = TestSshd::start();
    let mut partner = sshd.partner();
    partner.auth = SftpAuth::Key {
        path: sshd.client_rsa_key(),
        passphrase: None,
    };
    let mut t = connect(&partner).await;
    t.list(&sshd.data_dir().display().to_string())
        .await
        .unwrap();
    t.close().await.unwrap();
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("RSA"),
        "{log}"
    );

    partner.auth = SftpAuth::Key {
        path: sshd.client_key_with_passphrase(),
        passphrase: Some(KEY_PASSPHRASE.to_string()),
    };
    connect(&partner).await.close().await.unwrap();

    partner.auth = SftpAuth::Key {
        path: sshd.client_key_with_passphrase(),
        passphrase: None,
    };
    let err = SftpTransport::connect(&partner)
        .await
        .err()
        .expect("no passphrase");
    assert!(
        matches!(&err, TransportError::Auth { detail, .. } if detail.contains("key_passphrase")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_refused_login_stops_the_partner() {
    let sshd = TestSshd::start();
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(status.success());
    let mut partner = sshd.partner();
    partner.auth = SftpAuth::Key {
        path: stranger,
        passphrase: None,
    };
    let err = SftpTransport::connect(&partner)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, TransportError::Auth { .. }), "{err}");
    assert_eq!(err.consequence(), Consequence::Stop);

    partner.auth = SftpAuth::Key {
        path: dir.path().join("no-such-key"),
        passphrase: None,
    };
    let err = SftpTransport::connect(&partner)
        .await
        .err()
        .expect("no key file");
    assert!(
        matches!(&err, TransportError::Auth { detail, .. } if detail.contains("no-such-key")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_password_login() {
    let sshd = TestSshd::start();
    let partner = sshd.password_partner();
    let home = format!("/home/{}", partner.user);
    let mut t = connect(&partner).await;
    t.put(&format!("{home}/hello.txt"), b"hi").await.unwrap();
    let names: Vec<String> = t
        .list(&home)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"hello.txt".to_string()), "{names:?}");
    t.remove(&format!("{home}/hello.txt")).await.unwrap();
    t.close().await.unwrap();

    let wrong = SftpPartner {
        auth: SftpAuth::Password("not the password".to_string()),
        ..partner
    };
    let err = SftpTransport::connect(&wrong).await.err().expect("refused");
    assert!(matches!(err, TransportError::Auth { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_connect_times_out_on_a_silent_server() {
    // Accepts connections (the kernel does) but never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let partner = SftpPartner {
        host: "127.0.0.1".to_string(),
        port: silent.local_addr().unwrap().port(),
        user: "nobody".to_string(),
        auth: SftpAuth::Password("x".to_string()),
        host_key: HostKeyPolicy::Fingerprint("SHA256:x".to_string()),
        connect_timeout: Duration::from_millis(800),
        op_timeout: Duration::from_secs(1),
        keepalive: Duration::from_secs(1),
    };
    let started = Instant::now();
    let err = SftpTransport::connect(&partner)
        .await
        .err()
        .expect("times out");
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert_eq!(err.consequence(), Consequence::Retry);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);

    // Nothing listening at all: an outage too.
    let err = SftpTransport::connect(&partner)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, TransportError::Connection(_)), "{err}");
    assert_eq!(err.consequence(), Consequence::Retry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_hung_server_times_out_and_a_restart_is_an_outage() {
    let mut sshd = TestSshd::start();
    let place = sftp_place(&sshd);
    fs::write(place.local("a.xml"), "x").unwrap();
    let mut partner = sshd.partner();
    partner.op_timeout = Duration::from_secs(1);
    let mut t = connect(&partner).await;
    t.stat(&place.remote("a.xml")).await.unwrap().unwrap();

    sshd.pause_sessions();
    let started = Instant::now();
    let err = t.stat(&place.remote("a.xml")).await.unwrap_err();
    sshd.resume_sessions();
    assert!(
        matches!(err, TransportError::Timeout { secs: 1, .. }),
        "{err}"
    );
    assert_eq!(err.consequence(), Consequence::Retry);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    sshd.stop();
    let err = t.list(&place.remote("")).await.unwrap_err();
    assert_eq!(err.consequence(), Consequence::Retry, "{err}");
    let err = SftpTransport::connect(&partner)
        .await
        .err()
        .expect("server down");
    assert_eq!(err.consequence(), Consequence::Retry, "{err}");

    sshd.restart();
    let mut t = connect(&partner).await;
    assert!(t.stat(&place.remote("a.xml")).await.unwrap().is_some());
    t.close().await.unwrap();
}
