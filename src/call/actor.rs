//! One tokio task per call: it owns the call's sockets and media state (no locks on the media
//! path) and moves packets, ticks and SIP events into the sans-IO [`IvrCall`].
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::Instrument;

use crate::call::ivr_call::{CallAction, IvrCall, PromptLibrary};
use crate::call::leg::CarrierLeg;
use crate::call::ports::RtpPorts;
use crate::config::{CodecName, Config, TrunkConfig};
use crate::ivr::IvrConfig;
use crate::sip::endpoint::{CallSpawner, SipCommand};
use crate::sip::sdp::{self, Codec, Direction, LocalMedia, Negotiated};
use crate::sip::ua::{CallEvent, CallRef, EndReason};

/// Everything a call needs from the daemon, shared by all calls.
pub struct CallContext {
    pub config: Arc<Config>,
    pub ivr: Arc<IvrConfig>,
    pub prompts: Arc<PromptLibrary>,
    pub ports: RtpPorts,
}

impl CallContext {
    pub fn new(config: Config, prompts: PromptLibrary) -> Self {
        CallContext {
            ports: RtpPorts::new(config.media.rtp_port_min, config.media.rtp_port_max),
            ivr: Arc::new(config.ivr.clone()),
            prompts: Arc::new(prompts),
            config: Arc::new(config),
        }
    }
}

pub struct Spawner(pub Arc<CallContext>);

impl CallSpawner for Spawner {
    fn spawn(
        &mut self,
        incoming: CallEvent,
        commands: mpsc::UnboundedSender<SipCommand>,
    ) -> mpsc::UnboundedSender<CallEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let CallEvent::Incoming {
            call, trunk, peer, ..
        } = &incoming
        else {
            return tx;
        };
        let span = tracing::info_span!("call", call, %trunk, %peer);
        let sip = Sip {
            call: *call,
            commands,
        };
        let ctx = self.0.clone();
        tokio::spawn(
            async move {
                if let Err(e) = run(ctx, incoming, rx, &sip).await {
                    tracing::warn!(error = %e, "call failed");
                    sip.send(SipCommand::Hangup);
                }
            }
            .instrument(span),
        );
        tx
    }
}

/// The way back to the signalling task for one call.
struct Sip {
    call: CallRef,
    commands: mpsc::UnboundedSender<SipCommand>,
}

impl Sip {
    fn send(&self, f: impl FnOnce(CallRef) -> SipCommand) {
        let _ = self.commands.send(f(self.call));
    }
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("rtp ports: {0}")]
    Ports(std::io::Error),
    #[error("ivr: {0}")]
    Ivr(#[from] crate::ivr::IvrError),
}

/// What answering agreed on, for the media phase.
struct Answered {
    trunk: TrunkConfig,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    local_media: LocalMedia,
    /// `None` on a late-offer call until the ACK brings the answer.
    negotiated: Option<Negotiated>,
}

async fn run(
    ctx: Arc<CallContext>,
    incoming: CallEvent,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    sip: &Sip,
) -> Result<(), CallError> {
    let Some(answered) = answer(&ctx, incoming, &mut events, sip).await? else {
        return Ok(());
    };
    media(&ctx, answered, events, sip).await
}

