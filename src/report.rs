//! The error report a person reads: `<name>.error.txt` beside a failed file in `error/`, and
//! its machine-readable twin `<name>.error.json`.
