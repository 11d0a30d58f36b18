//! What can be checked of `deploy/`, the `Dockerfile` and the compose stack on a machine that
//! cannot run containers: the sample configs load, the files the image is built from exist, the
//! compose stack hands edi-bridge every variable its config reads, the health check tells 200
//! from anything else, and the systemd units verify with `systemd-analyze`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use edi_bridge::config::Config;

/// `systemd-analyze` verifies the units; `make test` installs it (Debian package `systemd`).
fn require_systemd_analyze() {
    let installed = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "systemd-analyze is missing: install the Debian package `systemd` \
         (`apt-get install systemd`; `make test` does it)"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The `${NAME}`s a config reads from the environment (comments aside).
fn env_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let text: String = text
        .lines()
        .map(|l| l.split(" #").next().unwrap_or_default())
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let end = rest.find('}').expect("a closed ${…}");
        names.insert(rest[..end].to_owned());
        rest = &rest[end..];
    }
    names
}

/// Where the image puts the canonical schemas (`COPY xsd /usr/local/share/edi-bridge/xsd`): the
/// sample configs name them there; here they are read from the repository.
const IMAGE_SHARE: &str = "/usr/local/share/edi-bridge/";

/// Loads a deploy config as edi-bridge would, with `env` for its variables and the image's
/// schema folder read from the repository.
fn load(rel: &str, env: &[(&str, &str)]) -> Config {
    let text = read(rel).replace(IMAGE_SHARE, &format!("{}/", repo().display()));
    let lookup = |name: &str| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
            .ok_or(std::env::VarError::NotPresent)
    };
    Config::parse_with_env(&text, &repo().join(rel), &lookup)
        .unwrap_or_else(|e| panic!("{rel} does not load: {e}"))
}

#[test]
fn the_sample_configs_in_deploy_load() {
    assert!(
        read("Dockerfile").contains("COPY xsd /usr/local/share/edi-bridge/xsd"),
        "the configs name the schemas where the image puts them"
    );
    let example = load(
        "deploy/edi-bridge.example.toml",
        &[
            ("ODOO_API_KEY", "key"),
            ("EDI_BRIDGE_TOKEN", "token"),
            (
                "CREDENTIALS_DIRECTORY",
                "/run/credentials/edi-bridge.service",
            ),
        ],
    );
    assert_eq!(
        example.flows.keys().collect::<Vec<_>>(),
        ["orders", "products", "stock"]
    );
    assert_eq!(example.server.listen.to_string(), "127.0.0.1:8480");

    let compose = load(
        "deploy/edi-bridge.compose.toml",
        &[
            ("ODOO_PASSWORD", "admin"),
            ("SFTP_PASSWORD", "secret"),
            (
                "SFTP_HOST_KEY",
                "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            ),
            ("EDI_BRIDGE_TOKEN", "token"),
        ],
    );
    assert_eq!(
        compose.flows.keys().collect::<Vec<_>>(),
        ["orders", "products", "shipped", "stock"]
    );
    // The folders the flows use are the ones the stack's SFTP server creates.
    let sftp_folders = read("deploy/compose.yaml");
    for folder in [
        "out/products,",
        "out/stock,",
        "out/shipped,",
        "out/shipped/archive,",
        "out/shipped/error,",
        "in/orders\"",
    ] {
        assert!(
            sftp_folders.contains(folder),
            "compose.yaml's SFTP server lacks {folder}"
        );
    }
    // Reachable from outside the container, on the port the image's health check asks.
    assert_eq!(compose.server.listen.to_string(), "0.0.0.0:8480");
    assert!(read("Dockerfile").contains("EDI_BRIDGE_HEALTH_PORT=8480"));
    assert_eq!(compose.server.token.as_deref(), Some("token"));
}

#[test]
fn the_dockerfile_builds_from_paths_that_exist_and_are_not_ignored() {
    let dockerfile = read("Dockerfile");
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    let mut copied = 0;
    for line in dockerfile.lines() {
        let Some(args) = line.trim().strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            let path = repo().join(src);
            assert!(
                path.exists(),
                "Dockerfile copies {src}, which does not exist"
            );
            let first = src.split('/').next().unwrap();
            assert!(
                !ignored.iter().any(|i| i == first || i == src),
                "Dockerfile copies {src}, which .dockerignore leaves out"
            );
            copied += 1;
        }
    }
    assert!(copied >= 6, "{copied} COPY sources");
    // The benches named in Cargo.toml must be there for cargo to read the manifest.
    for bench in ["validate_map", "odoo_calls", "pass_memory"] {
        assert!(repo().join(format!("benches/{bench}.rs")).exists());
    }
    // Non-root at run time, a health check, the binary the crate builds.
    assert!(dockerfile.contains("\nUSER edi-bridge\n"));
    assert!(dockerfile.contains("HEALTHCHECK "));
    assert!(dockerfile.contains("cargo build --release --locked --bin edi-bridge"));
    assert!(dockerfile.contains("FROM debian:bookworm-slim"));
    for package in ["libxml2", "libsqlite3-0", "ca-certificates", "tzdata"] {
        assert!(
            dockerfile.contains(package),
            "the runtime image needs {package}"
        );
    }
}

