//! The call's recording: the caller on the left channel, what the caller heard from our side
//! (the agent; music while held or waiting) on the right, from the moment it starts to the
//! call's end. The policy of the call's queue (else its trunk) decides when an agent answers
//! whether it starts by itself; the agent or the admin API may start an on-demand one, and
//! pause and resume any. A paused span is recorded as silence, so the file's timeline stays the
//! call's, and is listed in the CDR.
//!
//! The core only encodes: the Ogg Opus bytes leave as [`Output::RecordingBytes`], and the
//! shell seals them (age) into the recording's file.
use std::time::Duration;

use rand::Rng;

use super::{Call, Output, ToCenter};
use crate::call::leg::Leg;
use crate::events::{CallEvent, PausedSpan, RecordingState};
use crate::media::stereo_recorder::StereoRecorder;
use crate::recording::config::Policy;

/// What the agent or the admin API asks of a call's recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingAction {
    Start,
    Pause,
    Resume,
}

impl RecordingAction {
    pub fn code(self) -> &'static str {
        match self {
            RecordingAction::Start => "start",
            RecordingAction::Pause => "pause",
            RecordingAction::Resume => "resume",
        }
    }
}

pub(super) struct Recording {
    recorder: StereoRecorder,
    /// Who started it: `policy`, an agent's id, `admin`.
    started_by: String,
    /// Where in the recording the current pause began.
    paused_at: Option<Duration>,
    paused: Vec<PausedSpan>,
    silence: Vec<i16>,
    /// Ogg pages not yet handed to the shell.
    pending: Vec<u8>,
}

impl Recording {
    /// Records one frame period; while paused, silence both ways.
    pub(super) fn frame(&mut self, caller: &[i16], heard: &[i16]) {
        let encoded = if self.paused_at.is_some() {
            self.recorder.frame(&self.silence, &self.silence)
        } else {
            self.recorder.frame(caller, heard)
        };
        match encoded {
            Ok(Some(page)) => self.pending.extend(page),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "recording: a frame could not be encoded"),
        }
    }

    fn state(&self) -> RecordingState {
        if self.paused_at.is_some() {
            RecordingState::Paused
        } else {
            RecordingState::Recording
        }
    }
}

impl<L: Leg> Call<L> {
    /// An agent answered (or a placed call was answered): the policy decides, once per call,
    /// whether it is recorded from now on.
    pub(super) fn recording_policy_applies(&mut self) {
        if self.recording_decided {
            return;
        }
        self.recording_decided = true;
        let policy = self.recording_policy();
        let start = match policy.policy {
            Policy::Always => true,
            Policy::Sampled => {
                let percent = policy.percent.unwrap_or(0);
                self.rng.gen_range(0..100u8) < percent
            }
            Policy::Never | Policy::OnDemand => false,
        };
        self.may_record = policy.policy != Policy::Never;
        if start {
            self.start_recording("policy");
        } else {
            self.recording_changed(RecordingState::Off, None);
        }
    }

    /// The queue's policy if it has one, else the trunk's.
    fn recording_policy(&self) -> crate::recording::config::RecordingPolicy {
        let c = &self.config.config;
        let queue = self
            .in_queue
            .as_ref()
            .and_then(|q| c.queues.get(q))
            .and_then(|q| q.recording.clone());
        let trunk = || {
            c.trunks
                .iter()
                .find(|t| t.name == self.arrival.trunk)
                .and_then(|t| t.recording.clone())
        };
        queue.or_else(trunk).unwrap_or_default()
    }

    /// The prompt that tells the caller the call may be recorded, if the policy has one.
    pub(super) fn recording_prompt(&self) -> Option<String> {
        let policy = self.recording_policy();
        (policy.policy != Policy::Never)
            .then_some(policy.prompt)
            .flatten()
    }

