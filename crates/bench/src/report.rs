//! Latency histograms and the output: a table for people, then one JSON line for
//! scripts (`peace-bench ... | tail -1 | jq`).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// Latencies in microseconds, from 1 µs to 5 minutes at three significant digits.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

const MAX_MICROS: u64 = 300_000_000;

impl Default for Latency {
    fn default() -> Self {
        // The bounds are constants that hdrhistogram accepts, so this cannot fail.
        #[allow(clippy::expect_used)]
        Self(Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    /// p50, p90, p99 and max as JSON fields under `prefix`.
    pub fn fields(&self, prefix: &str, report: &mut Report) {
        report.num(&format!("{prefix}_p50_ms"), self.ms(0.5));
        report.num(&format!("{prefix}_p90_ms"), self.ms(0.9));
        report.num(&format!("{prefix}_p99_ms"), self.ms(0.99));
        report.num(&format!("{prefix}_max_ms"), self.max_ms());
    }
}

/// The result of one scenario, in insertion order.
#[derive(Debug)]
pub struct Report {
    /// In the order the scenario added them (a JSON object's keys would be sorted).
    fields: Vec<(String, Value)>,
}

impl Report {
    pub fn new(scenario: &str) -> Self {
        let mut report = Self { fields: Vec::new() };
        report.set("scenario", json!(scenario));
        report
    }

    fn set(&mut self, key: &str, value: Value) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.fields.push((key.to_owned(), value)),
        }
    }

    pub fn num(&mut self, key: &str, value: f64) {
        // Rounded to what is meaningful on a noisy machine.
        let rounded = (value * 1000.0).round() / 1000.0;
        self.set(key, json!(rounded));
    }

    pub fn int(&mut self, key: &str, value: u64) {
        self.set(key, json!(value));
    }

    pub fn text(&mut self, key: &str, value: impl Into<String>) {
        self.set(key, json!(value.into()));
    }

    pub fn flag(&mut self, key: &str, value: bool) {
        self.set(key, json!(value));
    }

    /// Prints the table, then the JSON line (always last).
    pub fn print(&self) {
        let width = self.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        println!("{:-<1$}", "", width + 24);
        for (key, value) in &self.fields {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{key:<width$}  {value}");
        }
        println!("{:-<1$}", "", width + 24);
        let object: Map<String, Value> = self.fields.iter().cloned().collect();
        // serde_json's map sorts keys; the line is for machines, so that is fine.
        println!("{}", Value::Object(object));
    }
}