#[test]
fn compose_hands_edi_bridge_every_variable_its_config_reads() {
    let compose = read("deploy/compose.yaml");
    let service = compose
        .split("\n  edi-bridge:\n")
        .nth(1)
        .expect("an edi-bridge service");
    let service = service.split("\nvolumes:\n").next().unwrap();
    let config = read("deploy/edi-bridge.compose.toml");
    let names = env_names(&config);
    assert!(names.contains("SFTP_HOST_KEY"), "{names:?}");
    for name in &names {
        assert!(
            service.contains(&format!("      {name}: ${{{name}")),
            "deploy/edi-bridge.compose.toml reads ${{{name}}}, which compose.yaml does not pass"
        );
    }
    assert!(service.contains("./edi-bridge.compose.toml:/etc/edi-bridge/edi-bridge.toml:ro"));
    assert!(repo().join("deploy/edi-bridge.compose.toml").is_file());
    // The build context is the repository root, where the Dockerfile is.
    assert!(service.contains("context: ..") && repo().join("Dockerfile").is_file());
    // The services the config names are in the stack.
    for host in ["\n  odoo:\n", "\n  sftp:\n", "\n  db:\n"] {
        assert!(compose.contains(host), "compose.yaml lacks {host:?}");
    }
    assert!(config.contains("url = \"http://odoo:8069\"") && config.contains("host = \"sftp\""));
    assert!(compose.contains("image: odoo:18"));
    // Every secret compose.yaml reads is in the example .env.
    let env_example = read("deploy/compose.env.example");
    for name in env_names(&compose) {
        let name = name.split([':', '-']).next().unwrap();
        assert!(
            env_example.contains(&format!("{name}=")),
            "compose.yaml reads {name}, not in deploy/compose.env.example"
        );
    }
}

/// Serves one HTTP answer per connection, `answers` in turn.
fn http_server(answers: Vec<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for answer in answers {
            let (mut stream, _) = listener.accept().unwrap();
            // The whole request, up to the empty line, as an HTTP server reads it.
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            assert!(request.starts_with("GET /healthz HTTP/"), "{request}");
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 0 && header.trim() != "" {
                header.clear();
            }
            stream.write_all(answer.as_bytes()).unwrap();
        }
    });
    port
}

fn healthcheck(port: u16) -> (i32, String) {
    let out = Command::new("bash")
        .arg(repo().join("deploy/healthcheck.sh"))
        .env("EDI_BRIDGE_HEALTH_PORT", port.to_string())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_container_health_check_is_healthy_only_on_200() {
    let port = http_server(vec![
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 40\r\nconnection: close\r\n\r\nscheduler stuck: no tick for 95 seconds",
    ]);
    assert_eq!(healthcheck(port), (0, String::new()));
    let (code, said) = healthcheck(port);
    assert_eq!(code, 1);
    assert!(
        said.contains("HTTP/1.1 503 Service Unavailable") && said.contains("scheduler stuck"),
        "{said}"
    );
    // Nothing listening.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, said) = healthcheck(free);
    assert_eq!(code, 1);
    assert!(said.contains("nothing listens"), "{said}");
}

#[test]
fn the_systemd_units_are_hardened_and_verify_clean() {
    let unit = read("deploy/edi-bridge.service");
    for directive in [
        "Type=notify",
        "ExecStart=/usr/local/bin/edi-bridge run\n",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "User=edi-bridge",
        "StateDirectory=edi-bridge",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "ReadWritePaths=",
        "EnvironmentFile=",
        "LoadCredential=",
        "KillSignal=SIGTERM",
    ] {
        assert!(
            unit.contains(directive),
            "edi-bridge.service lacks {directive:?}"
        );
    }
    let once = read("deploy/edi-bridge-once.service");
    assert!(once.contains("ExecStart=/usr/local/bin/edi-bridge run --once"));
    assert!(read("deploy/edi-bridge-once.timer").contains("[Timer]"));

    // The same script as `make verify-units`.
    require_systemd_analyze();
    let out = Command::new("bash")
        .arg(repo().join("deploy/verify-units.sh"))
        .arg(env!("CARGO_BIN_EXE_edi-bridge"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("3 units clean"), "{said}");
}

#[test]
fn the_verify_script_fails_on_a_warning() {
    require_systemd_analyze();
    // A copy of deploy/ with a misspelt directive.
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "edi-bridge.service",
        "edi-bridge-once.service",
        "edi-bridge-once.timer",
        "verify-units.sh",
    ] {
        std::fs::copy(repo().join("deploy").join(f), dir.path().join(f)).unwrap();
    }
    let unit = dir.path().join("edi-bridge.service");
    let text = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("ProtectSystem=strict", "ProtectSytem=strict");
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("bash")
        .arg(dir.path().join("verify-units.sh"))
        .arg(env!("CARGO_BIN_EXE_edi-bridge"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("ProtectSytem"), "{said}");
}
