//! The result table: one row per workload, columns raw / cosmount / s3fs /
//! rclone, and cosmount's ratio to each. A ratio is cosmount's advantage:
//! above 1 means cosmount is better (faster, more throughput, less memory),
//! whichever way the unit points; against raw it is the fraction of the
//! ceiling reached.

use std::collections::BTreeMap;

use crate::peers::Kind;
use crate::sys::Skip;

/// A column of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Col {
    /// Raw HTTP straight to the server.
    Raw,
    /// A mounter.
    Peer(Kind),
}

/// Which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Throughput, IOPS.
    Higher,
    /// Times, CPU, memory.
    Lower,
}

/// A row's description.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured.
    pub label: String,
    /// Unit of the numbers.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
    /// Whether raw HTTP has a counterpart.
    pub has_raw: bool,
}

/// One cell.
#[derive(Clone, Debug)]
pub enum Cell {
    /// The median of the repetitions.
    Value(f64),
    /// Not applicable (the peer has no such mode).
    NotApplicable,
    /// The measurement failed.
    Failed(String),
}

impl From<Result<f64, Skip>> for Cell {
    fn from(r: Result<f64, Skip>) -> Cell {
        match r {
            Ok(v) if v.is_finite() => Cell::Value(v),
            Ok(v) => Cell::Failed(format!("not a number: {v}")),
            Err(Skip::NotApplicable(_)) => Cell::NotApplicable,
            Err(Skip::Failed(why)) => Cell::Failed(why),
        }
    }
}

/// All rows and cells.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
    cells: BTreeMap<(usize, Col), Cell>,
}

impl Table {
    /// Adds a row; returns its index.
    pub fn row(
        &mut self,
        label: String,
        unit: &'static str,
        better: Better,
        has_raw: bool,
    ) -> usize {
        self.rows.push(Row {
            label,
            unit,
            better,
            has_raw,
        });
        self.rows.len() - 1
    }

    /// Sets a cell.
    pub fn set(&mut self, row: usize, col: Col, cell: Cell) {
        self.cells.insert((row, col), cell);
    }

    fn value(&self, row: usize, col: Col) -> Option<f64> {
        match self.cells.get(&(row, col)) {
            Some(Cell::Value(v)) => Some(*v),
            _ => None,
        }
    }

    /// Every failure, as (row label, column, why).
    pub fn failures(&self, peers: &[Kind]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            for col in columns(row, peers) {
                match self.cells.get(&(i, col)) {
                    Some(Cell::Failed(why)) => {
                        out.push(format!("{} / {}: {why}", row.label, col_name(col)))
                    }
                    None => out.push(format!("{} / {}: not measured", row.label, col_name(col))),
                    _ => {}
                }
            }
        }
        out
    }

    /// The Markdown table.
    pub fn render(&self, peers: &[Kind]) -> String {
        let mut head = String::from("| workload | unit | raw HTTP |");
        let mut rule = String::from("|---|---|---:|");
        for p in peers {
            head.push_str(&format!(" {} |", p.name()));
            rule.push_str("---:|");
        }
        if peers.contains(&Kind::Cosmount) {
            head.push_str(" cosmount ÷ raw |");
            rule.push_str("---:|");
            for p in peers.iter().filter(|&&p| p != Kind::Cosmount) {
                head.push_str(&format!(" cosmount vs {} |", p.name()));
                rule.push_str("---:|");
            }
        }
        let mut t = format!("{head}\n{rule}\n");
        for (i, row) in self.rows.iter().enumerate() {
            t.push_str(&format!("| {} | {} |", row.label, row.unit));
            let raw = match self.cells.get(&(i, Col::Raw)) {
                _ if !row.has_raw => "—".to_string(),
                cell => show(cell),
            };
            t.push_str(&format!(" {raw} |"));
            for &p in peers {
                t.push_str(&format!(" {} |", show(self.cells.get(&(i, Col::Peer(p))))));
            }
            if peers.contains(&Kind::Cosmount) {
                let cos = self.value(i, Col::Peer(Kind::Cosmount));
                let raw = self.value(i, Col::Raw).filter(|_| row.has_raw);
                t.push_str(&format!(" {} |", ratio(cos, raw, row.better, "")));
                for &p in peers.iter().filter(|&&p| p != Kind::Cosmount) {
                    let other = self.value(i, Col::Peer(p));
                    t.push_str(&format!(" {} |", ratio(cos, other, row.better, "×")));
                }
            }
            t.push('\n');
        }
        t
    }
}

fn columns(row: &Row, peers: &[Kind]) -> Vec<Col> {
    let mut cols: Vec<Col> = peers.iter().map(|&p| Col::Peer(p)).collect();
    if row.has_raw {
        cols.insert(0, Col::Raw);
    }
    cols
}

fn col_name(col: Col) -> &'static str {
    match col {
        Col::Raw => "raw",
        Col::Peer(k) => k.name(),
    }
}

fn show(cell: Option<&Cell>) -> String {
    match cell {
        Some(Cell::Value(v)) => number(*v),
        Some(Cell::NotApplicable) => "n/a".to_string(),
        Some(Cell::Failed(_)) => "FAILED".to_string(),
        None => "—".to_string(),
    }
}

/// Three significant digits, thousands separated.
fn number(v: f64) -> String {
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    let text = format!("{v:.digits$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, int) = int.strip_prefix('-').map_or(("", int), |i| ("-", i));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// cosmount's advantage over `other` (> 1: cosmount better).
fn ratio(cos: Option<f64>, other: Option<f64>, better: Better, suffix: &str) -> String {
    match (cos, other) {
        (Some(c), Some(o)) if c > 0.0 && o > 0.0 => {
            let r = match better {
                Better::Higher => c / o,
                Better::Lower => o / c,
            };
            format!("{r:.2}{suffix}")
        }
        _ => "—".to_string(),
    }
}
