//! The error report a person reads: `<name>.error.txt` beside a failed file in `error/`, and
//! its machine-readable twin `<name>.error.json`.
//!
//! The text is written for ops staff, not developers: which flow, when (in the partner's
//! timezone), which attempt, what failed in plain words (with line and column, or record and
//! field), what already reached Odoo, and how to replay. It stays short enough to read in an
//! SFTP client's viewer: at most [`MAX_LISTED_PROBLEMS`] problems are listed; the JSON twin
//! carries them all.

use std::fmt::Write as _;
use std::ops::RangeInclusive;

use jiff::ZonedDateTime;
use serde_json::{Value, json};

/// Problems listed in the text report; the rest are counted ("… and 12 more").
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// Record ranges written out in one sentence before it is cut short with "…".
const MAX_LISTED_RANGES: usize = 20;

/// Characters of a value or message shown in the text; the JSON twin keeps them whole.
const MAX_VALUE_CHARS: usize = 60;
const MAX_MESSAGE_CHARS: usize = 400;

/// The step of the import that refused the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The file could not be read from the inbox.
    Download,
    /// The file is larger than the flow accepts.
    TooLarge,
    /// The file ends before its root element closes and stopped changing long ago.
    Truncated,
    /// Not well-formed, or not valid against the flow's XSD (or CSV columns).
    Validation,
    /// A record could not be turned into Odoo operations (missing value, wrong type, …).
    Mapping,
    /// Odoo refused records.
    Odoo,
    /// Processing the file died (the process was killed, or ran out of time) `max_attempts`
    /// times: it is set aside so the flow moves on.
    Poison,
    /// Stock levels older than levels a newer file of the flow already set: not applied, so
    /// stock is never set back by a report that arrives late.
    Stale,
}

impl Stage {
    /// Stable name for the JSON twin and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::TooLarge => "too_large",
            Stage::Truncated => "truncated",
            Stage::Validation => "validation",
            Stage::Mapping => "mapping",
            Stage::Odoo => "odoo",
            Stage::Poison => "poison",
            Stage::Stale => "stale",
        }
    }

    /// What went wrong, in words for someone who does not know the pipeline.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Download => "the file could not be read from the partner's inbox.",
            Stage::TooLarge => "the file is larger than this flow accepts.",
            Stage::Truncated => {
                "the file is incomplete: it stops before its end, and it has not changed for a \
                 long time."
            }
            Stage::Validation => "the file does not follow the format this flow expects.",
            Stage::Mapping => {
                "some records could not be turned into Odoo data (a value is missing or not of the \
                 right kind)."
            }
            Stage::Odoo => "Odoo refused some records.",
            Stage::Poison => {
                "processing this file stopped without finishing too many times (edi-bridge was \
                 killed, or ran out of time, while working on it), so it was set aside for the \
                 other files of the flow to go on."
            }
            Stage::Stale => {
                "some stock levels in this file are older than levels a newer file already set; \
                 they were not applied, so the stock was not set back."
            }
        }
    }
}

/// One thing wrong with the file. Only the message is always there; the rest says where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problem {
    /// Line in the file (1-based).
    pub line: Option<u64>,
    /// Column on that line (1-based).
    pub column: Option<u64>,
    /// Record number in the file (1-based, file order).
    pub record: Option<u64>,
    /// The Odoo field concerned.
    pub field: Option<String>,
    /// The offending value as found in the file.
    pub value: Option<String>,
    pub message: String,
    /// Odoo's exception name, e.g. `odoo.exceptions.ValidationError`.
    pub exception: Option<String>,
    /// Set on the line that stands for this many further problems, known but not listed.
    pub not_listed: Option<u64>,
}

