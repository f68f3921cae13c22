//! One message of every type per direction, with realistic values, plus helpers that build
//! frames the encoder would refuse to (to test the decoder's side of every check).

use serde::Serialize;

use crate::agent::protocol::from_agent::{
    Accept, Chat, CompleteTransfer, Consult, Dial, Disposition, Dtmf as AgentDtmf, Hangup, Help,
    Hold as AgentHold, Leave, Login, Ping, Record, Reject, ReturnToCaller, SetState, Stats,
    Supervise, Transfer,
};
use crate::agent::protocol::from_gateway::{
    Answered, CallEnded, Chat as GatewayChat, DialFailed, Dialing, Dtmf as GatewayDtmf,
    HelpRequested, Hold as GatewayHold, Live, LiveAgent, LiveCall, LoginRefused, Offer,
    OfferCancelled, Pong, Progress, QueueBoard, Recording, Resumed, ResumedCall, State,
    Supervising, SupervisionEnded, TransferState, Wallboard, Welcome,
};
use crate::agent::protocol::*;

pub fn call() -> CallId {
    CallId::new("c-7f3a")
}

pub fn login() -> Login {
    Login {
        agent: AgentId::new("alice"),
        credential: Credential::new("correct horse battery staple"),
        skills: vec!["sales".into(), "de".into()],
        client: "trunkgate-agent/0.1.0".into(),
        resume: Some(ResumeToken::new("rt-5b0c9e")),
    }
}

pub fn stats() -> Stats {
    Stats {
        call: call(),
        rtt_ms: 38,
        loss_pct: 1.25,
        jitter_ms: 4.5,
        packets_received: 1520,
        packets_lost: 19,
    }
}

pub fn agent_messages() -> Vec<AgentMessage> {
    vec![
        AgentMessage::Login(login()),
        AgentMessage::SetState(SetState {
            state: RequestedState::Away,
            reason: Some("lunch".into()),
        }),
        AgentMessage::Accept(Accept { call: call() }),
        AgentMessage::Reject(Reject {
            call: call(),
            reason: Some("on a break".into()),
        }),
        AgentMessage::Hangup(Hangup { call: call() }),
        AgentMessage::Dtmf(AgentDtmf {
            call: call(),
            digits: "123*#A".into(),
        }),
        AgentMessage::Hold(AgentHold {
            call: call(),
            on: true,
        }),
        AgentMessage::Disposition(Disposition {
            call: call(),
            code: "callback".into(),
        }),
        AgentMessage::Dial(Dial {
            number: Some("030 1234-567".into()),
            callback: None,
            queue: Some("sales".into()),
        }),
        AgentMessage::Transfer(Transfer {
            call: call(),
            to: "queue:sales".into(),
        }),
        AgentMessage::Consult(Consult {
            call: call(),
            to: "030 1234567".into(),
        }),
        AgentMessage::CompleteTransfer(CompleteTransfer { call: call() }),
        AgentMessage::ReturnToCaller(ReturnToCaller { call: call() }),
        AgentMessage::Record(Record {
            call: call(),
            action: RecordAction::Pause,
        }),
        AgentMessage::Supervise(Supervise {
            call: call(),
            mode: SuperviseMode::Whisper,
        }),
        AgentMessage::Leave(Leave { call: call() }),
        AgentMessage::Help(Help {
            call: call(),
            note: Some("the caller asks for a refund".into()),
        }),
        AgentMessage::Chat(Chat {
            to: Some(AgentId::new("alice")),
            call: Some(call()),
            text: "offer the 10 % voucher".into(),
        }),
        AgentMessage::Stats(stats()),
        AgentMessage::Ping(Ping { nonce: u64::MAX }),
        AgentMessage::Error(
            ErrorReport::new(ErrorCode::UnknownCall, "no call c-1").about_call(call()),
        ),
    ]
}

pub fn welcome() -> Welcome {
    Welcome {
        session: SessionId::new("s-42"),
        resume_token: ResumeToken::new("rt-5b0c9e"),
        resume_grace_ms: 30_000,
        state: AgentState::Away,
        media: MediaParams::default(),
        gateway: "trunkgate/0.1.0".into(),
        supervises: vec!["support".into()],
    }
}

pub fn offer() -> Offer {
    Offer {
        call: call(),
        caller: "Bob <+4930123456>".into(),
        queue: "sales".into(),
        ring_timeout_ms: 20_000,
        flow: FlowId(4),
        waited_ms: Some(35_000),
    }
}

pub fn resumed_call() -> ResumedCall {
    ResumedCall {
        id: call(),
        flow: FlowId(9),
        caller: "Bob <+4930123456>".into(),
        queue: "sales".into(),
        held: false,
    }
}