/// Negotiates media, rings if the trunk says so, and answers. `None` when the call ended
/// before it was answered (rejected, cancelled).
async fn answer(
    ctx: &CallContext,
    incoming: CallEvent,
    events: &mut mpsc::UnboundedReceiver<CallEvent>,
    sip: &Sip,
) -> Result<Option<Answered>, CallError> {
    let CallEvent::Incoming {
        trunk,
        offer,
        local,
        ..
    } = incoming
    else {
        return Ok(None);
    };
    let Some(trunk) = ctx.config.trunks.iter().find(|t| t.name == trunk).cloned() else {
        sip.send(|c| SipCommand::Reject(c, 403));
        return Ok(None);
    };
    // RTP is bound on the address the carrier reached us on, so SDP and packets agree.
    let (rtp, rtcp) = match ctx.ports.allocate(local.ip()).await {
        Ok(s) => s,
        Err(e) => {
            sip.send(|c| SipCommand::Reject(c, 503));
            return Err(CallError::Ports(e));
        }
    };
    let rtp_port = rtp.local_addr().map(|a| a.port()).unwrap_or_default();
    let local_media = local_media(&trunk, local.ip(), rtp_port);
    let (sdp_out, negotiated) = match offer {
        Some(offer) => match answer_offer(&offer, &local_media) {
            Ok((sdp, neg)) => (sdp, Some(neg)),
            Err(code) => {
                sip.send(|c| SipCommand::Reject(c, code));
                return Ok(None);
            }
        },
        // Late offer: we offer now, the ACK brings the answer.
        None => (sdp::offer(&local_media).to_string(), None),
    };
    if trunk.ring_ms > 0 {
        sip.send(SipCommand::Ring);
        let ring = tokio::time::sleep(Duration::from_millis(trunk.ring_ms));
        tokio::pin!(ring);
        loop {
            tokio::select! {
                _ = &mut ring => break,
                ev = events.recv() => match ev {
                    Some(CallEvent::Ended { reason, .. }) => {
                        tracing::info!(?reason, "call ended while ringing");
                        return Ok(None);
                    }
                    None => return Ok(None),
                    Some(_) => {}
                },
            }
        }
    }
    sip.send(|c| SipCommand::Answer(c, sdp_out.into_bytes()));
    tracing::info!(rtp_port, "answered");
    Ok(Some(Answered {
        trunk,
        rtp,
        rtcp,
        local_media,
        negotiated,
    }))
}

/// The answered call: RTP in and out every packetisation interval, the IVR on top, SIP events
/// (re-INVITE, the late answer, the end) in between.
async fn media(
    ctx: &CallContext,
    answered: Answered,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    sip: &Sip,
) -> Result<(), CallError> {
    let Answered {
        trunk,
        rtp,
        rtcp,
        mut local_media,
        negotiated,
    } = answered;
    let now = Instant::now();
    let neg = negotiated.unwrap_or_else(|| provisional_negotiation(&local_media));
    let leg = CarrierLeg::new(
        now,
        SystemTime::now(),
        neg,
        trunk.symmetric_rtp,
        ctx.config.media.jitter_min(),
        ctx.config.media.jitter_max(),
    );
    let menu = trunk.ivr_menu().unwrap_or("main");
    let mut core = IvrCall::new(
        now,
        leg,
        ctx.ivr.clone(),
        menu,
        ctx.prompts.clone(),
        ctx.config.media.rtp_timeout(),
    )?;
    let mut ticker = tokio::time::interval(core.leg.ptime());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => return Ok(()),
                Some(CallEvent::Ended { reason, .. }) => {
                    tracing::info!(?reason, digits = core.digits_heard(), "call ended");
                    if reason != EndReason::RemoteBye {
                        core.leg.bye(Instant::now());
                        flush(&mut core, &rtp, &rtcp);
                    }
                    return Ok(());
                }
                Some(CallEvent::Confirmed { answer: Some(answer), .. }) => {
                    match accept_answer(&answer, &local_media) {
                        Ok(neg) => core.leg.renegotiate(Instant::now(), neg),
                        Err(e) => {
                            tracing::info!(error = %e, "ack carried no usable answer: hanging up");
                            sip.send(SipCommand::Hangup);
                        }
                    }
                }
                Some(CallEvent::ReInvite { offer, .. }) => {
                    local_media.session_version += 1;
                    let reply = match offer {
                        Some(offer) => answer_offer(&offer, &local_media).map(|(sdp, neg)| {
                            tracing::info!(direction = ?neg.local_direction, "re-invite");
                            core.leg.renegotiate(Instant::now(), neg);
                            sdp.into_bytes()
                        }),
                        None => Ok(sdp::offer(&local_media).to_string().into_bytes()),
                    };
                    sip.send(|c| SipCommand::AnswerReInvite(c, reply));
                }
                Some(_) => {}
            },
            r = rtp.recv_from(&mut rtp_buf) => {
                if let Ok((n, from)) = r {
                    core.leg.handle_rtp(Instant::now(), from, &rtp_buf[..n]);
                }
            }
            r = rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, from)) = r {
                    core.leg.handle_rtcp(Instant::now(), from, &rtcp_buf[..n]);
                }
            }
            _ = ticker.tick() => {
                core.tick(Instant::now());
                flush(&mut core, &rtp, &rtcp);
                while let Some(action) = core.poll_action() {
                    match action {
                        CallAction::Hangup => {
                            tracing::info!(digits = core.digits_heard(), "ivr hangs up");
                        }
                        CallAction::RtpTimeout => {
                            tracing::info!("no rtp from the carrier: hanging up");
                        }
                        CallAction::Transfer { target, digits } => {
                            // Destinations arrive with later issues; until then the call ends
                            // rather than leaving the caller in silence.
                            tracing::warn!(%target, %digits, "ivr destination not routable yet: hanging up");
                        }
                    }
                    sip.send(SipCommand::Hangup);
                }
            }
        }
    }
}