impl Problem {
    /// A problem with only its message; add where it is with the methods below.
    pub fn new(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            ..Problem::default()
        }
    }

    /// Stands for `count` further problems that were counted but not kept: the report counts
    /// them in its "… and N more problems, not listed" line.
    pub fn not_listed(count: u64) -> Problem {
        Problem {
            message: format!("… and {}, not listed", counted(count, "more problem")),
            not_listed: Some(count),
            ..Problem::default()
        }
    }

    /// How many problems this one stands for: 1, or the count of a [`Problem::not_listed`].
    pub fn count(&self) -> u64 {
        self.not_listed.unwrap_or(1)
    }

    /// At this line and (when known) column of the file.
    pub fn at(mut self, line: u64, column: Option<u64>) -> Problem {
        self.line = Some(line);
        self.column = column;
        self
    }

    /// In this record (1-based).
    pub fn record(mut self, record: u64) -> Problem {
        self.record = Some(record);
        self
    }

    /// About this Odoo field.
    pub fn field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    /// With this value from the file.
    pub fn value(mut self, value: impl Into<String>) -> Problem {
        self.value = Some(value.into());
        self
    }

    /// Raised by Odoo as this exception.
    pub fn exception(mut self, exception: impl Into<String>) -> Problem {
        self.exception = Some(exception.into());
        self
    }

    /// The problem on one line: where, then what.
    /// `record 3 (line 40), field list_price, value "twelve": not a number`.
    pub fn render(&self) -> String {
        let mut place = String::new();
        // Record 0 and line 0 are no place in the file (e.g. a quant a full snapshot set to 0).
        let record = self.record.filter(|&r| r > 0);
        let line = self.line.filter(|&l| l > 0);
        match (record, line) {
            (Some(record), Some(line)) => {
                let _ = write!(place, "record {record} (line {line}");
                if let Some(column) = self.column {
                    let _ = write!(place, ", column {column}");
                }
                place.push(')');
            }
            (Some(record), None) => {
                let _ = write!(place, "record {record}");
            }
            (None, Some(line)) => {
                let _ = write!(place, "line {line}");
                if let Some(column) = self.column {
                    let _ = write!(place, ", column {column}");
                }
            }
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            push_part(&mut place, &format!("field {field}"));
        }
        if let Some(value) = &self.value {
            push_part(
                &mut place,
                &format!("value {:?}", shorten(value, MAX_VALUE_CHARS)),
            );
        }
        let mut message = shorten(&one_line(&self.message), MAX_MESSAGE_CHARS);
        if let Some(exception) = &self.exception {
            let _ = write!(message, " (Odoo: {exception})");
        }
        if place.is_empty() {
            message
        } else {
            format!("{place}: {message}")
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "line": self.line,
            "column": self.column,
            "record": self.record,
            "field": self.field,
            "value": self.value,
            "message": self.message,
            "exception": self.exception,
        })
    }
}

/// `1 record`, `2 records`.
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `was` for one, `were` for any other number.
fn was_were(n: u64) -> &'static str {
    if n == 1 { "was" } else { "were" }
}

/// `record 4` or `records 1-3, 5`, as many as the ranges hold.
fn numbered(ranges: &[RangeInclusive<u64>]) -> (String, u64) {
    let count = ranges.iter().map(|r| r.end() - r.start() + 1).sum();
    let noun = if count == 1 { "record" } else { "records" };
    (format!("{noun} {}", format_ranges(ranges)), count)
}

fn push_part(place: &mut String, part: &str) {
    if !place.is_empty() {
        place.push_str(", ");
    }
    place.push_str(part);
}

/// Messages from libxml2 and Odoo may span lines; the report keeps one problem per line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// How far the file got in Odoo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Records in the file, when it was read that far.
    pub total: Option<u64>,
    pub applied: u64,
    /// Records Odoo refused (or that could not be mapped).
    pub failed: u64,
    /// Which records (1-based) were applied, when known.
    pub applied_records: Option<Vec<RangeInclusive<u64>>>,
}

impl RecordCounts {
    /// Nothing reached Odoo (the file was stopped before, or `on_record_error = "fail_file"`).
    pub fn nothing_applied(total: Option<u64>, failed: u64) -> RecordCounts {
        RecordCounts {
            total,
            applied: 0,
            failed,
            applied_records: Some(Vec::new()),
        }
    }

    /// `applied` lists the record numbers (1-based, any order) Odoo accepted.
    pub fn with_applied(
        total: u64,
        applied: impl IntoIterator<Item = u64>,
        failed: u64,
    ) -> RecordCounts {
        let ranges = ranges(applied);
        let count = ranges.iter().map(|r| r.end() - r.start() + 1).sum();
        RecordCounts {
            total: Some(total),
            applied: count,
            failed,
            applied_records: Some(ranges),
        }
    }

