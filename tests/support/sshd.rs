//! A real OpenSSH sshd on a free loopback port, with its own host keys and config.
//!
//! `TestSshd::start()` generates ed25519 and RSA host keys and client keys with `ssh-keygen`
//! in a temporary folder, writes an `sshd_config` there and runs `/usr/sbin/sshd -D -e` as
//! the current user (the tests run as root). Files live under [`TestSshd::data_dir`]: tests
//! use absolute paths below it as the partner's folders. [`TestSshd::stop`] and
//! [`TestSshd::restart`] simulate an outage; dropping it kills the server and every session
//! process it started.
//!
//! Password logins use a throwaway local account (see [`TestSshd::password_user`]): the first
//! time a test asks for it, the harness creates one with a unique name (`edibt<pid>-<n>`) and
//! a home folder (`useradd -m`) and sets [`PASSWORD`] (`chpasswd`); dropping the [`TestSshd`]
//! removes it with its home (`userdel -r`), also when the test panics. Accounts a killed
//! earlier run left behind (named after a process that no longer exists) are removed before
//! the first one is created. This needs root, as the tests run (e.g. in a container);
//! otherwise the test fails saying how to run it.
//!
//! A missing OpenSSH server makes the test fail with the command that installs it.

use std::fs;
use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use edi_bridge::config::{HostKeyPolicy, SftpAuth, SftpPartner};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SSHD: &str = "/usr/sbin/sshd";
const INSTALL_HINT: &str = "OpenSSH server not found: install it with \
    `sudo apt-get install openssh-server` (or run `make test`, which does)";

/// Start of the names of the local accounts password logins use: `edibt<pid>-<n>`.
pub const PASSWORD_USER_PREFIX: &str = "edibt";
/// The password of those accounts.
pub const PASSWORD: &str = "edi-bridge test password 7";
/// Passphrase of [`TestSshd::client_key_with_passphrase`].
pub const KEY_PASSPHRASE: &str = "correct horse battery";

/// One running OpenSSH server and everything it needs.
pub struct TestSshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    user: String,
    ed25519_fingerprint: String,
    rsa_fingerprint: String,
    /// Created on first use; dropped (removed) after sshd and its sessions are stopped.
    password_account: OnceLock<PasswordAccount>,
}

impl TestSshd {
    /// Generates keys and config and starts sshd; panics with an install hint if OpenSSH is
    /// missing, and with sshd's own log if it does not come up.
    pub fn start() -> TestSshd {
        if !Path::new(SSHD).exists() || which("ssh-keygen").is_none() {
            panic!("{INSTALL_HINT}");
        }
        // sshd refuses to start without its privilege separation folder.
        if !Path::new("/run/sshd").exists() {
            fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        let dir = tempfile::Builder::new()
            .prefix("edi-bridge-sshd-")
            .tempdir()
            .expect("temporary folder");
        let d = dir.path();
        keygen(&d.join("ssh_host_ed25519_key"), "ed25519", "");
        keygen(&d.join("ssh_host_rsa_key"), "rsa", "");
        keygen(&d.join("client_ed25519"), "ed25519", "");
        keygen(&d.join("client_rsa"), "rsa", "");
        keygen(
            &d.join("client_ed25519_protected"),
            "ed25519",
            KEY_PASSPHRASE,
        );
        let mut authorized = String::new();
        for key in ["client_ed25519", "client_rsa", "client_ed25519_protected"] {
            authorized += &fs::read_to_string(d.join(format!("{key}.pub"))).unwrap();
        }
        fs::write(d.join("authorized_keys"), authorized).unwrap();
        fs::create_dir(d.join("data")).unwrap();

        let mut sshd = TestSshd {
            ed25519_fingerprint: keygen_fingerprint(&d.join("ssh_host_ed25519_key.pub")),
            rsa_fingerprint: keygen_fingerprint(&d.join("ssh_host_rsa_key.pub")),
            dir,
            port: 0,
            child: None,
            user: current_user(),
            password_account: OnceLock::new(),
        };
        // Another process may take the free port before sshd binds it: try a few.
        for _ in 0..5 {
            sshd.port = free_port();
            sshd.write_config();
            if sshd.launch() {
                sshd.write_known_hosts();
                return sshd;
            }
        }
        panic!("sshd did not start; its log:\n{}", sshd.log());
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {d}/ssh_host_ed25519_key\n\
             HostKey {d}/ssh_host_rsa_key\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin yes\n\
             Subsystem sftp internal-sftp\n\
             LogLevel VERBOSE\n\
             UseDNS no\n\
             MaxStartups 100:30:200\n\
             MaxSessions 50\n",
            port = self.port
        );
        fs::write(self.dir.path().join("sshd_config"), config).unwrap();
    }

