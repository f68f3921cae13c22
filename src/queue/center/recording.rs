//! Recording requests: the talking agent's `record` and the admin API's, carried to the call;
//! the call's answer (its recording's state, or why it refused) carried back to the agent.
//! The call decides (it knows its policy and its recording); the center keeps the latest state
//! to answer the admin API at once.
use super::{call_id, Call, CallCommand, Center, Output};
use crate::agent::protocol::{self as proto, ErrorCode, GatewayMessage, RecordAction};
use crate::agent::sessions::ConnId;
use crate::call::core::RecordingAction;
use crate::events::RecordingState;

impl Center {
    /// The agent on `conn` asks to start, pause or resume its call's recording.
    pub(super) fn record(&mut self, conn: ConnId, agent: &str, r: proto::from_agent::Record) {
        let Some(call) = self.talking_call(conn, agent, &r.call) else {
            return;
        };
        let action = match r.action {
            RecordAction::Start => RecordingAction::Start,
            RecordAction::Pause => RecordingAction::Pause,
            RecordAction::Resume => RecordingAction::Resume,
        };
        self.out.push_back(Output::ToCall {
            call,
            cmd: CallCommand::Recording {
                action,
                by: agent.to_owned(),
            },
        });
    }

    /// The admin API asks for `action` on `call`'s recording: passed on if it can be done as
    /// the center last heard of the call, refused with the reason otherwise.
    pub fn admin_recording(
        &mut self,
        call: Call,
        action: RecordingAction,
    ) -> Result<String, String> {
        let Some(entry) = self.calls.get(&call) else {
            return Err(format!("no call {call} with an agent"));
        };
        if entry.agent.is_none() {
            return Err(format!("call {call} is not with an agent"));
        }
        let refusal = match (action, entry.recording) {
            (RecordingAction::Start, RecordingState::Off) => None,
            (RecordingAction::Start, _) => Some("it is being recorded already"),
            (RecordingAction::Pause, RecordingState::Recording) => None,
            (RecordingAction::Pause, RecordingState::Paused) => Some("it is paused already"),
            (RecordingAction::Resume, RecordingState::Paused) => None,
            (RecordingAction::Resume, RecordingState::Recording) => Some("it is not paused"),
            (_, RecordingState::Off) => Some("it is not being recorded"),
        };
        if let Some(why) = refusal {
            return Err(format!("call {call}: {why}"));
        }
        self.out.push_back(Output::ToCall {
            call,
            cmd: CallCommand::Recording {
                action,
                by: "admin".into(),
            },
        });
        Ok(format!("call {call}: recording {}\n", action.code()))
    }

    /// The call's recording is in `state` now, or a request was `refused`: the agent hears it.
    pub fn recording_changed(
        &mut self,
        call: Call,
        state: RecordingState,
        refused: Option<String>,
    ) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        entry.recording = state;
        let Some(conn) = entry.agent.as_ref().and_then(|(_, c)| *c) else {
            return;
        };
        let msg = match refused {
            Some(why) => {
                tracing::info!(call, reason = %why, "recording request refused");
                let report = proto::ErrorReport::new(ErrorCode::InvalidState, &why)
                    .about_call(call_id(call));
                GatewayMessage::Error(report)
            }
            None => GatewayMessage::Recording(proto::from_gateway::Recording {
                call: call_id(call),
                state: match state {
                    RecordingState::Off => proto::RecordingStage::Off,
                    RecordingState::Recording => proto::RecordingStage::Recording,
                    RecordingState::Paused => proto::RecordingStage::Paused,
                },
            }),
        };
        self.send_to_agent(conn, msg);
    }
}
