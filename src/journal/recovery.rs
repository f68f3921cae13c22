//! After a crash: what the journal shows still in progress gets its end.
//!
//! Every [`CHECKPOINT_EVERY`] records (and when the daemon starts) the journal writes a
//! `checkpoint` record: the recorder's state, the calls in progress and the CDRs waiting for a
//! wrap-up. On start, the records after the newest checkpoint are replayed through a recorder
//! restored from it, the same code path that made them, so it ends up where the crashed run
//! was. Then:
//! - a CDR or queue outcome the replay makes that the journal lacks (the crash fell between an
//!   event's record and its CDR's) is written now;
//! - every call still open is ended by the gateway's restart at the time of the last record
//!   (cause `gateway_restart`; a wait in a queue ends `interrupted`), and the CDRs waiting for
//!   a wrap-up are written with the wrap-up up to then.
//!
//! So every call whose arrival reached the journal gets exactly one CDR, whenever the daemon
//! was killed.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::record::{self, RecordType};
use super::recorder::{Output, Recorder};
use super::segment;

/// A replay after a crash reads at most about this many records.
pub const CHECKPOINT_EVERY: u64 = 10_000;

#[derive(Debug, Default)]
pub struct Recovered {
    /// Records to append, in order.
    pub outputs: Vec<Output>,
    /// Records replayed after the checkpoint.
    pub replayed: u64,
    /// Calls the crashed run left open, now ended.
    pub closed_calls: usize,
}

/// What the journal in `dir` needs appended to account for the run that wrote it last.
pub fn recover(dir: &Path, service_levels: BTreeMap<String, Duration>) -> io::Result<Recovered> {
    let (checkpoint, after) = since_last_checkpoint(dir)?;
    let mut recorder = Recorder::new("", service_levels);
    if let Some(checkpoint) = &checkpoint {
        recorder.restore(checkpoint);
    }
    let mut present = HashSet::new();
    let mut regenerated = Vec::new();
    let mut last_at = None;
    for bytes in &after {
        let Ok(record) = serde_json::from_slice::<Value>(bytes) else {
            continue;
        };
        let Some(at) = record["at"].as_str().and_then(record::parse_rfc3339_millis) else {
            continue;
        };
        last_at = Some(at);
        let Ok(kind) = RecordType::deserialize(&record["type"]) else {
            continue;
        };
        let data = &record["data"];
        match kind {
            RecordType::Cdr | RecordType::QueueOutcome => {
                present.insert(identity(kind, data));
            }
            RecordType::CallEvent | RecordType::AgentEvent => {
                regenerated.extend(recorder.replay(at, kind, data));
            }
            RecordType::Lost | RecordType::Checkpoint => {}
        }
    }
    let mut outputs: Vec<Output> = regenerated
        .into_iter()
        .filter(|out| !present.contains(&identity(out.kind, &out.data)))
        .collect();
    let closed_calls = recorder.open_calls();
    if let Some(at) = last_at {
        outputs.extend(recorder.close_all(at));
    }
    Ok(Recovered {
        outputs,
        replayed: after.len() as u64,
        closed_calls,
    })
}

/// What tells one CDR or queue outcome from another.
fn identity(kind: RecordType, data: &Value) -> (RecordType, String, String) {
    let call = data["call"].as_str().unwrap_or_default().to_string();
    let wait = data["entered_at"].as_str().unwrap_or_default().to_string();
    (kind, call, wait)
}