    /// [`RecordCounts::with_applied`] from sorted, merged ranges (a large file's applied
    /// records are never listed one by one).
    pub fn with_applied_ranges(
        total: u64,
        applied: Vec<RangeInclusive<u64>>,
        failed: u64,
    ) -> RecordCounts {
        let count = applied.iter().map(|r| r.end() - r.start() + 1).sum();
        RecordCounts {
            total: Some(total),
            applied: count,
            failed,
            applied_records: Some(applied),
        }
    }

    /// The records (1-based) not applied, when the applied ones and the total are known.
    pub fn not_applied(&self) -> Option<Vec<RangeInclusive<u64>>> {
        let (total, applied) = (self.total?, self.applied_records.as_ref()?);
        let mut gaps = Vec::new();
        let mut next = 1;
        for range in applied {
            if *range.start() > next {
                gaps.push(next..=range.start() - 1);
            }
            next = next.max(range.end() + 1);
        }
        if next <= total {
            gaps.push(next..=total);
        }
        Some(gaps)
    }

    /// One or two sentences for "What was applied in Odoo:".
    fn describe(&self) -> String {
        if self.applied == 0 {
            return "nothing.".into();
        }
        let which = match &self.applied_records {
            Some(ranges) if !ranges.is_empty() => format!(" ({})", numbered(ranges).0),
            _ => String::new(),
        };
        match self.total {
            Some(1) if self.applied >= 1 => format!("the file's only record was applied{which}."),
            Some(total) if self.applied >= total => {
                format!("all {total} records were applied{which}.")
            }
            Some(total) => {
                let missing = match self.not_applied() {
                    Some(gaps) if !gaps.is_empty() => {
                        let (records, count) = numbered(&gaps);
                        format!("{records} {} not", was_were(count))
                    }
                    _ => {
                        let count = total - self.applied;
                        format!("{count} {} not", was_were(count))
                    }
                };
                format!(
                    "{} of {total} records {} applied{which}; {missing}.",
                    self.applied,
                    was_were(self.applied)
                )
            }
            None => format!(
                "{} {} applied{which}.",
                counted(self.applied, "record"),
                was_were(self.applied)
            ),
        }
    }
}

impl RecordCounts {
    /// After "What was applied in Odoo: nothing (dry run).": what a run without dry_run
    /// would send, or nothing when no record of the file would reach Odoo.
    fn describe_dry_run(&self) -> String {
        if self.applied == 0 {
            return String::new();
        }
        let which = match &self.applied_records {
            Some(ranges) if !ranges.is_empty() => format!(" ({})", numbered(ranges).0),
            _ => String::new(),
        };
        let sent = match self.total {
            Some(total) => format!("{} of {total} records{which}", self.applied),
            None => format!("{}{which}", counted(self.applied, "record")),
        };
        let missing = match self.not_applied() {
            Some(gaps) if !gaps.is_empty() => format!("; {} would not", numbered(&gaps).0),
            _ => String::new(),
        };
        format!(" A run without dry_run would send {sent} to Odoo{missing}.")
    }
}

/// Record numbers as ranges, sorted and merged: 1, 2, 3, 5 → 1-3, 5.
pub fn ranges(records: impl IntoIterator<Item = u64>) -> Vec<RangeInclusive<u64>> {
    let mut numbers: Vec<u64> = records.into_iter().collect();
    numbers.sort_unstable();
    numbers.dedup();
    let mut out: Vec<RangeInclusive<u64>> = Vec::new();
    for n in numbers {
        match out.last_mut() {
            Some(last) if *last.end() + 1 == n => *last = *last.start()..=n,
            _ => out.push(n..=n),
        }
    }
    out
}

/// `1-17, 19-40`; a long list ends in `…`.
pub fn format_ranges(ranges: &[RangeInclusive<u64>]) -> String {
    let mut parts: Vec<String> = ranges
        .iter()
        .take(MAX_LISTED_RANGES)
        .map(|r| {
            if r.start() == r.end() {
                r.start().to_string()
            } else {
                format!("{}-{}", r.start(), r.end())
            }
        })
        .collect();
    if ranges.len() > MAX_LISTED_RANGES {
        parts.push("…".into());
    }
    parts.join(", ")
}

/// An earlier attempt at the same content: when it ended and how.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlierAttempt {
    /// When it ended, in the partner's timezone.
    pub when: ZonedDateTime,
    /// In plain words: `failed` or `archived`.
    pub outcome: String,
}

