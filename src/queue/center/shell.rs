//! The contact center's tokio task: the [`Center`] core, the agent connections' handles and the
//! calls' channels. It moves inputs into the core and carries its outputs out: messages to
//! agents, commands (with agent media handles) to calls, events to the bus. No decisions.
use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Call, CallCommand, Center, Output};
use crate::agent::media::AgentMedia;
use crate::agent::protocol::RefusalReason;
use crate::agent::server::{AgentInput, LinkHandle};
use crate::agent::sessions::ConnId;
use crate::events::Bus;
use crate::media::rtp_quic::FlowId;
use crate::ops::notify::{Heartbeat, HEARTBEAT};

/// What calls tell the contact center.
#[derive(Debug)]
pub enum CallInput {
    /// A caller enters a queue; the center answers on `to_call`.
    Enqueue {
        call: Call,
        queue: String,
        caller: String,
        trunk: String,
        to_call: mpsc::UnboundedSender<CenterToCall>,
    },
    CallerGone {
        call: Call,
    },
    /// The caller pressed a key while talking to an agent.
    CallerDtmf {
        call: Call,
        digit: char,
    },
    /// A call an agent placed rings, plays early media or is answered.
    Progress {
        call: Call,
        progress: crate::call::leg::Progress,
    },
    /// The carrier took the caller to the external number the agent transferred it to.
    HandedOver {
        call: Call,
    },
    /// A transfer to a number did not start, or the carrier did not take it: why.
    TransferFailed {
        call: Call,
        reason: String,
    },
    /// The transfer target rings or answered.
    TransferProgress {
        call: Call,
        progress: crate::call::leg::Progress,
    },
    /// The caller talks to the transfer target: the agent's part is over.
    Joined {
        call: Call,
    },
    /// The transfer target's leg `onward` is over.
    OnwardEnded {
        call: Call,
        onward: Call,
        unanswered: Option<crate::events::Unanswered>,
    },
    /// A call an agent placed is over.
    PlacedEnded {
        call: Call,
        unanswered: Option<crate::events::Unanswered>,
    },
    /// The call's recording is in `state`, or a request about it was `refused`.
    Recording {
        call: Call,
        state: crate::events::RecordingState,
        refused: Option<String>,
    },
    /// The admin API asks for `action` on the call's recording.
    AdminRecording {
        call: Call,
        action: crate::call::core::RecordingAction,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
}

/// A call for the call side to place, with the channel the center's commands for it come on
/// and the agent's media handle.
#[derive(Debug)]
pub struct PlaceRequest {
    pub place: super::outbound::PlaceCall,
    pub from_center: mpsc::UnboundedReceiver<CenterToCall>,
    pub media: Option<AgentMedia>,
}

/// What a call receives: a command, and with `Connect`/`Reconnect` the agent's media handle.
#[derive(Debug)]
pub struct CenterToCall {
    pub cmd: CallCommand,
    pub media: Option<AgentMedia>,
}

/// The handles a running center needs.
pub struct CenterChannels {
    pub agents: mpsc::UnboundedReceiver<AgentInput>,
    pub calls: mpsc::UnboundedReceiver<CallInput>,
    /// Config reloads.
    pub reloads: mpsc::UnboundedReceiver<Reconfigure>,
    /// Where calls agents place go to be placed.
    pub places: mpsc::UnboundedSender<PlaceRequest>,
    /// Where today's outbound minutes are kept across restarts (`state_dir`); `None`: nowhere.
    pub usage_file: Option<std::path::PathBuf>,
    /// The wallboard, for supervisors.
    pub wallboard:
        tokio::sync::watch::Receiver<Vec<crate::agent::protocol::from_gateway::QueueBoard>>,
}

/// What a config reload changes in the center.
pub struct Reconfigure {
    pub queues: std::sync::Arc<std::collections::BTreeMap<String, crate::queue::QueueConfig>>,
    pub media: crate::agent::protocol::MediaParams,
    pub agents: Vec<crate::agent::config::AgentConfig>,
    pub outbound: super::outbound::OutboundSettings,
}

enum Input {
    Agent(AgentInput),
    Call(CallInput),
    Reload(Reconfigure),
    Wallboard(Vec<crate::agent::protocol::from_gateway::QueueBoard>),
    Timeout,
}

/// Runs the contact center until `stop` fires or both input channels close.
pub async fn run(
    mut center: Center,
    mut inputs: CenterChannels,
    bus: Bus,
    heart: Heartbeat,
    stop: CancellationToken,
) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    // What ops published before the center started; changes come through `changed`.
    center.set_wallboard(inputs.wallboard.borrow_and_update().clone());
    let mut links: HashMap<ConnId, LinkHandle> = HashMap::new();
    let mut calls: HashMap<Call, mpsc::UnboundedSender<CenterToCall>> = HashMap::new();
    // Media handles made when a flow is routed, waiting for the command that bridges the call.
    let mut pending_media: HashMap<Call, AgentMedia> = HashMap::new();
    // A supervisor's media handle, until the command that adds it to the call.
    let mut pending_supervisor_media: HashMap<Call, AgentMedia> = HashMap::new();
    loop {
        let deadline = center.poll_timeout();
        let input = tokio::select! {
            Some(i) = inputs.agents.recv() => Input::Agent(i),
            Some(i) = inputs.calls.recv() => Input::Call(i),
            Some(r) = inputs.reloads.recv() => Input::Reload(r),
            Ok(()) = inputs.wallboard.changed() => {
                let boards = inputs.wallboard.borrow_and_update().clone();
                Input::Wallboard(boards)
            }
            _ = sleep_until(deadline) => Input::Timeout,
            _ = beat.tick() => {
                heart.beat();
                continue;
            }
            _ = stop.cancelled() => {
                center.shutdown();
                while let Some(event) = center.poll_event() {
                    bus.publish(event);
                }
                return;
            }
            else => return,
        };
        let now = Instant::now();
        center.set_day(utc_day());
        match input {
            Input::Timeout => center.handle_timeout(now),
            Input::Wallboard(boards) => center.set_wallboard(boards),
            Input::Reload(r) => {
                let allowed = |agent: &str| r.agents.iter().any(|a| a.id == agent && !a.revoked);
                center.reconfigure(now, r.queues, r.media, &allowed);
                center.set_outbound_settings(r.outbound);
            }
            Input::Agent(input) => agent_input(&mut center, now, input, &mut links),
            Input::Call(CallInput::Enqueue {
                call,
                queue,
                caller,
                trunk,
                to_call,
            }) => match center.enqueue(now, call, &queue, &caller) {
                Ok(()) => {
                    center.came_in_on(call, trunk);
                    calls.insert(call, to_call);
                }
                Err(e) => {
                    let _ = to_call.send(CenterToCall {
                        cmd: CallCommand::Refused { reason: e },
                        media: None,
                    });
                }
            },
            Input::Call(CallInput::CallerGone { call }) => {
                center.caller_gone(now, call);
                calls.remove(&call);
                pending_media.remove(&call);
            }
            Input::Call(CallInput::CallerDtmf { call, digit }) => center.caller_dtmf(call, digit),
            Input::Call(CallInput::HandedOver { call }) => {
                center.handed_over(now, call);
                calls.remove(&call);
                pending_media.remove(&call);
            }
            Input::Call(CallInput::Joined { call }) => {
                center.transfer_done(now, call);
                calls.remove(&call);
                pending_media.remove(&call);
            }
            Input::Call(CallInput::TransferFailed { call, reason }) => {
                center.transfer_failed(now, call, &reason)
            }
            Input::Call(CallInput::Recording {
                call,
                state,
                refused,
            }) => center.recording_changed(call, state, refused),
            Input::Call(CallInput::AdminRecording {
                call,
                action,
                reply,
            }) => {
                let _ = reply.send(center.admin_recording(call, action));
            }
            Input::Call(CallInput::TransferProgress { call, progress }) => {
                center.transfer_progress(now, call, progress)
            }
            Input::Call(CallInput::OnwardEnded {
                call,
                onward,
                unanswered,
            }) => {
                center.onward_ended(now, call, onward, unanswered);
                if let Some(path) = &inputs.usage_file {
                    keep_usage(path, &center.outbound_usage());
                }
            }
            Input::Call(CallInput::Progress { call, progress }) => {
                center.placed_progress(now, call, progress)
            }
            Input::Call(CallInput::PlacedEnded { call, unanswered }) => {
                center.placed_ended(now, call, unanswered);
                calls.remove(&call);
                pending_media.remove(&call);
                if let Some(path) = &inputs.usage_file {
                    keep_usage(path, &center.outbound_usage());
                }
            }
        }
        while let Some(out) = center.poll_output() {
            if let Output::Place(place) = out {
                // The agent's media was routed just before; the call's task takes it along.
                let (to_call, from_center) = mpsc::unbounded_channel();
                calls.insert(place.call, to_call);
                let media = pending_media.remove(&place.call);
                let _ = inputs.places.send(PlaceRequest {
                    place: *place,
                    from_center,
                    media,
                });
                continue;
            }
            carry_out(
                out,
                &links,
                &mut calls,
                &mut pending_media,
                &mut pending_supervisor_media,
            );
        }
        while let Some(event) = center.poll_event() {
            bus.publish(event);
        }
    }
}

