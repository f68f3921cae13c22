//! Checking a run of records, wherever they were found (segments, a sink's NDJSON batches):
//! the sequence has no gap, each record follows the one before it (the hash chain), and a
//! record seen twice is the same record (a retried batch), not two with one key.
//!
//! Sans-IO: feed every record's bytes with [`Verifier::push`], in any order, then read the
//! [`Report`].

use std::collections::BTreeMap;
use std::fmt;

use super::record::{self, Hash};

#[derive(Default)]
pub struct Verifier {
    /// By journal id (the key's first part), then sequence number: the record's hash and its
    /// `prev`.
    journals: BTreeMap<String, BTreeMap<u64, (Hash, String)>>,
    records: u64,
    duplicates: u64,
    problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalReport {
    pub journal: String,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Sequence numbers missing between the first and the last: (from, to) inclusive.
    pub gaps: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records read, duplicates included.
    pub records: u64,
    /// Records seen again, byte for byte (what a retried upload leaves).
    pub duplicates: u64,
    pub journals: Vec<JournalReport>,
    /// What is wrong besides gaps, first found first: unreadable records, two different
    /// records under one key, broken chain links.
    pub problems: Vec<String>,
}

impl Report {
    /// No gap, no problem.
    pub fn is_whole(&self) -> bool {
        self.problems.is_empty() && self.journals.iter().all(|j| j.gaps.is_empty())
    }
}

impl Verifier {
    /// `origin` names where the bytes came from, for the problems found in them.
    pub fn push(&mut self, bytes: &[u8], origin: &dyn fmt::Display) {
        self.records += 1;
        let envelope = match record::parse(bytes) {
            Ok(e) => e,
            Err(e) => {
                self.problems.push(format!("{origin}: {e}"));
                return;
            }
        };
        let Some((journal, seq)) = envelope.key.rsplit_once(':') else {
            self.problems.push(format!(
                "{origin}: key {:?} is not JOURNAL:SEQ",
                envelope.key
            ));
            return;
        };
        if seq.parse::<u64>().ok() != Some(envelope.seq) {
            self.problems.push(format!(
                "{origin}: key {:?} does not match seq {}",
                envelope.key, envelope.seq
            ));
            return;
        }
        let hash = record::hash(bytes);
        let records = self.journals.entry(journal.to_string()).or_default();
        match records.get(&envelope.seq) {
            Some((seen, _)) if *seen == hash => self.duplicates += 1,
            Some(_) => self.problems.push(format!(
                "{origin}: two different records under key {}",
                envelope.key
            )),
            None => {
                records.insert(envelope.seq, (hash, envelope.prev));
            }
        }
    }

    /// Something wrong found outside any record (a damaged file).
    pub fn problem(&mut self, what: String) {
        self.problems.push(what);
    }

    pub fn finish(self) -> Report {
        let mut problems = self.problems;
        let mut journals = Vec::new();
        for (journal, records) in self.journals {
            let (Some((&first_seq, _)), Some((&last_seq, _))) =
                (records.first_key_value(), records.last_key_value())
            else {
                continue;
            };
            let mut gaps = Vec::new();
            let mut before: Option<(u64, Hash)> = None;
            for (&seq, (hash, prev)) in &records {
                match before {
                    Some((b, _)) if seq > b + 1 => gaps.push((b + 1, seq - 1)),
                    Some((_, prev_hash)) if *prev != record::hex(&prev_hash) => {
                        problems.push(format!(
                            "{journal}:{seq} does not follow {journal}:{} (the chain is broken: \
                             one of them was changed)",
                            seq - 1
                        ));
                    }
                    None if seq == 1 && *prev != record::hex(&record::GENESIS) => {
                        problems.push(format!("{journal}:1 does not start the chain"));
                    }
                    _ => {}
                }
                before = Some((seq, *hash));
            }
            journals.push(JournalReport {
                journal,
                first_seq,
                last_seq,
                gaps,
            });
        }
        Report {
            records: self.records,
            duplicates: self.duplicates,
            journals,
            problems,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} records read, {} duplicates (same key, same bytes)",
            self.records, self.duplicates
        )?;
        for j in &self.journals {
            let missing: u64 = j.gaps.iter().map(|(a, b)| b - a + 1).sum();
            writeln!(
                f,
                "journal {}: records {}..{}, {} missing",
                j.journal, j.first_seq, j.last_seq, missing
            )?;
            for (from, to) in &j.gaps {
                if from == to {
                    writeln!(f, "  gap: record {from}")?;
                } else {
                    writeln!(f, "  gap: records {from}..{to}")?;
                }
            }
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        write!(
            f,
            "{}",
            if self.is_whole() {
                "whole: no gap, no problem"
            } else {
                "NOT whole"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use serde_json::json;

    use super::*;
    use crate::journal::record::{JournalId, RecordType, GENESIS};

    fn chain(journal: JournalId, n: u64) -> Vec<Vec<u8>> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let bytes = record::encode(
                    journal,
                    seq,
                    &prev,
                    SystemTime::UNIX_EPOCH,
                    RecordType::CallEvent,
                    &json!({ "n": seq }),
                );
                prev = record::hash(&bytes);
                bytes
            })
            .collect()
    }

    fn verify(records: &[Vec<u8>]) -> Report {
        let mut v = Verifier::default();
        for (i, r) in records.iter().enumerate() {
            v.push(r, &format!("line {}", i + 1));
        }
        v.finish()
    }

    #[test]
    fn a_whole_chain_in_any_order_with_retried_copies_is_whole() {
        let mut records = chain(JournalId([1; 16]), 10);
        records.reverse();
        records.push(records[3].clone());
        let report = verify(&records);
        assert!(report.is_whole(), "{report}");
        assert_eq!((report.records, report.duplicates), (11, 1));
        assert_eq!(report.journals[0].last_seq, 10);
    }

    #[test]
    fn a_missing_record_is_a_gap_and_an_edited_one_breaks_the_chain() {
        let mut records = chain(JournalId([1; 16]), 10);
        records.remove(4);
        let report = verify(&records);
        assert_eq!(report.journals[0].gaps, vec![(5, 5)]);
        assert!(!report.is_whole());
        assert!(report.to_string().contains("gap: record 5"), "{report}");

        let mut records = chain(JournalId([1; 16]), 10);
        let edited = String::from_utf8(records[6].clone())
            .unwrap()
            .replace(r#""n":7"#, r#""n":8"#);
        records[6] = edited.into_bytes();
        let report = verify(&records);
        assert_eq!(report.problems.len(), 1, "{report}");
        assert!(
            report.problems[0].contains(":8 does not follow"),
            "{report}"
        );
    }

    #[test]
    fn two_different_records_under_one_key_are_a_problem_not_a_duplicate() {
        let mut records = chain(JournalId([1; 16]), 3);
        let other = chain(JournalId([1; 16]), 3);
        let mut forged = String::from_utf8(other[1].clone()).unwrap();
        forged = forged.replace(r#""n":2"#, r#""n":20"#);
        records.push(forged.into_bytes());
        let report = verify(&records);
        assert_eq!(report.duplicates, 0);
        assert!(
            report.problems[0].contains("two different records"),
            "{report}"
        );
    }

    #[test]
    fn journals_are_checked_apart() {
        let mut records = chain(JournalId([1; 16]), 4);
        records.extend(chain(JournalId([2; 16]), 6));
        records.push(b"not json".to_vec());
        let report = verify(&records);
        assert_eq!(report.journals.len(), 2);
        assert_eq!(report.problems.len(), 1);
        assert!(report.problems[0].starts_with("line 11: not a journal record"));
    }
}