/// Everything the error report of one failed file says.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReport {
    pub flow: String,
    /// The file's name in the inbox.
    pub file_name: String,
    pub inbox: String,
    /// The folder the file was moved to.
    pub error_folder: String,
    /// When it failed, in the partner's timezone.
    pub when: ZonedDateTime,
    /// 1 for the first attempt at this content, 2 for its first replay, …
    pub attempt: u32,
    /// The earlier attempts at the same content, oldest first.
    pub earlier: Vec<EarlierAttempt>,
    pub size: u64,
    /// Unknown when the download itself failed.
    pub sha256: Option<String>,
    pub stage: Stage,
    pub problems: Vec<Problem>,
    pub counts: RecordCounts,
    /// Written by a dry run: the file stays in its inbox, nothing was sent to Odoo, and
    /// `counts.applied` are the records that *would* have been sent.
    pub dry_run: bool,
}

impl ErrorReport {
    /// A report with no problems listed, no earlier attempts and nothing applied yet; fill
    /// the rest through the public fields.
    pub fn new(
        flow: impl Into<String>,
        file_name: impl Into<String>,
        inbox: impl Into<String>,
        error_folder: impl Into<String>,
        when: ZonedDateTime,
        stage: Stage,
    ) -> ErrorReport {
        ErrorReport {
            flow: flow.into(),
            file_name: file_name.into(),
            inbox: inbox.into(),
            error_folder: error_folder.into(),
            when,
            attempt: 1,
            earlier: Vec::new(),
            size: 0,
            sha256: None,
            stage,
            problems: Vec::new(),
            counts: RecordCounts::default(),
            dry_run: false,
        }
    }

    /// How to process the file again, in one sentence.
    pub fn replay_instruction(&self) -> String {
        let fix = match self.stage {
            Stage::Odoo => "fix the file (or the Odoo data it refers to)",
            Stage::Download => "make sure the file can be read",
            Stage::Poison => {
                "find out what stops edi-bridge on this file (its log, memory, the size of the \
                 file, a timeout), fix that"
            }
            _ => "fix the file",
        };
        if self.stage == Stage::Stale && !self.dry_run {
            return format!(
                "to apply this older report on purpose anyway (setting the stock back to it), run \
                 `edi-bridge replay {} {} --force-stale`. It will be processed as attempt {}.",
                shell_word(&self.flow),
                shell_word(&self.file_name),
                self.attempt + 1
            );
        }
        if self.dry_run {
            // The file never left the inbox: there is nothing to move back.
            return format!(
                "{fix} in {} before a run without dry_run takes it; as it is, that run \
                 moves it to {} with this report.",
                self.inbox, self.error_folder
            );
        }
        format!(
            "{fix} and move it back to {} (or run `edi-bridge replay {} {}`). It will be processed \
             as attempt {}.",
            self.inbox,
            shell_word(&self.flow),
            shell_word(&self.file_name),
            self.attempt + 1
        )
    }

