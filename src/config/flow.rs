//! `[flows.<name>]`: the partner, the schedule and the direction of one business exchange.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ConfigError;
use super::export::{ExportFlow, parse_export};
use super::import::{ImportFlow, parse_import};
use super::partner::Partner;
use super::read::{Item, Node};

/// `[flows.<name>]`: one business exchange with one partner, in one direction.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The name in the config (`[A-Za-z0-9_.-]+`).
    pub name: String,
    /// Name of a key in [`crate::config::Config::partners`] (checked to exist).
    pub partner: String,
    /// `every` or `cron`; `None` runs only on demand (`run --once`, hooks).
    pub schedule: Option<Schedule>,
    /// `direction` and the keys that go with it.
    pub direction: Direction,
}

/// When a flow runs by itself.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `every = "15m"`.
    Every(Duration),
    /// `cron = "0 6,18 * * *"`, in the partner's timezone: five fields, or six with seconds
    /// first; `L`, `W`, `#` and nicknames such as `@daily` as `croner` reads them.
    Cron(Box<croner::Cron>),
}

/// `direction = "import"` or `"export"`.
#[derive(Debug, Clone)]
pub enum Direction {
    Import(Box<ImportFlow>),
    /// Export flows are parsed so configs written today keep working; the export pipeline
    /// comes later.
    Export(Box<ExportFlow>),
}

pub(super) fn parse_flow(
    name: &str,
    mut t: Node,
    partners: &BTreeMap<String, Partner>,
) -> Result<Flow, ConfigError> {
    let partner_item = t.require("partner", "the name of a partner defined under [partners]")?;
    let partner_key = partner_item.key.clone();
    let partner = partner_item.text()?;
    if !partners.contains_key(&partner) {
        let known: Vec<&str> = partners.keys().map(String::as_str).collect();
        return Err(t.cx.err(
            &partner_key,
            format!(
                "no partner named {partner:?}; defined partners: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let schedule = match (t.take("every"), t.take("cron")) {
        (Some(_), Some(cron)) => {
            return Err(cron.err("give either every or cron, not both".to_string()));
        }
        (Some(every), None) => Some(Schedule::Every(every.positive_duration()?)),
        (None, Some(cron)) => Some(Schedule::Cron(Box::new(cron.cron()?))),
        (None, None) => None,
    };
    #[derive(Clone, Copy)]
    enum Dir {
        Import,
        Export,
    }
    let dir = t
        .require("direction", "\"import\" or \"export\"")?
        .choice(&[("import", Dir::Import), ("export", Dir::Export)])?;
    let direction = match dir {
        Dir::Import => Direction::Import(Box::new(parse_import(&mut t)?)),
        Dir::Export => Direction::Export(Box::new(parse_export(&mut t)?)),
    };
    t.finish()?;
    Ok(Flow {
        name: name.to_string(),
        partner,
        schedule,
        direction,
    })
}

impl Item<'_> {
    /// `cron`: a cron expression, checked now so that a typo is a config error at start-up
    /// rather than a flow that never runs.
    fn cron(self) -> Result<croner::Cron, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let text = self.text()?;
        croner::parser::CronParser::new()
            .parse(text.trim())
            .map_err(|e| {
                cx.err(
                    &key,
                    format!(
                        "invalid cron expression {text:?} ({e}); expected five fields \
                         (minute hour day-of-month month day-of-week) such as \"0 6,18 * * *\", \
                         or six with seconds first"
                    ),
                )
            })
    }
}