/// Sends what the leg queued. A full socket buffer drops the packet: late audio is worthless.
fn flush(core: &mut IvrCall, rtp: &UdpSocket, rtcp: &UdpSocket) {
    while let Some(t) = core.poll_transmit() {
        let sock = if t.rtcp { rtcp } else { rtp };
        let _ = sock.try_send_to(&t.payload, t.to);
    }
}

fn local_media(trunk: &TrunkConfig, ip: IpAddr, rtp_port: u16) -> LocalMedia {
    LocalMedia {
        addr: ip,
        rtp_port,
        codecs: trunk
            .codecs
            .iter()
            .map(|c| match c {
                CodecName::Pcmu => Codec::Pcmu,
                CodecName::Pcma => Codec::Pcma,
            })
            .collect(),
        telephone_event_pt: 101,
        ptime_ms: 20,
        session_id: rand::random::<u32>().into(),
        session_version: 1,
        direction: Direction::SendRecv,
        username: "trunkgate".into(),
    }
}

/// Answers an SDP offer; `Err` is the SIP status refusing it (400 unreadable, 488 unusable).
fn answer_offer(offer: &[u8], local: &LocalMedia) -> Result<(String, Negotiated), u16> {
    let text = String::from_utf8_lossy(offer);
    let parsed = sdp::parse(&text).map_err(|e| {
        tracing::info!(error = %e, "unreadable sdp offer");
        400u16
    })?;
    let (answer, neg) = sdp::answer(&parsed, local).map_err(|e| {
        tracing::info!(error = %e, "sdp offer refused");
        e.sip_status()
    })?;
    Ok((answer.to_string(), neg))
}

fn accept_answer(answer: &[u8], local: &LocalMedia) -> Result<Negotiated, String> {
    let parsed = sdp::parse(&String::from_utf8_lossy(answer)).map_err(|e| e.to_string())?;
    sdp::accept_answer(local, &parsed).map_err(|e| e.to_string())
}

/// Until the ACK's answer arrives on a late-offer call, receive our first codec and send
/// nothing (there is nowhere to send yet).
fn provisional_negotiation(local: &LocalMedia) -> Negotiated {
    let codec = local.codecs.first().copied().unwrap_or(Codec::Pcmu);
    Negotiated {
        remote_rtp: None::<SocketAddr>,
        remote_rtcp: None,
        codec,
        payload_type: codec.static_payload_type(),
        telephone_event_pt: Some(local.telephone_event_pt),
        ptime_ms: local.ptime_ms,
        local_direction: Direction::SendRecv,
    }
}
