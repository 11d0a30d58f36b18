//! The `edi-bridge` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use edi_bridge::config::{Config, Direction};
use edi_bridge::export::pass::RecordOutcome;
use edi_bridge::import::claim::Early;
use edi_bridge::import::explain;
use edi_bridge::import::pass::{Listing, Outcome, Runner};
use edi_bridge::import::replay::Replayed;
use edi_bridge::import::validate;
use edi_bridge::ledger::Ledger;
use edi_bridge::report::{Problem, counted};

#[derive(Parser)]
#[command(
    name = "edi-bridge",
    version,
    about = "Moves business documents between Odoo and partners' SFTP servers"
)]
struct Cli {
    /// Configuration file (default: $EDI_BRIDGE_CONFIG, then ./edi-bridge.toml).
    #[arg(
        long,
        short,
        global = true,
        env = "EDI_BRIDGE_CONFIG",
        default_value = "edi-bridge.toml"
    )]
    config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["human", "json"], default_value = "human")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (flows on their schedules, watched inboxes, the HTTP endpoints) until
    /// SIGTERM/SIGINT; `--once` does one pass over the flows and exits (0: every taken file
    /// archived and every record published — in a dry run, would be; 1: a file went (would go)
    /// to error/, a record's document was refused, or work was left waiting; 2: configuration
    /// or usage error).
    Run {
        /// One pass over the flows, then exit.
        #[arg(long)]
        once: bool,
        /// Flows to run (default: all).
        flows: Vec<String>,
    },
    /// Offline: validate FILE and map it with FLOW's mapping; print the Odoo operations as JSON
    /// lines (exit 0 valid, 1 invalid). Touches nothing.
    Validate {
        file: PathBuf,
        #[arg(long)]
        flow: String,
    },
    /// Why a file in FLOW's inbox was or was not taken; for an export flow, `--record NAME`:
    /// why a record was or was not exported.
    Explain {
        flow: String,
        /// A file name in the inbox (import flows).
        #[arg(required_unless_present = "record")]
        file: Option<String>,
        /// A record's name, e.g. WH/OUT/00042 (export flows).
        #[arg(long, conflicts_with = "file")]
        record: Option<String>,
    },
    /// Move failed files from FLOW's error folder back into its inbox (a new attempt); for an
    /// export flow, `--record NAME` publishes that record again on purpose and marks it.
    Replay {
        flow: String,
        /// File names in the error folder.
        #[arg(required_unless_present_any = ["all", "record"])]
        files: Vec<String>,
        /// Export flows: the record to publish again, e.g. WH/OUT/00042.
        #[arg(long, conflicts_with_all = ["files", "all", "force_stale"])]
        record: Option<String>,
        /// Every failed file of the flow.
        #[arg(long, conflicts_with = "files")]
        all: bool,
        /// set_stock: apply the files even where a newer file already set the same stock
        /// (setting it back to these older levels on purpose). Names the files; not with --all.
        #[arg(long, conflicts_with = "all")]
        force_stale: bool,
    },
    /// Test the config, every partner (host key, login, folders) and Odoo (login, models,
    /// fields, rights): a table; exit 0 only when all is well.
    Check,
    /// Per flow: last run and result, next run, files archived, failed, waiting, the oldest
    /// waiting, failed files with the first line of their report. Works while the daemon runs.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print a starting `[flows.NAME.mapping]` for a partner's XSD: the record, the namespace
    /// prefixes, every value under the record with its type and whether it is required, and
    /// the Odoo field it likely feeds. Reads no config.
    Scaffold {
        /// The partner's schema (imports and includes are followed).
        #[arg(long)]
        xsd: PathBuf,
        /// The record element's path, e.g. /Catalogue/CatalogueLine (default: guessed).
        #[arg(long)]
        record: Option<String>,
        /// Flow name in the table headers (default: from the schema's file name).
        #[arg(long)]
        flow: Option<String>,
        /// Levels of elements listed under the record.
        #[arg(long, default_value_t = edi_bridge::scaffold::DEFAULT_DEPTH)]
        depth: usize,
        /// Values listed at most, those nearest to the record first.
        #[arg(long, default_value_t = edi_bridge::scaffold::DEFAULT_MAX_FIELDS)]
        max_fields: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    if let Command::Scaffold {
        xsd,
        record,
        flow,
        depth,
        max_fields,
    } = cli.command
    {
        return ExitCode::from(scaffold(xsd, record, flow, depth, max_fields));
    }
    let config = match Config::load(&cli.config) {
        Ok(config) => Arc::new(config),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match cli.command {
        Command::Run { once, flows } => runtime.block_on(run(config, once, flows)),
        Command::Validate { file, flow } => validate(&config, &file, &flow),
        Command::Explain { flow, file, record } => match (file, record) {
            (_, Some(record)) => runtime.block_on(explain_record(config, &flow, &record)),
            (Some(file), None) => runtime.block_on(explain_file(config, &flow, &file)),
            (None, None) => 2,
        },
        Command::Replay {
            flow,
            record: Some(record),
            ..
        } => runtime.block_on(replay_record(config, &flow, &record)),
        Command::Replay {
            flow,
            files,
            all,
            force_stale,
            record: None,
        } => runtime.block_on(replay(&config, &flow, &files, all, force_stale)),
        Command::Status { json } => status(&config, json),
        Command::Check => runtime.block_on(check(&config)),
        Command::Scaffold { .. } => unreachable!("answered before the config is read"),
    };
    ExitCode::from(code)
}

fn scaffold(
    xsd: PathBuf,
    record: Option<String>,
    flow: Option<String>,
    depth: usize,
    max_fields: usize,
) -> u8 {
    use edi_bridge::scaffold::{Request, flow_name, scaffold};
    let request = Request {
        flow: flow.unwrap_or_else(|| flow_name(&xsd)),
        xsd,
        record,
        depth,
        max_fields,
    };
    match scaffold(&request) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDI_BRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.with_target(false).init();
    }
}

