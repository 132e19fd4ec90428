//! What a benchmark found, kept per run and as medians over runs: printed
//! as one markdown table, written and read back as JSON (a later run's
//! baseline).
//!
//! This module computes nothing from requests: it receives each run's
//! figures and only takes medians and ratios.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Everything a benchmark found, with what it ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    /// `sqlite` or `postgres`.
    pub(crate) backend: String,
    pub(crate) machine: Machine,
    /// When the benchmark started (RFC 3339, UTC).
    pub(crate) date: String,
    /// The settings it ran with.
    pub(crate) settings: serde_json::Value,
    /// One row per phase and number of connections, in the order measured.
    pub(crate) rows: Vec<Row>,
    /// p50 of token authentication ÷ p50 of session authentication.
    pub(crate) token_vs_session: Ratio,
}

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Machine {
    /// Processors available to the benchmark (what `nproc` says).
    pub(crate) cpus: usize,
    /// The first `model name` of /proc/cpuinfo.
    pub(crate) model: String,
}

/// A phase at one number of connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    /// `create`, `healthz`, `GET user by id`, …
    pub(crate) phase: String,
    pub(crate) connections: usize,
    /// The median of each figure over the runs, except `errors`: their sum.
    pub(crate) median: Figures,
    pub(crate) runs: Vec<Figures>,
}

/// What one phase measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Figures {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) requests_per_second: f64,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    /// iamd's CPU time (user and system) per request; the database server's,
    /// when it is PostgreSQL, is not counted.
    pub(crate) cpu_us_per_request: Option<f64>,
    /// Requests per second ÷ those of `/healthz` at the same connections in
    /// the same run.
    pub(crate) vs_healthz: Option<f64>,
}

/// A ratio measured in every run, and its median.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Ratio {
    pub(crate) median: Option<f64>,
    pub(crate) runs: Vec<Option<f64>>,
}

impl Report {
    /// An empty report of a benchmark on `backend`.
    pub(crate) fn new(backend: &str, settings: serde_json::Value) -> Self {
        Self {
            backend: backend.to_owned(),
            machine: Machine::this_one(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            settings,
            rows: Vec::new(),
            token_vs_session: Ratio::default(),
        }
    }

    /// Adds one run's figures for `phase` at `connections`, and updates the
    /// medians. A new row goes after the other rows of its phase, so that
    /// phases measured in turn at each number of connections still read as
    /// one block each.
    pub(crate) fn record(&mut self, phase: &str, connections: usize, figures: Figures) {
        let index = match self
            .rows
            .iter()
            .position(|row| row.phase == phase && row.connections == connections)
        {
            Some(index) => index,
            None => {
                let index = self
                    .rows
                    .iter()
                    .rposition(|row| row.phase == phase)
                    .map_or(self.rows.len(), |last| last + 1);
                let row = Row {
                    phase: phase.to_owned(),
                    connections,
                    median: Figures::default(),
                    runs: Vec::new(),
                };
                self.rows.insert(index, row);
                index
            }
        };
        let row = &mut self.rows[index];
        row.runs.push(figures);
        row.median = Figures::median_of(&row.runs);
    }

    /// Adds one run's token ÷ session ratio.
    pub(crate) fn record_token_vs_session(&mut self, ratio: Option<f64>) {
        self.token_vs_session.runs.push(ratio);
        self.token_vs_session.median = median(self.token_vs_session.runs.iter().flatten().copied());
    }

    /// The rows where a request failed.
    pub(crate) fn failed_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|row| row.median.errors > 0)
    }

    /// Reads a report written by `write_json`.
    pub(crate) fn read_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a benchmark report", path.display()))
    }

    /// Writes the report as JSON.
    pub(crate) fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("cannot encode the report")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The markdown table of medians, with a column comparing each row's
    /// requests per second with `baseline`'s, when there is one.
    pub(crate) fn markdown(&self, baseline: Option<&Report>) -> String {
        let runs = self.rows.first().map_or(0, |row| row.runs.len());
        let cpu_note = match self.backend.as_str() {
            "sqlite" => "",
            _ => "; iamd CPU leaves out the database server's",
        };
        let mut text = format!(
            "backend: {} · machine: {} × {} · {}\n\
             medians over {runs} run(s){cpu_note}\n\n",
            self.backend, self.machine.cpus, self.machine.model, self.date
        );
        text.push_str(
            "| phase | connections | requests/s | p50 ms | p99 ms | iamd CPU µs/req | vs /healthz |",
        );
        if baseline.is_some() {
            text.push_str(" requests/s vs baseline |");
        }
        text.push_str("\n|---|---:|---:|---:|---:|---:|---:|");
        if baseline.is_some() {
            text.push_str("---:|");
        }
        text.push('\n');
        for row in &self.rows {
            let figures = &row.median;
            // Writing to a String cannot fail.
            let _ = write!(
                text,
                "| {} | {} | {:.0} | {} | {} | {} | {} |",
                row.phase,
                row.connections,
                figures.requests_per_second,
                decimal(figures.p50_ms, 2),
                decimal(figures.p99_ms, 2),
                decimal(figures.cpu_us_per_request, 0),
                decimal(figures.vs_healthz, 2),
            );
            if let Some(baseline) = baseline {
                let _ = write!(text, " {} |", decimal(baseline_ratio(row, baseline), 2));
            }
            text.push('\n');
        }
        let _ = writeln!(
            text,
            "\ntoken/session p50: {}",
            decimal(self.token_vs_session.median, 2)
        );
        text
    }
}

