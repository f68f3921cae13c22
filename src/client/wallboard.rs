//! `trunkgate-agent --supervisor --wallboard`: the supervised queues' figures as a terminal
//! table, one row per queue, redrawn whenever the gateway sends new ones.
use std::fmt::Write;

use crate::agent::protocol::from_gateway::QueueBoard;

const HEADER: [&str; 11] = [
    "queue",
    "waiting",
    "longest",
    "SL 15m",
    "SL day",
    "ASA",
    "AHT",
    "abandon",
    "avail",
    "in call",
    "wrap/away",
];

/// The table, with a trailing newline.
pub fn table(queues: &[QueueBoard]) -> String {
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} %"));
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} s"));
    let rows: Vec<[String; 11]> = queues
        .iter()
        .map(|q| {
            [
                q.queue.clone(),
                q.waiting.to_string(),
                secs(Some(q.longest_wait_s)),
                pct(q.service_level_15m_pct),
                pct(q.service_level_day_pct),
                secs(q.asa_s),
                secs(q.aht_s),
                pct(q.abandon_rate_pct),
                q.agents_available.to_string(),
                q.agents_in_call.to_string(),
                format!("{}/{}", q.agents_wrap_up, q.agents_away),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Names left, figures right.
            let _ = if i == 0 {
                write!(out, "{cell:<w$}")
            } else {
                write!(out, "  {cell:>w$}")
            };
        }
        out.push('\n');
    };
    line(&mut out, &HEADER);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_aligned_row_per_queue_with_dashes_before_the_first_caller() {
        let board = |queue: &str, sl: Option<f64>| QueueBoard {
            queue: queue.into(),
            waiting: 2,
            longest_wait_s: 41.6,
            service_level_s: 20.0,
            service_level_15m_pct: sl,
            service_level_day_pct: sl,
            asa_s: sl.map(|_| 12.0),
            aht_s: sl.map(|_| 185.0),
            abandon_rate_pct: sl.map(|_| 4.0),
            answered: 20,
            abandoned: 1,
            agents_available: 3,
            agents_in_call: 5,
            agents_wrap_up: 1,
            agents_away: 2,
        };
        let t = table(&[
            board("support", Some(83.3)),
            board("billing-escalations", None),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("queue"), "{t}");
        assert!(
            lines[1].starts_with("support ") && lines[1].contains("83.3 %"),
            "{t}"
        );
        assert!(
            lines[1].contains("42 s") && lines[1].contains("185 s") && lines[1].contains("1/2"),
            "{t}"
        );
        assert!(lines[2].contains(" - "), "{t}");
        let width = lines[0].len();
        assert!(lines.iter().all(|l| l.len() == width), "aligned:\n{t}");
    }
}