fn agent_input(
    center: &mut Center,
    now: Instant,
    input: AgentInput,
    links: &mut HashMap<ConnId, LinkHandle>,
) {
    match input {
        AgentInput::Login {
            conn,
            agent,
            skills,
            supervises,
            resume,
            link,
            reply,
        } => {
            links.insert(conn, *link);
            let result = if supervises.is_empty() {
                center.login(now, conn, &agent, &skills, resume.as_deref())
            } else {
                center.supervisor_login(conn, &agent, &supervises)
            };
            if result.is_err() {
                links.remove(&conn);
            }
            answer(reply, result);
        }
        AgentInput::Message { conn, msg } => center.agent_message(now, conn, msg),
        AgentInput::Lost { conn } => {
            center.connection_lost(now, conn);
            links.remove(&conn);
        }
        AgentInput::Moved { conn } => center.connection_moved(conn),
        AgentInput::LoggedOut { conn } => {
            center.logged_out(now, conn);
            links.remove(&conn);
        }
    }
}

fn answer(reply: oneshot::Sender<Result<(), RefusalReason>>, result: Result<(), RefusalReason>) {
    // The connection task may be gone already (the agent disconnected): nothing to tell.
    let _ = reply.send(result);
}

fn carry_out(
    out: Output,
    links: &HashMap<ConnId, LinkHandle>,
    calls: &mut HashMap<Call, mpsc::UnboundedSender<CenterToCall>>,
    pending_media: &mut HashMap<Call, AgentMedia>,
    pending_supervisor_media: &mut HashMap<Call, AgentMedia>,
) {
    match out {
        Output::ToAgent { conn, msg } => {
            if let Some(l) = links.get(&conn) {
                l.send(msg);
            }
        }
        Output::Close { conn, code, reason } => {
            if let Some(l) = links.get(&conn) {
                l.close(code, reason);
            }
        }
        Output::Route { conn, flow, call } => {
            let (Some(l), Some(flow_id)) = (links.get(&conn), FlowId::new(flow)) else {
                return;
            };
            pending_media.insert(call, l.open_media(flow_id));
        }
        Output::RouteSupervisor { conn, flow, call } => {
            let (Some(l), Some(flow_id)) = (links.get(&conn), FlowId::new(flow)) else {
                return;
            };
            pending_supervisor_media.insert(call, l.open_media(flow_id));
        }
        Output::Unroute { conn, flow } => {
            if let Some(l) = links.get(&conn) {
                l.close_media(flow);
            }
        }
        // Taken out by the loop before it gets here.
        Output::Place(_) => {}
        Output::ToCall { call, cmd } => {
            let Some(to_call) = calls.get(&call) else {
                return;
            };
            let ends = matches!(cmd, CallCommand::AgentHungUp | CallCommand::Overflow { .. });
            let msg = match &cmd {
                CallCommand::Connect { .. } | CallCommand::Reconnect { .. } => {
                    match pending_media.remove(&call) {
                        Some(media) => CenterToCall {
                            cmd,
                            media: Some(media),
                        },
                        // The agent's connection went away before its media could be routed.
                        None => CenterToCall {
                            cmd: CallCommand::AgentLost,
                            media: None,
                        },
                    }
                }
                CallCommand::Supervise { .. } => CenterToCall {
                    media: pending_supervisor_media.remove(&call),
                    cmd,
                },
                _ => CenterToCall { cmd, media: None },
            };
            let _ = to_call.send(msg);
            if ends {
                calls.remove(&call);
            }
        }
    }
}

/// Writes today's outbound minutes to `path` (a new file renamed over the old one, so a crash
/// leaves either). A failure is logged: the limits still hold in memory.
fn keep_usage(path: &std::path::Path, usage: &crate::call::outbound::limits::DailyUsage) {
    let written = serde_json::to_vec(usage)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.new");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "outbound minutes not kept");
    }
}

/// What an earlier run kept of today's outbound minutes; nothing if there is no such file or
/// it is unreadable (logged).
pub fn kept_usage(path: &std::path::Path) -> Option<crate::call::outbound::limits::DailyUsage> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "outbound minutes unreadable");
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .inspect_err(
            |e| tracing::warn!(path = %path.display(), error = %e, "outbound minutes unreadable"),
        )
        .ok()
}

/// Today as days since the Unix epoch, UTC: daily outbound minutes start again at midnight.
pub fn utc_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