fn open_ledger(config: &Config) -> Result<Ledger, u8> {
    if let Some(dir) = config.ledger.path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    Ledger::open(&config.ledger.path).map_err(|e| {
        eprintln!("error: {}: {e}", config.ledger.path.display());
        2
    })
}

fn check_flow_names(config: &Config, names: &[String]) -> Result<(), u8> {
    for name in names {
        if config.flow(name).is_none() {
            let known: Vec<&str> = config.flows.keys().map(String::as_str).collect();
            eprintln!(
                "error: no flow named `{name}` (flows: {})",
                known.join(", ")
            );
            return Err(2);
        }
    }
    Ok(())
}

async fn run(config: Arc<Config>, once: bool, flows: Vec<String>) -> u8 {
    if let Err(code) = check_flow_names(&config, &flows) {
        return code;
    }
    if !once {
        if !flows.is_empty() {
            eprintln!("error: the daemon runs every flow; name flows only with `run --once`");
            return 2;
        }
        let ledger = match open_ledger(&config) {
            Ok(l) => l,
            Err(code) => return code,
        };
        return edi_bridge::daemon::run(config, ledger).await;
    }
    let ledger = match open_ledger(&config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let runner = Runner::new(config.clone(), ledger, Box::new(std::io::stdout()));
    let summary = runner.run_once(&flows, Listing::Twice).await;
    for f in &summary.files {
        let line = match &f.outcome {
            Outcome::Archived(to) => format!("archived  {} → {to}", f.name),
            Outcome::Failed(to) => format!("error     {} → {to} (report: {to}.error.txt)", f.name),
            Outcome::Waiting(why) => format!("waiting   {}: {why}", f.name),
            Outcome::WouldArchive(to) => {
                format!(
                    "dry run   {} stays in the inbox; would be archived → {to}",
                    f.name
                )
            }
            Outcome::WouldFail { to, report } => format!(
                "dry run   {} stays in the inbox; would go to error → {to}, with this report \
                 ({to}.error.txt):\n{}",
                f.name,
                indent(report)
            ),
        };
        eprintln!("{:<20} {line}", f.flow);
    }
    for r in &summary.records {
        let line = match &r.outcome {
            RecordOutcome::Published(path) => format!("published {} → {path}", r.name),
            RecordOutcome::Failed(why) => format!("refused   {}: {why}", r.name),
            RecordOutcome::Waiting(why) => format!("waiting   {}: {why}", r.name),
            RecordOutcome::WouldPublish { path, .. } => {
                format!(
                    "dry run   {} would be published → {path} (document on stdout)",
                    r.name
                )
            }
        };
        eprintln!("{:<20} {line}", r.flow);
    }
    for (flow, file, why) in &summary.not_ready {
        if file.is_empty() {
            // A whole flow: an export flow another run is exporting now.
            eprintln!("{flow:<20} skipped   {why}");
        } else {
            eprintln!("{flow:<20} not taken {file}: {why}");
        }
    }
    for (flow, file, why) in &summary.unread {
        eprintln!("{flow:<20} waiting   {file}: {why}");
    }
    for (flow, why) in &summary.stopped {
        eprintln!("{flow:<20} STOPPED   {why}");
    }
    summary.exit_code() as u8
}

/// A report shown under its file's line: every line indented.
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn validate(config: &Config, file: &Path, flow: &str) -> u8 {
    let Some(flow_cfg) = config.flow(flow) else {
        return check_flow_names(config, &[flow.to_string()])
            .err()
            .unwrap_or(2);
    };
    let Direction::Import(import) = &flow_cfg.direction else {
        eprintln!("error: flow `{flow}` is an export flow; `validate` checks import files");
        return 2;
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut operations = 0u64;
    let result = validate::check_and_stream(import, file, &mut |op| {
        use std::io::Write;
        operations += 1;
        let _ = writeln!(out, "{}", serde_json::to_string(&op).unwrap_or_default());
    });
    {
        use std::io::Write;
        let _ = out.flush();
    }
    match result {
        Ok((problems, records)) => {
            for p in &problems {
                eprintln!("{}: {}", file.display(), p.render());
            }
            let found: u64 = problems.iter().map(Problem::count).sum();
            eprintln!(
                "{}: {}, {}, {}",
                file.display(),
                counted(records, "record"),
                counted(operations, "operation"),
                counted(found, "problem")
            );
            u8::from(!problems.is_empty())
        }
        Err(Early::Reject(stage, problems)) => {
            eprintln!("{}: invalid: {}", file.display(), stage.describe());
            for p in &problems {
                eprintln!("{}: {}", file.display(), p.render());
            }
            1
        }
        Err(Early::Wait(why)) => {
            eprintln!("{}: could not be checked: {why}", file.display());
            1
        }
    }
}

async fn explain_file(config: Arc<Config>, flow: &str, file: &str) -> u8 {
    if let Err(code) = check_flow_names(&config, &[flow.to_string()]) {
        return code;
    }
    let ledger = match open_ledger(&config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match explain::explain(&config, &ledger, flow, file).await {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn explain_record(config: Arc<Config>, flow: &str, record: &str) -> u8 {
    if let Err(code) = check_flow_names(&config, &[flow.to_string()]) {
        return code;
    }
    let ledger = match open_ledger(&config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match edi_bridge::export::explain::explain_record(&config, &ledger, flow, record).await {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn replay_record(config: Arc<Config>, flow: &str, record: &str) -> u8 {
    if let Err(code) = check_flow_names(&config, &[flow.to_string()]) {
        return code;
    }
    if !matches!(config.flows[flow].direction, Direction::Export(_)) {
        eprintln!("error: flow `{flow}` is an import flow; `--record` replays export flows");
        return 2;
    }
    let ledger = match open_ledger(&config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let runner = Runner::new(config.clone(), ledger, Box::new(std::io::stdout()));
    match runner.replay_record(flow, record).await {
        Ok(r) => match r.outcome {
            RecordOutcome::Published(path) => {
                println!("published {} again → {path}", r.name);
                0
            }
            RecordOutcome::WouldPublish { path, .. } => {
                println!("dry run: {} would be published again → {path}", r.name);
                0
            }
            RecordOutcome::Failed(why) | RecordOutcome::Waiting(why) => {
                eprintln!("not published {}: {why}", r.name);
                1
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn replay(config: &Config, flow: &str, files: &[String], all: bool, force: bool) -> u8 {
    if let Err(code) = check_flow_names(config, &[flow.to_string()]) {
        return code;
    }
    // Marked before the move: the next pass must not judge the file before it knows.
    let ledger = if force {
        match Ledger::open(&config.ledger.path) {
            Ok(ledger) => Some(ledger),
            Err(e) => {
                eprintln!("error: {}: {e}", config.ledger.path.display());
                return 1;
            }
        }
    } else {
        None
    };
    if let Some(ledger) = &ledger {
        let now = jiff::Timestamp::now().as_millisecond();
        for name in files {
            if let Err(e) = ledger.force_stale(flow, name, now) {
                eprintln!("error: ledger: {e}");
                return 1;
            }
        }
    }
    match edi_bridge::import::replay::replay(config, flow, files, all).await {
        Ok(done) => {
            let mut refused = false;
            for r in &done {
                match r {
                    Replayed::Moved { from, to } => {
                        if ledger.is_some() {
                            println!(
                                "moved {from} → {to} (applied even where newer files set the stock)"
                            );
                        } else {
                            println!("moved {from} → {to}");
                        }
                    }
                    Replayed::Refused { name, why } => {
                        refused = true;
                        eprintln!("not moved {name}: {why}");
                        if let Some(ledger) = &ledger {
                            let _ = ledger.forced_stale_done(flow, name);
                        }
                    }
                }
            }
            if done.is_empty() {
                println!("nothing to replay in flow {flow}");
            }
            u8::from(refused)
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn status(config: &Config, json: bool) -> u8 {
    let ledger = match open_ledger(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let now = jiff::Timestamp::now().as_millisecond();
    let rows = match edi_bridge::daemon::status::flows(config, &ledger, now) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        print!("{}", edi_bridge::daemon::status::render(&rows));
    }
    0
}

async fn check(config: &Config) -> u8 {
    let checks = edi_bridge::check::run(config).await;
    print!("{}", edi_bridge::check::render(&checks));
    u8::from(checks.iter().any(|c| !c.ok))
}