    /// Starts sshd and waits for its banner; `false` if it exited (port taken).
    fn launch(&mut self) -> bool {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{INSTALL_HINT} ({SSHD}: {e})"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("sshd exited with {status} on port {}", self.port);
                self.child = None;
                return false;
            }
            if banner_arrives(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd did not answer within 15 s; its log:\n{}", self.log());
    }

    fn write_known_hosts(&self) {
        let line = format!("{}\n", self.host_key_line("ed25519"));
        fs::write(self.known_hosts(), line).unwrap();
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user sshd runs as and the key logins use (the current user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// An absolute folder, served over SFTP at the same path, for the tests' partner folders.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SHA256 fingerprint of the ed25519 host key, as `ssh-keygen -lf` prints it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.ed25519_fingerprint
    }

    /// SHA256 fingerprint of the RSA host key.
    pub fn rsa_host_key_fingerprint(&self) -> &str {
        &self.rsa_fingerprint
    }

    /// A known_hosts file with this server's ed25519 key under `[127.0.0.1]:port`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The known_hosts line for the host key of `kind` (`ed25519` or `rsa`).
    pub fn host_key_line(&self, kind: &str) -> String {
        let public =
            fs::read_to_string(self.dir.path().join(format!("ssh_host_{kind}_key.pub"))).unwrap();
        let mut fields = public.split_whitespace();
        let (algorithm, blob) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[{}]:{} {algorithm} {blob}", self.host(), self.port)
    }

    /// The ed25519 client key (no passphrase) that may log in as [`TestSshd::user`].
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// The RSA client key that may log in as [`TestSshd::user`].
    pub fn client_rsa_key(&self) -> PathBuf {
        self.dir.path().join("client_rsa")
    }

    /// An ed25519 client key protected by [`KEY_PASSPHRASE`].
    pub fn client_key_with_passphrase(&self) -> PathBuf {
        self.dir.path().join("client_ed25519_protected")
    }

    /// A partner for this server: ed25519 key login as the current user, pinned host key,
    /// short timeouts.
    pub fn partner(&self) -> SftpPartner {
        SftpPartner {
            host: self.host().to_string(),
            port: self.port,
            user: self.user.clone(),
            auth: SftpAuth::Key {
                path: self.client_key(),
                passphrase: None,
            },
            host_key: HostKeyPolicy::Fingerprint(self.ed25519_fingerprint.clone()),
            connect_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(5),
        }
    }

    /// The local account password logins use, with [`PASSWORD`] and a home folder
    /// `/home/<name>` it owns; created on first use (which needs root: the test fails
    /// otherwise) and removed when this server is dropped.
    pub fn password_user(&self) -> &str {
        &self
            .password_account
            .get_or_init(PasswordAccount::create)
            .name
    }

    /// A partner logging in as [`TestSshd::password_user`] with [`PASSWORD`].
    pub fn password_partner(&self) -> SftpPartner {
        SftpPartner {
            user: self.password_user().to_string(),
            auth: SftpAuth::Password(PASSWORD.to_string()),
            ..self.partner()
        }
    }

    /// Kills sshd and every session process it started: an outage as partners see it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let sessions = descendants(child.id());
        let _ = child.kill();
        let _ = child.wait();
        for pid in sessions {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }

    /// Starts sshd again on the same port with the same keys.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.launch() {
            assert!(
                Instant::now() < deadline,
                "sshd did not restart on port {}; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Freezes every open session (SIGSTOP): the server is up but answers nothing, as a hung
    /// partner server does. New connections are still accepted.
    pub fn pause_sessions(&self) {
        self.signal_sessions(Signal::SIGSTOP);
    }

    /// Lets frozen sessions go on (SIGCONT).
    pub fn resume_sessions(&self) {
        self.signal_sessions(Signal::SIGCONT);
    }

    fn signal_sessions(&self, signal: Signal) {
        let Some(child) = &self.child else { return };
        for pid in descendants(child.id()) {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// Whether sshd is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Everything sshd logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "edi-bridge-test",
        "-f",
    ])
    .arg(path);
    if kind == "rsa" {
        // Big enough for every current server, small enough to generate quickly.
        cmd.args(["-b", "2048"]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{INSTALL_HINT} (ssh-keygen: {e})"));
    assert!(
        out.status.success(),
        "ssh-keygen -t {kind} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `SHA256:…` from `ssh-keygen -lf` (`256 SHA256:… comment (ED25519)`).
fn keygen_fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .expect("ssh-keygen -lf");
    assert!(out.status.success(), "ssh-keygen -lf {}", public.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether the port accepts a connection and sends an SSH banner.
fn banner_arrives(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut banner = [0u8; 8];
    match stream.read_exact(&mut banner) {
        Ok(()) => &banner == b"SSH-2.0-",
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => false,
    }
}

/// Processes below `pid` (sshd forks one or more per session), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // Field 4 of /proc/PID/stat is the parent; the name before it is in parentheses.
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((child, ppid));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// A local account with [`PASSWORD`] for password logins, removed (`userdel -r`) when dropped.
struct PasswordAccount {
    name: String,
}

/// Serialises this process's account changes (`useradd`, `chpasswd`, `userdel`); the first
/// one also removes the accounts a killed earlier run left behind.
static ACCOUNTS: Mutex<bool> = Mutex::new(false);

impl PasswordAccount {
    /// Creates `edibt<pid>-<n>` with a home folder and sets its password; panics, saying how
    /// to run the test, when not root.
    fn create() -> PasswordAccount {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{PASSWORD_USER_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        assert!(
            current_user() == "root",
            "the password-login test needs root: it logs in as a local account of its own \
             ({name}), which the harness creates (useradd, chpasswd) and removes (userdel); run \
             the tests as root, e.g. in a container, or `sudo -E env PATH=\"$PATH\" cargo test \
             --test transport`"
        );
        let mut swept = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        if !*swept {
            remove_stale_accounts();
            *swept = true;
        }
        let out = account_tool("useradd", &["-m", "-s", "/bin/sh", &name]);
        assert!(
            out.status.success(),
            "useradd {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if let Err(e) = set_password(&name) {
            let _ = remove_account(&name);
            panic!("{e}");
        }
        PasswordAccount { name }
    }
}

impl Drop for PasswordAccount {
    fn drop(&mut self) {
        let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = remove_account(&self.name) {
            // Failing the test says an account was left behind; a test that already
            // panicked keeps its own message.
            if std::thread::panicking() {
                eprintln!("{e}");
            } else {
                panic!("{e}");
            }
        }
    }
}

/// Removes the accounts named `edibt<pid>-<n>` whose process is gone (a run that was killed
/// before it could remove them), and any named after this process (a previous one with the
/// same pid): this process has created none yet.
fn remove_stale_accounts() {
    let Ok(passwd) = Command::new("getent").arg("passwd").output() else {
        return;
    };
    let own = std::process::id();
    for line in String::from_utf8_lossy(&passwd.stdout).lines() {
        let name = line.split(':').next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix(PASSWORD_USER_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != own && Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Err(e) = remove_account(name) {
            eprintln!("stale test account: {e}");
        }
    }
}

/// `chpasswd`: sets [`PASSWORD`].
fn set_password(name: &str) -> Result<(), String> {
    use std::io::Write;
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("chpasswd: {e}"))?;
    let written = chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{name}:{PASSWORD}\n").as_bytes());
    let status = chpasswd.wait().map_err(|e| format!("chpasswd: {e}"))?;
    match written {
        Ok(()) if status.success() => Ok(()),
        _ => Err(format!("chpasswd for {name} failed: {status}")),
    }
}

/// `userdel -r`: an account that is already gone is fine. Its session processes may take a
/// moment to go after sshd stopped them; after 5 s the removal is forced.
fn remove_account(name: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let force = Instant::now() >= deadline;
        let args: &[&str] = if force {
            &["-r", "-f", name]
        } else {
            &["-r", name]
        };
        let out = account_tool("userdel", args);
        match out.status.code() {
            // 6: no such user.
            Some(0) | Some(6) => return Ok(()),
            // 8: the user is logged in (a session process is still there).
            Some(8) if !force => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                return Err(format!(
                    "userdel -r {name} failed ({}): {} — remove the account by hand: \
                     sudo userdel -r -f {name}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
}

/// Runs `useradd` / `userdel` with `args`, retrying while another process holds the lock on
/// the account files (exit status 10).
fn account_tool(tool: &str, args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        if out.status.code() != Some(10) || Instant::now() >= deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
