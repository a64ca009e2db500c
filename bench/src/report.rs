//! What a benchmark hands back: figures (each with its baseline from the same run, ratio and
//! target) for the summary table, and a section of Markdown with its method and details.

use crate::util::Stats;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ms,
    /// Percent of one core.
    PctCore,
}

impl Unit {
    pub fn fmt(self, v: f64) -> String {
        match self {
            Unit::Ms if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
            Unit::Ms if v >= 100.0 => format!("{v:.0} ms"),
            Unit::Ms if v >= 10.0 => format!("{v:.1} ms"),
            Unit::Ms => format!("{v:.2} ms"),
            Unit::PctCore => format!("{v:.4} %"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Ours at most this many times the baseline.
    Ratio(f64),
    /// Ours below this value (in the figure's unit).
    Below(f64),
    /// Ours at most this much beyond the baseline (in the figure's unit).
    Beyond(f64),
    None,
}

#[derive(Debug, Clone)]
pub struct Figure {
    pub bench: &'static str,
    pub what: String,
    pub unit: Unit,
    pub ours: Stats,
    /// What the baseline is, and its samples.
    pub baseline: Option<(String, Stats)>,
    pub target: Target,
}

impl Figure {
    pub fn new(bench: &'static str, what: impl Into<String>, unit: Unit, ours: Stats) -> Figure {
        Figure { bench, what: what.into(), unit, ours, baseline: None, target: Target::None }
    }
    pub fn against(mut self, what: impl Into<String>, s: Stats) -> Figure {
        self.baseline = Some((what.into(), s));
        self
    }
    pub fn target(mut self, t: Target) -> Figure {
        self.target = t;
        self
    }
    pub fn ratio(&self) -> Option<f64> {
        self.baseline.as_ref().map(|(_, b)| self.ours.median() / b.median())
    }
    pub fn met(&self) -> Option<bool> {
        let o = self.ours.median();
        if o.is_nan() {
            return Some(false);
        }
        match self.target {
            Target::Ratio(r) => self.ratio().map(|x| x <= r),
            Target::Below(v) => Some(o < v),
            Target::Beyond(v) => self.baseline.as_ref().map(|(_, b)| o - b.median() <= v),
            Target::None => None,
        }
    }
    pub fn target_text(&self) -> String {
        match self.target {
            Target::Ratio(r) => format!("≤ {r}×"),
            Target::Below(v) => format!("< {}", self.unit.fmt(v)),
            Target::Beyond(v) => format!("≤ +{} beyond", self.unit.fmt(v)),
            Target::None => "-".into(),
        }
    }
    fn cell(&self, s: &Stats) -> String {
        if s.len() == 0 || s.median().is_nan() {
            return "not measured".into();
        }
        if s.len() == 1 {
            return self.unit.fmt(s.median());
        }
        format!("{} ({}-{}, n={})", self.unit.fmt(s.median()), self.unit.fmt(s.min()), self.unit.fmt(s.max()), s.len())
    }
    pub fn ours_cell(&self) -> String {
        self.cell(&self.ours)
    }
    pub fn baseline_cell(&self) -> String {
        match &self.baseline {
            Some((w, s)) => format!("{}: {}", w, self.cell(s)),
            None => "-".into(),
        }
    }
    pub fn ratio_cell(&self) -> String {
        match (self.ratio(), self.target) {
            (Some(r), Target::Beyond(_)) => {
                format!("{r:.2}× (+{})", self.unit.fmt(self.ours.median() - self.baseline.as_ref().unwrap().1.median()))
            }
            (Some(r), _) if r.is_finite() => format!("{r:.2}×"),
            _ => "-".into(),
        }
    }
    pub fn met_cell(&self) -> &'static str {
        match self.met() {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "-",
        }
    }
    /// One line for the terminal.
    pub fn line(&self) -> String {
        format!(
            "{:<11} {:<58} {:>30}  vs {:<48} {:>14}  {:<16} {}",
            self.bench,
            self.what,
            self.ours_cell(),
            self.baseline_cell(),
            self.ratio_cell(),
            self.target_text(),
            self.met_cell().trim_matches('*')
        )
    }
    /// One row of the Markdown summary table.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            self.bench,
            self.what,
            self.ours_cell(),
            self.baseline_cell(),
            self.ratio_cell(),
            self.target_text(),
            self.met_cell()
        )
    }
}

/// One benchmark's result.
pub struct Section {
    pub name: &'static str,
    pub title: String,
    pub figures: Vec<Figure>,
    /// Method, detail tables, diagnostics.
    pub markdown: String,
    /// The load average when it started (the machine is shared).
    pub load: String,
}

impl Section {
    pub fn new(name: &'static str, title: impl Into<String>) -> Section {
        Section { name, title: title.into(), figures: Vec::new(), markdown: String::new(), load: crate::util::loadavg() }
    }
    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.markdown, "{}\n", text.trim());
    }
    pub fn skipped(name: &'static str, title: impl Into<String>, why: &str) -> Section {
        let mut s = Section::new(name, title);
        s.para(&format!("Not measured: {why}."));
        s
    }
}

pub const SUMMARY_HEADER: &str =
    "| benchmark | measurement | ours: median (min-max, runs) | baseline in the same run | ratio | target | |\n|---|---|---:|---|---:|---|---|";
