//! Where the team's shared reference material is: the recorded Odoo transcripts and the
//! OASIS UBL 2.1 corpus live in `shared/`, beside the repository (read-only).

use std::path::{Path, PathBuf};

/// `shared/<sub>`: from `$EDI_BRIDGE_SHARED`, else `../shared` beside the checkout, else
/// `/work/shared`. Fails the test, saying where it looked, when none has it.
pub fn shared_dir(sub: &str) -> PathBuf {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("EDI_BRIDGE_SHARED") {
        candidates.push(PathBuf::from(dir));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    candidates.push(PathBuf::from("/work/shared"));
    for base in candidates {
        let dir = base.join(sub);
        if dir.is_dir() {
            return dir;
        }
        tried.push(dir.display().to_string());
    }
    panic!(
        "shared/{sub} not found (tried {}): check out the team's `shared` folder beside the \
         repository, or point EDI_BRIDGE_SHARED at it",
        tried.join(", ")
    );
}