    /// The agent (`by`: its id) or the admin API asks for `action`; the answer reaches the
    /// center as the recording's state, or as the reason it was refused.
    pub(super) fn recording_action(&mut self, action: RecordingAction, by: &str) {
        let state = self.recording.as_ref().map(Recording::state);
        let refusal = match (action, state) {
            (_, _) if !self.recording_decided => Some("no agent has answered the call yet"),
            (RecordingAction::Start, None) if !self.may_record => {
                Some("the call's recording policy is never")
            }
            (RecordingAction::Start, None) => None,
            (RecordingAction::Start, Some(_)) => Some("the call is being recorded already"),
            (RecordingAction::Pause | RecordingAction::Resume, None) => {
                Some("the call is not being recorded")
            }
            (RecordingAction::Pause, Some(RecordingState::Paused)) => {
                Some("the recording is paused already")
            }
            (RecordingAction::Resume, Some(RecordingState::Recording)) => {
                Some("the recording is not paused")
            }
            _ => None,
        };
        if let Some(reason) = refusal {
            let state = state.unwrap_or(RecordingState::Off);
            self.outputs
                .push_back(Output::ToCenter(ToCenter::Recording {
                    state,
                    refused: Some(reason.to_owned()),
                }));
            return;
        }
        match action {
            RecordingAction::Start => self.start_recording(by),
            RecordingAction::Pause => {
                let Some(r) = &mut self.recording else { return };
                r.paused_at = Some(r.recorder.duration());
                // The audio up to the pause is on disk before the pause is confirmed.
                if let Some(page) = r.recorder.flush() {
                    r.pending.extend(page);
                }
                self.drain_recording();
                self.recording_changed(RecordingState::Paused, Some(by));
            }
            RecordingAction::Resume => {
                let Some(r) = &mut self.recording else { return };
                if let Some(at) = r.paused_at.take() {
                    let length = r.recorder.duration().saturating_sub(at);
                    r.paused.push(PausedSpan { at, length });
                }
                self.recording_changed(RecordingState::Recording, Some(by));
            }
        }
    }

    fn start_recording(&mut self, by: &str) {
        let r = &self.config.config.recording;
        let tags = [
            format!("TRUNKGATE_CALL={}", self.id),
            format!("TRUNKGATE_TRUNK={}", self.arrival.trunk),
        ];
        let samples = self.leg.samples_per_frame();
        // The stream's serial only tells streams in one file apart: any number will do.
        let serial = self.id as u32;
        match StereoRecorder::start(serial, r.bitrate, samples, &tags) {
            Ok((recorder, header)) => {
                self.recording = Some(Recording {
                    recorder,
                    started_by: by.to_owned(),
                    paused_at: None,
                    paused: Vec::new(),
                    silence: vec![0; samples],
                    pending: header,
                });
                self.drain_recording();
                self.recording_changed(RecordingState::Recording, Some(by));
            }
            // Only a bitrate validation refuses gets here.
            Err(e) => tracing::error!(error = %e, "recording: cannot start"),
        }
    }

    fn recording_changed(&mut self, state: RecordingState, by: Option<&str>) {
        if let Some(by) = by {
            self.events.push_back(CallEvent::Recording {
                state,
                by: by.to_owned(),
            });
        }
        self.outputs
            .push_back(Output::ToCenter(ToCenter::Recording {
                state,
                refused: None,
            }));
    }

    /// Hands the pages encoded so far to the shell.
    pub(super) fn drain_recording(&mut self) {
        if let Some(r) = &mut self.recording {
            if !r.pending.is_empty() {
                self.outputs
                    .push_back(Output::RecordingBytes(std::mem::take(&mut r.pending)));
            }
        }
    }

    /// The call is over: the recording's last bytes, its file closed, and its place in the CDR.
    pub(super) fn finish_recording(&mut self) {
        let Some(mut r) = self.recording.take() else {
            return;
        };
        if let Some(at) = r.paused_at.take() {
            let length = r.recorder.duration().saturating_sub(at);
            r.paused.push(PausedSpan { at, length });
        }
        match r.recorder.finish() {
            Ok(end) => r.pending.extend(end),
            Err(e) => tracing::warn!(error = %e, "recording: its end could not be encoded"),
        }
        if !r.pending.is_empty() {
            self.outputs.push_back(Output::RecordingBytes(r.pending));
        }
        self.outputs.push_back(Output::RecordingDone);
        self.events.push_back(CallEvent::Recorded {
            duration: r.recorder.duration(),
            paused: r.paused,
            started_by: r.started_by,
        });
    }
}

/// One frame each way through the leg, recorded if the call is.
pub(super) fn exchange<'a, L: Leg>(
    leg: &'a mut L,
    recording: &mut Option<Recording>,
    now: std::time::Instant,
    outgoing: &[i16],
) -> &'a [i16] {
    let heard = leg.exchange(now, outgoing);
    if let Some(r) = recording {
        r.frame(heard, outgoing);
    }
    heard
}