impl Figures {
    /// The median of each figure over `runs`; errors are summed, so that
    /// one failing run shows.
    fn median_of(runs: &[Figures]) -> Figures {
        let of = |figure: fn(&Figures) -> Option<f64>| median(runs.iter().filter_map(figure));
        Figures {
            requests: of(|figures| Some(figures.requests as f64)).map_or(0, |value| value as u64),
            errors: runs.iter().map(|figures| figures.errors).sum(),
            requests_per_second: of(|figures| Some(figures.requests_per_second)).unwrap_or(0.0),
            p50_ms: of(|figures| figures.p50_ms),
            p99_ms: of(|figures| figures.p99_ms),
            cpu_us_per_request: of(|figures| figures.cpu_us_per_request),
            vs_healthz: of(|figures| figures.vs_healthz),
        }
    }
}

impl Machine {
    /// The machine this process runs on.
    pub(crate) fn this_one() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|cpuinfo| cpu_model(&cpuinfo))
            .unwrap_or_else(|| "unknown processor".to_owned());
        Self { cpus, model }
    }
}

/// The first `model name` of a /proc/cpuinfo text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// The median of `values` (the mean of the middle two for an even count);
/// `None` when there are none.
pub(crate) fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        len if len % 2 == 1 => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2.0),
    }
}

/// `row`'s median requests per second ÷ that of the same phase and
/// connections in `baseline`; `None` when the baseline has no such row or
/// measured nothing there.
fn baseline_ratio(row: &Row, baseline: &Report) -> Option<f64> {
    let old = baseline
        .rows
        .iter()
        .find(|old| old.phase == row.phase && old.connections == row.connections)?;
    (old.median.requests_per_second > 0.0)
        .then(|| row.median.requests_per_second / old.median.requests_per_second)
}

fn decimal(value: Option<f64>, places: usize) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{value:.places$}"),
        _ => "–".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(requests_per_second: f64, p50_ms: f64, errors: u64) -> Figures {
        Figures {
            requests: 100,
            errors,
            requests_per_second,
            p50_ms: Some(p50_ms),
            ..Figures::default()
        }
    }

    fn report_with(rows: &[(&str, usize, f64)]) -> Report {
        let mut report = Report::new("sqlite", serde_json::json!({}));
        for &(phase, connections, rate) in rows {
            report.record(phase, connections, figures(rate, 1.0, 0));
        }
        report
    }

    #[test]
    fn median_takes_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), Some(2.5));
        assert_eq!(median([7.0].into_iter()), Some(7.0));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn a_row_keeps_every_run_and_the_median_of_each_figure() {
        let mut report = Report::new("sqlite", serde_json::json!({}));
        report.record("create", 16, figures(900.0, 3.0, 0));
        report.record("create", 16, figures(1100.0, 1.0, 2));
        report.record("create", 16, figures(1000.0, 2.0, 0));
        report.record("healthz", 16, figures(9000.0, 0.2, 0));
        report.record("create", 64, figures(500.0, 1.0, 0));
        let order: Vec<(&str, usize)> = report
            .rows
            .iter()
            .map(|row| (row.phase.as_str(), row.connections))
            .collect();
        assert_eq!(order, [("create", 16), ("create", 64), ("healthz", 16)]);
        let row = &report.rows[0];
        assert_eq!(row.runs.len(), 3);
        assert_eq!(row.median.requests_per_second, 1000.0);
        assert_eq!(row.median.p50_ms, Some(2.0));
        assert_eq!(row.median.errors, 2, "errors add up over runs");
        assert_eq!(row.median.cpu_us_per_request, None);
        assert_eq!(report.failed_rows().count(), 1);
    }

    #[test]
    fn baseline_ratio_compares_the_same_phase_and_connections() {
        let old = report_with(&[("create", 1, 400.0), ("create", 16, 1000.0)]);
        let new = report_with(&[("create", 16, 1500.0), ("healthz", 16, 9000.0)]);
        assert_eq!(baseline_ratio(&new.rows[0], &old), Some(1.5));
        assert_eq!(
            baseline_ratio(&new.rows[1], &old),
            None,
            "not in the baseline"
        );
        let zero = report_with(&[("create", 16, 0.0)]);
        assert_eq!(baseline_ratio(&new.rows[0], &zero), None);
    }

    #[test]
    fn a_report_reads_back_what_it_wrote() {
        let mut report = report_with(&[("create", 64, 1234.4)]);
        report.record_token_vs_session(Some(1.1));
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("bench.json");
        report.write_json(&path).unwrap();
        let read = Report::read_json(&path).unwrap();
        assert_eq!(read.rows[0].median.requests_per_second, 1234.4);
        assert_eq!(read.token_vs_session.median, Some(1.1));
        assert!(
            report
                .markdown(Some(&read))
                .contains("| create | 64 | 1234 | 1.00 | – | – | – | 1.00 |")
        );
    }

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n\
                       processor\t: 1\nmodel name\t: Other\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
    }
}