    /// The `.error.txt` report.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let title = format!("edi-bridge could not process {}", self.file_name);
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "{}", "=".repeat(title.chars().count()));
        let _ = writeln!(out);
        if self.dry_run {
            let _ = writeln!(
                out,
                "Dry run: this is the report the file would get. It was left in its inbox and \
                 nothing was sent to Odoo."
            );
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "Flow:      {}", self.flow);
        let _ = writeln!(out, "When:      {}", long_time(&self.when));
        let _ = writeln!(out, "Attempt:   {}", self.attempt_line());
        let mut file = format!("{}, {} bytes", self.file_name, self.size);
        if let Some(sha) = &self.sha256 {
            let _ = write!(file, ", sha256 {sha}");
        }
        let _ = writeln!(out, "File:      {file}");
        let _ = writeln!(out, "Inbox:     {}", self.inbox);
        if self.dry_run {
            let _ = writeln!(
                out,
                "Moved to:  nowhere (dry run); a run without dry_run moves it to {}",
                self.error_folder
            );
        } else {
            let _ = writeln!(out, "Moved to:  {}", self.error_folder);
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "What failed: {}", self.stage.describe());
        // Lines that stand for problems not kept are counted, not listed.
        let listed = self.problems.iter().filter(|p| p.not_listed.is_none());
        let mut shown = 0u64;
        for problem in listed.take(MAX_LISTED_PROBLEMS) {
            let _ = writeln!(out, "  - {}", problem.render());
            shown += 1;
        }
        let more = self.problem_count() - shown;
        if more > 0 {
            let _ = writeln!(out, "  … and {}, not listed", counted(more, "more problem"));
        }
        let _ = writeln!(out);
        if self.dry_run {
            let _ = writeln!(
                out,
                "What was applied in Odoo: nothing (dry run).{}",
                self.counts.describe_dry_run()
            );
        } else {
            let _ = writeln!(out, "What was applied in Odoo: {}", self.counts.describe());
        }
        if self.counts.applied > 0 && !self.dry_run {
            let _ = writeln!(
                out,
                "Replaying the whole file is safe: records already applied are written again with \
                 the same values, nothing is created twice."
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "How to replay: {}", self.replay_instruction());
        out
    }

    /// Every problem found, listed or only counted.
    pub fn problem_count(&self) -> u64 {
        self.problems.iter().map(Problem::count).sum()
    }

    fn attempt_line(&self) -> String {
        if self.earlier.is_empty() {
            return self.attempt.to_string();
        }
        let earlier: Vec<String> = self
            .earlier
            .iter()
            .map(|e| format!("{} {}", e.when.strftime("%Y-%m-%d %H:%M"), e.outcome))
            .collect();
        format!("{} (earlier: {})", self.attempt, earlier.join(", "))
    }

    /// The `.error.json` twin: the same facts, every problem, nothing shortened.
    pub fn to_json(&self) -> Value {
        json!({
            "flow": self.flow,
            "file": self.file_name,
            "inbox": self.inbox,
            "error_folder": self.error_folder,
            "when": rfc3339(&self.when),
            "time_zone": self.when.time_zone().iana_name(),
            "attempt": self.attempt,
            "earlier_attempts": self.earlier.iter().map(|e| json!({
                "when": rfc3339(&e.when),
                "outcome": e.outcome,
            })).collect::<Vec<_>>(),
            "size": self.size,
            "sha256": self.sha256,
            "stage": self.stage.as_str(),
            // The line standing for problems not kept comes last, wherever it was put.
            "problems": self
                .problems
                .iter()
                .filter(|p| p.not_listed.is_none())
                .chain(self.problems.iter().filter(|p| p.not_listed.is_some()))
                .map(Problem::to_json)
                .collect::<Vec<_>>(),
            "records": if self.dry_run {
                json!({
                    "total": self.counts.total,
                    "applied": 0,
                    "failed": self.counts.failed,
                    "applied_records": [],
                    "would_apply": self.counts.applied,
                    "would_apply_records": self.counts.applied_records.as_ref().map(|r| ranges_json(r)),
                })
            } else {
                json!({
                    "total": self.counts.total,
                    "applied": self.counts.applied,
                    "failed": self.counts.failed,
                    "applied_records": self.counts.applied_records.as_ref().map(|r| ranges_json(r)),
                    "not_applied_records": self.counts.not_applied().map(|r| ranges_json(&r)),
                })
            },
            "replay": self.replay_instruction(),
            "next_attempt": self.attempt + 1,
            "dry_run": self.dry_run,
        })
    }
}

fn ranges_json(ranges: &[RangeInclusive<u64>]) -> Value {
    ranges.iter().map(|r| json!([r.start(), r.end()])).collect()
}

/// `2026-11-27 09:15:02 CET (Europe/Brussels)`.
fn long_time(when: &ZonedDateTime) -> String {
    let mut text = when.strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
    if let Some(name) = when.time_zone().iana_name() {
        let _ = write!(text, " ({name})");
    }
    text
}

/// `2026-11-27T09:15:02+01:00`.
fn rfc3339(when: &ZonedDateTime) -> String {
    when.timestamp()
        .display_with_offset(when.offset())
        .to_string()
}

