//! `Config::parse_with_env` on arbitrary text: any input is a config or a `ConfigError`,
//! never a panic. `${NAME}` resolves to a fixed value for `EDI_FUZZ` and is unset otherwise.
#![no_main]

use std::path::Path;

use edi_bridge::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| match name {
        "EDI_FUZZ" => Ok("value".to_string()),
        _ => Err(std::env::VarError::NotPresent),
    };
    match Config::parse_with_env(text, Path::new("/nonexistent/edi-bridge.toml"), &env) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.consequence();
        }
    }
});