pub fn gateway_messages() -> Vec<GatewayMessage> {
    vec![
        GatewayMessage::Welcome(welcome()),
        GatewayMessage::LoginRefused(LoginRefused {
            reason: RefusalReason::BadCredential,
            message: "check the password".into(),
        }),
        GatewayMessage::State(State {
            state: AgentState::WrapUp,
            wrap_up_ms: Some(30_000),
        }),
        GatewayMessage::Offer(offer()),
        GatewayMessage::OfferCancelled(OfferCancelled {
            call: call(),
            reason: CancelReason::Taken,
        }),
        GatewayMessage::Answered(Answered {
            call: call(),
            flow: FlowId(4),
        }),
        GatewayMessage::CallEnded(CallEnded {
            call: call(),
            reason: EndReason::CallerHungUp,
        }),
        GatewayMessage::Resumed(Resumed {
            call: Some(resumed_call()),
        }),
        GatewayMessage::Dtmf(GatewayDtmf {
            call: call(),
            digit: '#',
        }),
        GatewayMessage::Hold(GatewayHold {
            call: call(),
            on: false,
        }),
        GatewayMessage::Dialing(Dialing {
            call: call(),
            number: "+49301234567".into(),
            flow: FlowId(3),
        }),
        GatewayMessage::Progress(Progress {
            call: call(),
            early_media: true,
        }),
        GatewayMessage::DialFailed(DialFailed {
            call: Some(call()),
            reason: DialFailure::Busy,
            message: "the line is busy".into(),
        }),
        GatewayMessage::TransferState(TransferState {
            call: call(),
            number: "+49301234567".into(),
            state: TransferStage::Ended,
            reason: Some(DialFailure::NoAnswer),
            message: Some("nobody answered".into()),
        }),
        GatewayMessage::Recording(Recording {
            call: call(),
            state: RecordingStage::Paused,
        }),
        GatewayMessage::Supervising(Supervising {
            call: call(),
            mode: SuperviseMode::Monitor,
            flow: FlowId(12),
        }),
        GatewayMessage::SupervisionEnded(SupervisionEnded {
            call: call(),
            reason: "call_ended".into(),
        }),
        GatewayMessage::HelpRequested(HelpRequested {
            call: call(),
            agent: AgentId::new("alice"),
            queue: "support".into(),
            note: Some("the caller asks for a refund".into()),
        }),
        GatewayMessage::Chat(GatewayChat {
            from: AgentId::new("alice"),
            call: None,
            text: "can you listen in?".into(),
        }),
        GatewayMessage::Wallboard(Wallboard {
            queues: vec![QueueBoard {
                queue: "support".into(),
                waiting: 2,
                longest_wait_s: 41.5,
                service_level_s: 20.0,
                service_level_15m_pct: Some(83.3),
                service_level_day_pct: Some(91.2),
                asa_s: Some(12.4),
                aht_s: Some(185.0),
                abandon_rate_pct: Some(3.1),
                answered: 57,
                abandoned: 2,
                agents_available: 3,
                agents_in_call: 5,
                agents_wrap_up: 1,
                agents_away: 2,
            }],
        }),
        GatewayMessage::Live(Live {
            calls: vec![LiveCall {
                call: call(),
                queue: "support".into(),
                caller: "+4930123456".into(),
                state: "talking".into(),
                agent: Some(AgentId::new("alice")),
            }],
            agents: vec![LiveAgent {
                agent: AgentId::new("alice"),
                state: AgentState::Talking,
                call: Some(call()),
            }],
        }),
        GatewayMessage::Error(ErrorReport::new(ErrorCode::InvalidState, "not ringing")),
        GatewayMessage::Pong(Pong { nonce: 0 }),
    ]
}

/// Frames `body` as it is, valid or not.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The JSON a careless peer would send for `message`: right shape, no limits checked.
pub fn unchecked_json(message: &impl Serialize) -> serde_json::Value {
    let mut value = serde_json::to_value(message).expect("test messages serialize");
    value
        .as_object_mut()
        .expect("messages are objects")
        .insert("v".into(), 1.into());
    value
}

pub fn unchecked_frame(message: &impl Serialize) -> Vec<u8> {
    frame(unchecked_json(message).to_string().as_bytes())
}

pub fn encoded(message: &impl WireMessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode(message, &mut out).expect("sample messages are valid");
    out
}

/// Every message and error the decoder yields for `bytes` pushed at once.
pub fn decode_all<M: WireMessage>(bytes: &[u8]) -> Vec<Result<M, DecodeError>> {
    let mut decoder = FrameDecoder::<M>::new();
    decoder.push(bytes);
    std::iter::from_fn(|| decoder.pop()).collect()
}

pub fn decode_one<M: WireMessage + std::fmt::Debug>(bytes: &[u8]) -> Result<M, DecodeError> {
    let mut all = decode_all::<M>(bytes);
    assert_eq!(all.len(), 1, "expected exactly one result, got {all:?}");
    all.remove(0)
}