/// A name as one word of a shell command, quoted only when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+@%:,=/".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> ZonedDateTime {
        text.parse().unwrap()
    }

    fn validation_report() -> ErrorReport {
        let mut report = ErrorReport::new(
            "acme-products",
            "products-0042.xml",
            "/out/products",
            "/out/products/error",
            at("2026-11-27T09:15:02+01:00[Europe/Brussels]"),
            Stage::Validation,
        );
        report.attempt = 2;
        report.earlier = vec![EarlierAttempt {
            when: at("2026-11-27T08:00:00+01:00[Europe/Brussels]"),
            outcome: "failed".into(),
        }];
        report.size = 1834;
        report.sha256 =
            Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into());
        report.problems = vec![
            Problem::new(
                "Element 'Price': 'twelve' is not a valid value of the atomic type 'xs:decimal'.\n",
            )
            .at(12, Some(7)),
        ];
        report.counts = RecordCounts::nothing_applied(None, 0);
        report
    }

    #[test]
    fn the_text_says_flow_attempt_place_and_how_to_replay() {
        let text = validation_report().render_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "edi-bridge could not process products-0042.xml");
        assert!(lines.contains(&"Flow:      acme-products"), "{text}");
        assert!(
            lines.contains(&"When:      2026-11-27 09:15:02 CET (Europe/Brussels)"),
            "{text}"
        );
        assert!(
            lines.contains(&"Attempt:   2 (earlier: 2026-11-27 08:00 failed)"),
            "{text}"
        );
        assert!(
            lines.contains(
                &"  - line 12, column 7: Element 'Price': 'twelve' is not a valid value of the \
                  atomic \
                  type 'xs:decimal'."
            ),
            "{text}"
        );
        assert!(
            lines.contains(&"What was applied in Odoo: nothing."),
            "{text}"
        );
        assert!(
            lines.contains(
                &"How to replay: fix the file and move it back to /out/products (or run \
                  `edi-bridge replay acme-products products-0042.xml`). It will be processed as \
                  attempt 3."
            ),
            "{text}"
        );
        assert!(text.contains("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
    }

    #[test]
    fn a_first_attempt_shows_no_earlier_ones() {
        let mut report = validation_report();
        report.attempt = 1;
        report.earlier.clear();
        let text = report.render_text();
        assert!(text.lines().any(|l| l == "Attempt:   1"), "{text}");
        assert!(text.contains("It will be processed as attempt 2."));
    }

    #[test]
    fn problems_name_the_record_field_value_and_odoo_exception() {
        let mapping = Problem::new("not a number")
            .record(3)
            .at(40, None)
            .field("list_price")
            .value("twelve");
        assert_eq!(
            mapping.render(),
            r#"record 3 (line 40), field list_price, value "twelve": not a number"#
        );
        let odoo = Problem::new("The Internal Reference 'X1' already exists.")
            .record(9)
            .field("default_code")
            .exception("odoo.exceptions.ValidationError");
        assert_eq!(
            odoo.render(),
            "record 9, field default_code: The Internal Reference 'X1' already exists. \
             (Odoo: odoo.exceptions.ValidationError)"
        );
        assert_eq!(
            Problem::new("the file is larger than 100 MB").render(),
            "the file is larger than 100 MB"
        );
        // Hostile values stay on one line and short.
        let long = Problem::new("bad").value(format!("a\nb{}", "x".repeat(500)));
        let shown = long.render();
        assert!(
            !shown.contains('\n') && shown.contains(r#""a\nbxxx"#) && shown.chars().count() < 100,
            "{shown}"
        );
    }

    #[test]
    fn partial_application_lists_the_records_applied_and_not() {
        let mut report = validation_report();
        report.stage = Stage::Odoo;
        let refused = [4, 9, 13];
        report.counts =
            RecordCounts::with_applied(20, (1..=20).filter(|n| !refused.contains(n)), 3);
        report.problems = refused
            .iter()
            .map(|&r| {
                Problem::new("Invalid field value")
                    .record(r)
                    .exception("odoo.exceptions.ValidationError")
            })
            .collect();
        let text = report.render_text();
        assert!(
            text.contains(
                "What was applied in Odoo: 17 of 20 records were applied (records 1-3, 5-8, \
                 10-12, 14-20); \
                 records 4, 9, 13 were not."
            ),
            "{text}"
        );
        assert!(text.contains("Replaying the whole file is safe"), "{text}");
        assert!(text.contains(
            "How to replay: fix the file (or the Odoo data it refers to) and move it back"
        ));
        assert!(text.contains("Odoo refused some records."));
        let json = report.to_json();
        assert_eq!(json["records"]["applied"], 17);
        assert_eq!(
            json["records"]["not_applied_records"],
            serde_json::json!([[4, 4], [9, 9], [13, 13]])
        );
        assert_eq!(json["problems"][1]["record"], 9);
    }

    #[test]
    fn a_dry_run_report_never_claims_records_were_applied() {
        let mut report = validation_report();
        report.stage = Stage::Mapping;
        report.dry_run = true;
        report.counts = RecordCounts::with_applied(5, [1, 2, 3, 5], 1);
        let text = report.render_text();
        assert!(
            text.contains("Dry run: this is the report the file would get."),
            "{text}"
        );
        assert!(
            text.contains(
                "What was applied in Odoo: nothing (dry run). A run without dry_run would send 4 \
                 of 5 records (records 1-3, 5) to Odoo; record 4 would not."
            ),
            "{text}"
        );
        assert!(!text.contains("were applied"), "{text}");
        assert!(!text.contains("Replaying the whole file is safe"), "{text}");
        assert!(
            text.contains("Moved to:  nowhere (dry run); a run without dry_run moves it to"),
            "{text}"
        );
        let json = report.to_json();
        assert_eq!(json["dry_run"], true);
        // Nothing to move back: the file is still in its inbox.
        let replay = json["replay"].as_str().unwrap();
        assert!(!replay.contains("move it back"), "{replay}");
        assert!(
            replay.contains("before a run without dry_run takes it"),
            "{replay}"
        );
        assert_eq!(json["records"]["applied"], 0);
        assert_eq!(json["records"]["would_apply"], 4);

        report.counts = RecordCounts::nothing_applied(None, 2);
        let text = report.render_text();
        assert!(
            text.lines()
                .any(|l| l == "What was applied in Odoo: nothing (dry run)."),
            "{text}"
        );
    }

    #[test]
    fn applied_counts_without_record_numbers_still_read_well() {
        let counts = RecordCounts {
            total: Some(20),
            applied: 17,
            failed: 3,
            applied_records: None,
        };
        assert_eq!(
            counts.describe(),
            "17 of 20 records were applied; 3 were not."
        );
        let all = RecordCounts::with_applied(5, 1..=5, 0);
        assert_eq!(all.describe(), "all 5 records were applied (records 1-5).");
        let unknown_total = RecordCounts {
            total: None,
            applied: 40,
            failed: 1,
            applied_records: None,
        };
        assert_eq!(unknown_total.describe(), "40 records were applied.");
    }

    #[test]
    fn ranges_merge_and_complement() {
        let r = ranges([5, 1, 2, 3, 3, 19, 20, 21]);
        assert_eq!(format_ranges(&r), "1-3, 5, 19-21");
        let counts = RecordCounts::with_applied(25, [5, 1, 2, 3, 19, 20, 21], 0);
        assert_eq!(counts.applied, 7);
        assert_eq!(
            format_ranges(&counts.not_applied().unwrap()),
            "4, 6-18, 22-25"
        );
        let scattered = ranges((1..=100).step_by(2));
        assert!(format_ranges(&scattered).ends_with(", …"));
    }

    #[test]
    fn a_long_list_of_problems_is_cut_short() {
        let mut report = validation_report();
        report.problems = (1..=180)
            .map(|n| Problem::new("Missing child element 'Name'.").at(n * 3, Some(5)))
            .collect();
        let text = report.render_text();
        assert!(text.lines().count() < 100, "{} lines", text.lines().count());
        assert!(text.contains("  - line 150, column 5: Missing child element 'Name'."));
        assert!(!text.contains("line 153,"));
        assert!(text.contains("  … and 130 more"));
        assert_eq!(
            report.to_json()["problems"].as_array().unwrap().len(),
            180,
            "the JSON twin keeps them all"
        );
    }

    #[test]
    fn problems_not_kept_are_counted_exactly_and_come_last() {
        // Mapping keeps 100 problems of 1334 and says so with one line, which Odoo's problems
        // (sorted by record) may have pushed to the front.
        let mut report = validation_report();
        report.stage = Stage::Mapping;
        report.problems = std::iter::once(Problem::not_listed(1234))
            .chain((1..=100).map(|n| Problem::new("missing value at path P").record(n)))
            .collect();
        assert_eq!(report.problem_count(), 1334);
        let text = report.render_text();
        let listed: Vec<&str> = text.lines().filter(|l| l.starts_with("  - ")).collect();
        assert_eq!(listed.len(), MAX_LISTED_PROBLEMS);
        assert_eq!(listed[0], "  - record 1: missing value at path P");
        assert!(
            text.contains("  … and 1284 more problems, not listed\n"),
            "1334 found, 50 listed:\n{text}"
        );
        assert_eq!(text.matches("more problem").count(), 1, "{text}");
        let json = report.to_json();
        let problems = json["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 101);
        assert_eq!(
            problems[100]["message"],
            "… and 1234 more problems, not listed"
        );

        // Fewer than the report lists: only what was not kept is counted.
        report.problems.truncate(11);
        let text = report.render_text();
        assert_eq!(text.lines().filter(|l| l.starts_with("  - ")).count(), 10);
        assert!(
            text.contains("  … and 1234 more problems, not listed"),
            "{text}"
        );
        report.problems[0] = Problem::not_listed(1);
        assert!(
            report
                .render_text()
                .contains("  … and 1 more problem, not listed"),
            "{}",
            report.render_text()
        );
    }

    #[test]
    fn counts_of_one_are_singular() {
        assert_eq!(counted(1, "record"), "1 record");
        assert_eq!(counted(0, "problem"), "0 problems");
        assert_eq!(counted(2, "operation"), "2 operations");
        let one_of_two = RecordCounts::with_applied(2, [1], 1);
        assert_eq!(
            one_of_two.describe(),
            "1 of 2 records was applied (record 1); record 2 was not."
        );
        let only = RecordCounts::with_applied(1, [1], 0);
        assert_eq!(
            only.describe(),
            "the file's only record was applied (record 1)."
        );
        let no_numbers = RecordCounts {
            total: Some(3),
            applied: 2,
            failed: 1,
            applied_records: None,
        };
        assert_eq!(
            no_numbers.describe(),
            "2 of 3 records were applied; 1 was not."
        );
        let unknown_total = RecordCounts {
            total: None,
            applied: 1,
            failed: 0,
            applied_records: Some(vec![4..=4]),
        };
        assert_eq!(unknown_total.describe(), "1 record was applied (record 4).");
    }

    #[test]
    fn record_zero_is_no_place_in_the_file() {
        // What a full snapshot set to 0 belongs to no record of the file.
        let zeroed = Problem::new("setting FURN-DESK-160 in WH/Stock to 0: Access denied")
            .record(0)
            .at(0, None)
            .exception("odoo.exceptions.AccessError");
        assert_eq!(
            zeroed.render(),
            "setting FURN-DESK-160 in WH/Stock to 0: Access denied \
             (Odoo: odoo.exceptions.AccessError)"
        );
    }

    #[test]
    fn unusual_names_are_quoted_in_the_replay_command() {
        let mut report = validation_report();
        report.file_name = "Bestand van Jan's.xml".into();
        assert!(
            report
                .replay_instruction()
                .contains(r#"`edi-bridge replay acme-products 'Bestand van Jan'\''s.xml'`"#),
            "{}",
            report.replay_instruction()
        );
    }

    #[test]
    fn the_json_twin_carries_the_same_facts() {
        let json = validation_report().to_json();
        assert_eq!(json["flow"], "acme-products");
        assert_eq!(json["file"], "products-0042.xml");
        assert_eq!(json["when"], "2026-11-27T09:15:02+01:00");
        assert_eq!(json["time_zone"], "Europe/Brussels");
        assert_eq!(json["attempt"], 2);
        assert_eq!(json["next_attempt"], 3);
        assert_eq!(
            json["earlier_attempts"][0]["when"],
            "2026-11-27T08:00:00+01:00"
        );
        assert_eq!(json["earlier_attempts"][0]["outcome"], "failed");
        assert_eq!(json["stage"], "validation");
        assert_eq!(json["problems"][0]["line"], 12);
        assert_eq!(json["problems"][0]["column"], 7);
        assert_eq!(json["problems"][0]["record"], serde_json::Value::Null);
        assert_eq!(json["records"]["applied"], 0);
        assert_eq!(json["size"], 1834);
        assert!(json["replay"].as_str().unwrap().contains("/out/products"));
    }
}
