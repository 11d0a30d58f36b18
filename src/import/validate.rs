//! Validating and mapping a local file: the XSD check (XML) and the mapping's records turned
//! into Odoo operations, with every problem as the error report lists it. Used by a pass on each
//! fetched file and by the `validate` command.

use std::path::Path;

use tokio::task::JoinHandle;

use super::claim::Early;
use super::spool::OpsWriter;
use crate::config::ImportFlow;
use crate::error::Consequence;
use crate::mapping::config::Format;
use crate::mapping::{self, MapProblem};
use crate::operation::Operation;
use crate::report::{Problem, Stage};
use crate::schema::{self, XmlProblem};

/// What [`check_and_spool`] gives: the per-record problems, the number of records and the
/// number of operations written.
pub type Spooled = Result<(Vec<Problem>, u64, u64), Early>;

/// Validates (XML: XSD) and maps a local file on a blocking thread, writing its operations to
/// `ops` (one JSON line each) rather than keeping them: memory does not grow with the file. The
/// task runs on while the caller goes on (the next file of a pass downloads meanwhile).
pub fn check_and_spool(import: &ImportFlow, file: &Path, ops: &Path) -> JoinHandle<Spooled> {
    let import = import.clone();
    let file = file.to_path_buf();
    let ops = ops.to_path_buf();
    tokio::task::spawn_blocking(move || check_and_spool_blocking(&import, &file, &ops))
}

/// The blocking half of [`check_and_spool`].
pub fn check_and_spool_blocking(import: &ImportFlow, file: &Path, ops: &Path) -> Spooled {
    let spool_error = |e: std::io::Error| {
        Early::Wait(format!("writing the operations to {}: {e}", ops.display()))
    };
    let mut writer = OpsWriter::create(ops).map_err(spool_error)?;
    let (problems, records) = check_and_stream(import, file, &mut |op| writer.push(&op))?;
    let count = writer.finish().map_err(spool_error)?;
    Ok((problems, records, count))
}

/// Validates and maps `file`, handing each operation to `sink` as it is made (memory does not
/// grow with the records: what `validate` uses). Returns the per-record problems and the number
/// of records.
pub fn check_and_stream(
    import: &ImportFlow,
    file: &Path,
    sink: &mut dyn FnMut(Operation),
) -> Result<(Vec<Problem>, u64), Early> {
    if let Format::Xml { schema: xsd } = &import.format {
        match schema::validate_file(xsd, file) {
            Ok(problems) if problems.is_empty() => {}
            Ok(problems) => {
                let problems = problems.into_iter().map(xml_problem).collect();
                return Err(Early::Reject(Stage::Validation, problems));
            }
            Err(e) => {
                return Err(match e.consequence() {
                    Consequence::Reject => {
                        Early::Reject(Stage::Validation, vec![Problem::new(e.to_string())])
                    }
                    Consequence::Stop => Early::Wait(format!("{e} (fix the flow's `schema`)")),
                    Consequence::Retry => Early::Wait(e.to_string()),
                });
            }
        }
    }
    match mapping::map_file(&import.format, &import.mapping, file, sink) {
        Ok(outcome) => {
            let listed = outcome.problems.len() as u64;
            let mut problems: Vec<Problem> = outcome.problems.into_iter().map(problem_of).collect();
            if outcome.problem_count > listed {
                problems.push(Problem::not_listed(outcome.problem_count - listed));
            }
            Ok((problems, outcome.records))
        }
        Err(e) => match e.consequence() {
            Consequence::Retry => Err(Early::Wait(e.to_string())),
            Consequence::Stop => Err(Early::Wait(format!("{e} (fix the flow's mapping)"))),
            Consequence::Reject => Err(Early::Reject(
                Stage::Mapping,
                vec![Problem::new(e.to_string())],
            )),
        },
    }
}

fn xml_problem(p: XmlProblem) -> Problem {
    let problem = Problem::new(p.message);
    match p.line {
        Some(line) => problem.at(line, p.column),
        None => problem,
    }
}

fn problem_of(p: MapProblem) -> Problem {
    let mut problem = Problem::new(p.message).record(p.record).at(p.line, None);
    if let Some(field) = p.field {
        problem = problem.field(field);
    }
    if let Some(value) = p.value {
        problem = problem.value(value);
    }
    problem
}
