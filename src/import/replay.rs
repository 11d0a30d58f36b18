//! `replay`: moves failed files from a flow's `error/` folder back into its inbox, where the
//! next pass takes them as a new attempt of the same content. Their reports are removed (the
//! ledger keeps every attempt). A file of the same name waiting in the inbox is never
//! overwritten.

use crate::config::{Config, Direction};
use crate::import::finish::move_file;
use crate::import::settle;
use crate::transport::{self, AnyTransport, Transport, TransportError};

/// What happened to each file asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    Moved { from: String, to: String },
    Refused { name: String, why: String },
}

const REPORT_SUFFIXES: [&str; 2] = [".error.txt", ".error.json"];

/// Moves `names` (or, with `all`, every failed file) of `flow` back into its inbox.
pub async fn replay(
    config: &Config,
    flow: &str,
    names: &[String],
    all: bool,
) -> Result<Vec<Replayed>, String> {
    let flow_cfg = config
        .flow(flow)
        .ok_or_else(|| format!("no flow named `{flow}`"))?;
    let Direction::Import(import) = &flow_cfg.direction else {
        return Err(format!(
            "flow `{flow}` is an export flow: nothing to replay"
        ));
    };
    let partner = &config.partners[&flow_cfg.partner];
    let mut t = AnyTransport::connect(partner)
        .await
        .map_err(|e| e.to_string())?;
    let listed = match t.list(&import.error).await {
        Ok(entries) => entries,
        Err(TransportError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let failed: Vec<String> = listed
        .into_iter()
        .filter(|e| e.is_file && !REPORT_SUFFIXES.iter().any(|s| e.name.ends_with(s)))
        .map(|e| e.name)
        .collect();
    let wanted: Vec<String> = if all { failed.clone() } else { names.to_vec() };
    let mut done = Vec::new();
    for name in wanted {
        if settle::unsafe_name(&name).is_some() || !failed.contains(&name) {
            done.push(Replayed::Refused {
                name,
                why: format!("not a failed file in {}", import.error),
            });
            continue;
        }
        let from = transport::join(&import.error, &name);
        let to = transport::join(&import.inbox, &name);
        match move_file(&mut t, &from, &to).await {
            Ok(()) => {
                for suffix in REPORT_SUFFIXES {
                    let _ = t.remove(&format!("{from}{suffix}")).await;
                }
                // The flow takes a file only with its done-marker: the replayed one gets one.
                if let Some(marker) = &import.done_marker {
                    let marker =
                        transport::join(&import.inbox, &settle::marker_name(marker, &name));
                    if let Err(e) = t.put(&marker, b"").await {
                        done.push(Replayed::Refused {
                            name: name.clone(),
                            why: format!(
                                "moved back, but its done-marker could not be written: {e}"
                            ),
                        });
                        continue;
                    }
                }
                done.push(Replayed::Moved { from, to });
            }
            Err(TransportError::AlreadyExists { .. }) => done.push(Replayed::Refused {
                name,
                why: format!("a file of that name is already waiting in {}", import.inbox),
            }),
            Err(e) => done.push(Replayed::Refused {
                name,
                why: e.to_string(),
            }),
        }
    }
    let _ = t.close().await;
    Ok(done)
}