/// The newest checkpoint's data and every record after it, reading segments from the newest
/// back until one holds a checkpoint.
fn since_last_checkpoint(dir: &Path) -> io::Result<(Option<Value>, Vec<Vec<u8>>)> {
    let mut after: Vec<Vec<u8>> = Vec::new();
    for (_, path) in segment::list(dir)?.iter().rev() {
        let bytes = std::fs::read(path)?;
        let mut records: Vec<Vec<u8>> = segment::frames(&bytes)
            .map(|(_, payload)| payload.to_vec())
            .collect();
        let checkpoint = records
            .iter()
            .rposition(|r| record::parse(r).is_ok_and(|e| e.kind == RecordType::Checkpoint));
        if let Some(i) = checkpoint {
            let data = serde_json::from_slice::<Value>(&records[i])
                .ok()
                .map(|v| v["data"].clone());
            records.drain(..=i);
            records.append(&mut after);
            return Ok((data, records));
        }
        records.append(&mut after);
        after = records;
    }
    Ok((None, after))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::events::{AgentEvent, CallEvent, CallQuality, EndCause, Event, EventKind, Side};
    use crate::journal::{JournalWriter, Limits};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_595_000 + secs)
    }

    fn call(secs: u64, call: u64, event: CallEvent) -> Event {
        Event {
            at: at(secs),
            what: EventKind::Call { call, event },
        }
    }

    fn arrived(secs: u64, id: u64) -> Event {
        call(
            secs,
            id,
            CallEvent::Arrived {
                trunk: "carrier".into(),
                sip_call_id: format!("sip-{id}"),
                caller: "+4930111".into(),
                callee: "100".into(),
            },
        )
    }

    fn ended(secs: u64, id: u64) -> Event {
        call(
            secs,
            id,
            CallEvent::Ended {
                side: Side::Caller,
                cause: EndCause::CallerHungUp,
                answered: true,
                quality: Box::<CallQuality>::default(),
            },
        )
    }

    /// Writes what the recorder makes of `events`, as the journal thread does, leaving out
    /// the records `skip` picks (what a crash lost).
    fn journal(
        writer: &mut JournalWriter,
        recorder: &mut Recorder,
        events: &[Event],
        skip: impl Fn(&Output) -> bool,
    ) {
        for event in events {
            for out in recorder.record(event) {
                if !skip(&out) {
                    writer.append(out.at, out.kind, &out.data).unwrap();
                }
            }
        }
    }

    fn cdrs(outputs: &[Output]) -> Vec<&Value> {
        outputs
            .iter()
            .filter(|o| o.kind == RecordType::Cdr)
            .map(|o| &o.data)
            .collect()
    }

    #[test]
    fn calls_open_at_a_crash_are_ended_by_the_restart_and_a_lost_cdr_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
        let mut recorder = Recorder::new("r1", BTreeMap::new());
        // Call 1 arrives before the checkpoint and is still in the queue at the crash.
        let queued = CallEvent::Queued {
            queue: "support".into(),
            position: 1,
        };
        let alice = Event {
            at: at(0),
            what: EventKind::Agent {
                agent: "alice".into(),
                event: AgentEvent::StateChanged {
                    state: crate::queue::AgentState::Available,
                    reason: None,
                },
            },
        };
        journal(
            &mut writer,
            &mut recorder,
            &[alice, arrived(0, 1), call(1, 1, queued)],
            |_| false,
        );
        writer
            .append(at(2), RecordType::Checkpoint, &recorder.checkpoint())
            .unwrap();
        // Call 2 ends normally with its CDR; call 3 ends but the crash takes its CDR.
        journal(
            &mut writer,
            &mut recorder,
            &[arrived(3, 2), ended(5, 2), arrived(4, 3)],
            |_| false,
        );
        journal(&mut writer, &mut recorder, &[ended(9, 3)], |out| {
            out.kind == RecordType::Cdr
        });
        drop(writer);

        let recovered = recover(dir.path(), BTreeMap::new()).unwrap();
        assert_eq!(
            recovered.replayed, 5,
            "arrived, ended and CDR of call 2, arrived and ended of 3"
        );
        assert_eq!(recovered.closed_calls, 1);
        let cdrs = cdrs(&recovered.outputs);
        assert_eq!(cdrs.len(), 2, "{:#?}", recovered.outputs);
        let lost = cdrs.iter().find(|c| c["call"] == "r1-3").unwrap();
        assert_eq!(lost["end_cause"], "caller_hung_up", "rebuilt as it was");
        assert_eq!(lost["duration_ms"], 5_000);
        let open = cdrs.iter().find(|c| c["call"] == "r1-1").unwrap();
        assert_eq!(open["end_cause"], "gateway_restart");
        assert_eq!(open["ended_by"], "gateway");
        assert_eq!(
            open["ended_at"],
            record::rfc3339_millis(at(9)),
            "the last record's time"
        );
        assert_eq!(open["queues"][0]["outcome"], "interrupted");
        assert!(
            !cdrs.iter().any(|c| c["call"] == "r1-2"),
            "its CDR is there"
        );
        let outcome = recovered
            .outputs
            .iter()
            .find(|o| o.kind == RecordType::QueueOutcome)
            .unwrap();
        assert_eq!(outcome.data["outcome"], "interrupted");
        let logout = recovered
            .outputs
            .iter()
            .find(|o| o.kind == RecordType::AgentEvent)
            .expect("the logged-in agent's session is ended");
        assert_eq!(logout.data["agent"], "alice");
        assert_eq!(logout.data["reason"], "gateway_restart");
    }

    #[test]
    fn a_journal_with_nothing_open_needs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
        let mut recorder = Recorder::new("r1", BTreeMap::new());
        writer
            .append(at(0), RecordType::Checkpoint, &recorder.checkpoint())
            .unwrap();
        journal(
            &mut writer,
            &mut recorder,
            &[arrived(1, 1), ended(2, 1)],
            |_| false,
        );
        drop(writer);
        let recovered = recover(dir.path(), BTreeMap::new()).unwrap();
        assert!(recovered.outputs.is_empty(), "{:#?}", recovered.outputs);
        assert_eq!(recovered.closed_calls, 0);
    }
}
