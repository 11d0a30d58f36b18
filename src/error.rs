//! What a failure means for the file in hand. Every error type of every layer answers this
//! once, where the error is understood, through a `consequence()` method.

use serde::Serialize;

/// What happens to the file (or the flow) after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consequence {
    /// An outage (network, timeout, server busy): the file stays in the inbox and is retried
    /// later. The error folder is never used for an outage.
    Retry,
    /// Bad data: the file goes to `error/` with a report.
    Reject,
    /// A configuration problem (bad credentials, wrong host key, missing folder): the flow
    /// stops and a human is told what to fix; files stay where they are.
    Stop,
}
