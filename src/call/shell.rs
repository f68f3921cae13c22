//! One tokio task per call: it owns the call's sockets and its [`Call`] core (no locks on the
//! media path) and only moves things: SIP events and RTP into the leg, the contact center's
//! commands and the agent's packets into the core, time when the core's timer is due; and the
//! other way the leg's signals to the signalling task, its packets to the sockets, the core's
//! requests to the center and the agent, its events to the bus. Nothing here decides anything,
//! and nothing awaits but the one `select!` over all of it.
//!
//! Media does not wake the task: the carrier's RTP and the agent's packets wait (stamped with
//! their arrival) until the call's next frame, which takes them all before it plays out. At
//! 50 packets a second each way, a wake-up per packet cost more than the audio work.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::call::core::{Arrival, Call};
use crate::call::leg::sip::{caller_of, MediaSettings};
use crate::call::leg::{SipLeg, SipSignal};
use crate::call::placing::OutgoingLeg;
use crate::call::ports::RtpPorts;
use crate::call::rtp_socket::{Clock, RtpSocket};
use crate::call::task::{carry_out_core, on_center, sleep_until, CallIo, Frames};
use crate::config::SharedConfig;
use crate::events::{Bus, CallEvent, EndCause, Side};
use crate::queue::center::outbound::PlaceCall;
use crate::queue::center::shell::{CallInput, CenterToCall};
use crate::recording::store::RecordingStore;
use crate::sip::endpoint::{CallSpawner, SipCommand};
use crate::sip::transport::Transports;
use crate::sip::ua::{CallEvent as SipEvent, CallRef, IncomingCall};

/// Everything a call needs from the daemon, shared by all calls.
pub struct CallContext {
    pub config: SharedConfig,
    pub ports: RtpPorts,
    /// The contact center, for calls that go to a queue.
    pub center: mpsc::UnboundedSender<CallInput>,
    pub bus: Bus,
    /// Which carrier proxies answer: calls placed try those that do first.
    pub health: Arc<std::sync::Mutex<crate::call::outbound::health::Health>>,
    /// Finds a trunk's proxies (RFC 3263); `None` if the resolver could not be set up (then
    /// only proxies given by address work).
    pub resolver: Option<Arc<crate::sip::resolve::SipResolver>>,
    /// Each call times its frames into a local copy of this, flushed every [`FLUSH_FRAMES`].
    pub frame_work: prometheus::Histogram,
    /// A trunk's proxies down, per trunk; set by the prober.
    pub proxies_down: Option<prometheus::IntGaugeVec>,
    /// Where recordings are written; `None` without `[recording] public_key`.
    pub recordings: Option<Arc<RecordingStore>>,
    /// The E1 spans, once started: agents' calls out on a span go through them.
    pub spans: std::sync::OnceLock<Vec<crate::isdn::calls::SpanLink>>,
    pub stop: CancellationToken,
}

/// About five seconds of frames: the histogram is current enough without a shared write per
/// frame.
pub(crate) const FLUSH_FRAMES: u32 = 250;

impl CallContext {
    pub fn new(
        config: SharedConfig,
        center: mpsc::UnboundedSender<CallInput>,
        bus: Bus,
        frame_work: prometheus::Histogram,
        stop: CancellationToken,
    ) -> Self {
        let loaded = config.load();
        let media = &loaded.config.media;
        let resolver = match crate::sip::resolve::SipResolver::new(&loaded.config.sip.dns_servers) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::warn!(error = %e, "no dns resolver: trunk proxies must be addresses");
                None
            }
        };
        CallContext {
            ports: RtpPorts::new(media.rtp_port_min, media.rtp_port_max),
            health: Default::default(),
            resolver,
            config,
            center,
            bus,
            frame_work,
            proxies_down: None,
            recordings: None,
            spans: std::sync::OnceLock::new(),
            stop,
        }
    }
}

/// Starts calls: the carriers' as their INVITEs arrive, the agents' (from `places`) once the
/// signalling is running.
pub struct Spawner {
    pub ctx: Arc<CallContext>,
    pub places: Option<mpsc::UnboundedReceiver<crate::queue::center::shell::PlaceRequest>>,
    pub transports: Transports,
}

impl CallSpawner for Spawner {
    fn signalling_started(&mut self, commands: mpsc::UnboundedSender<SipCommand>) {
        if let Some(places) = self.places.take() {
            tokio::spawn(super::placing::dial_out(
                self.ctx.clone(),
                self.transports.clone(),
                commands.clone(),
                places,
            ));
            tokio::spawn(super::placing::probe_down_proxies(
                self.ctx.clone(),
                commands,
            ));
        }
    }

    fn probed(&mut self, peer: crate::sip::peer::Peer, alive: bool) {
        let mut health = self.ctx.health.lock().unwrap_or_else(|p| p.into_inner());
        if alive {
            if health.answered(&peer) {
                tracing::info!(%peer, "carrier proxy answers again: back in use");
            }
        } else {
            health.probe_failed(Instant::now(), &peer);
        }
    }

    fn spawn(
        &mut self,
        incoming: Box<IncomingCall>,
        commands: mpsc::UnboundedSender<SipCommand>,
    ) -> mpsc::UnboundedSender<SipEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let span = tracing::info_span!(
            "call",
            call_id = incoming.call,
            trunk = %incoming.trunk,
            peer = %incoming.peer
        );
        let sip = Sip {
            call: incoming.call,
            commands,
        };
        let ctx = self.ctx.clone();
        let transports = self.transports.clone();
        tokio::spawn(run(ctx, transports, incoming, rx, sip).instrument(span));
        tx
    }
}

/// The way back to the signalling task for one call.
pub(super) struct Sip {
    pub(super) call: CallRef,
    pub(super) commands: mpsc::UnboundedSender<SipCommand>,
}

impl Sip {
    fn send(&self, signal: SipSignal) {
        let c = self.call;
        let cmd = match signal {
            SipSignal::Ring => SipCommand::Ring(c),
            SipSignal::Answer(sdp) => SipCommand::Answer(c, sdp),
            SipSignal::Reject(code) => SipCommand::Reject(c, code),
            SipSignal::AnswerReInvite(reply) => SipCommand::AnswerReInvite(c, reply),
            SipSignal::Hangup => SipCommand::Hangup(c),
            SipSignal::Refer { number, by } => SipCommand::Refer(c, number, by),
        };
        // The signalling task is gone only when the daemon stops.
        let _ = self.commands.send(cmd);
    }
}

/// A carrier leg's RTP and RTCP sockets.
pub(super) struct LegSockets {
    pub(super) rtp: RtpSocket,
    pub(super) rtcp: RtpSocket,
}

/// A packet as a leg's socket received it.
struct Packet<'a> {
    from: SocketAddr,
    bytes: &'a [u8],
    rtcp: bool,
}

impl Packet<'_> {
    fn into_leg(self, leg: &mut SipLeg, now: Instant) {
        if self.rtcp {
            leg.handle_rtcp(now, self.from, self.bytes)
        } else {
            leg.handle_rtp(now, self.from, self.bytes)
        }
    }
}

impl LegSockets {
    /// Sends what `leg` queued: its signals to the signalling task, its packets to the carrier.
    fn carry_out(&self, leg: &mut SipLeg, sip: &Sip) {
        while let Some(signal) = leg.poll_signal() {
            sip.send(signal);
        }
        while let Some(t) = leg.poll_transmit() {
            // A full socket buffer drops the packet: late audio is worthless.
            let _ = if t.rtcp {
                self.rtcp.send_to(&t.payload, t.to)
            } else {
                self.rtp.send_to(&t.payload, t.to)
            };
        }
    }

    /// Everything that arrived since the last frame, RTP then RTCP, each with its arrival
    /// time. A read error other than "nothing left" (none is expected of a bound UDP socket)
    /// ends the draining for this frame, like an empty socket.
    fn drain(&self, buf: &mut [u8], clock: &Clock, mut deliver: impl FnMut(Instant, Packet<'_>)) {
        for (socket, rtcp) in [(&self.rtp, false), (&self.rtcp, true)] {
            while let Ok(got) = socket.recv(buf, clock) {
                let packet = Packet {
                    from: got.from,
                    bytes: &buf[..got.len],
                    rtcp,
                };
                deliver(got.arrived, packet);
            }
        }
    }
}

/// A SIP call's sockets and signalling, and the handles its core's outputs go to.
pub(super) struct Io {
    pub(super) carrier: LegSockets,
    pub(super) call: CallIo,
    /// For a transfer target's leg: finding its proxies, connecting to them.
    pub(super) transports: Transports,
    /// The transfer target's leg's sockets and signalling.
    pub(super) onward: Option<OnwardIo>,
    /// A transfer target's leg the core asked for, to be made.
    pub(super) to_place: Option<(Box<PlaceCall>, String)>,
}

/// A transfer target's leg, as the shell carries it.
pub(super) struct OnwardIo {
    sockets: LegSockets,
    sip: Sip,
}

async fn run(
    ctx: Arc<CallContext>,
    transports: Transports,
    incoming: Box<IncomingCall>,
    sip_events: mpsc::UnboundedReceiver<SipEvent>,
    sip: Sip,
) {
    let IncomingCall {
        call,
        trunk,
        call_id: sip_call_id,
        from,
        to,
        offer,
        local,
        peer,
    } = *incoming;
    // The configuration in force now is this call's to its end, whatever a reload does.
    let config = ctx.config.load_full();
    let Some(trunk) = config.config.trunks.iter().find(|t| t.name == trunk) else {
        // A reload removed the trunk between the INVITE and now.
        tracing::info!(%trunk, "trunk no longer configured: call refused");
        sip.send(SipSignal::Reject(403));
        refused(&ctx.bus, call, &trunk, &sip_call_id, &from, &to, 403);
        return;
    };
    // RTP is bound on the address the carrier reached us on, so SDP and packets agree.
    let (rtp, rtcp) = match ctx.ports.allocate(local.ip()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no rtp port: call refused");
            sip.send(SipSignal::Reject(503));
            refused(&ctx.bus, call, &trunk.name, &sip_call_id, &from, &to, 503);
            return;
        }
    };
    let sockets = rtp
        .into_std()
        .and_then(RtpSocket::new)
        .and_then(|rtp| Ok((rtp, rtcp.into_std().and_then(RtpSocket::new)?)));
    let (rtp, rtcp) = match sockets {
        Ok(sockets) => sockets,
        Err(e) => {
            tracing::warn!(error = %e, "rtp socket unusable: call refused");
            sip.send(SipSignal::Reject(503));
            refused(&ctx.bus, call, &trunk.name, &sip_call_id, &from, &to, 503);
            return;
        }
    };
    let rtp_addr = rtp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::new(local.ip(), 0));
    let now = Instant::now();
    let mut rng = StdRng::from_entropy();
    let media = &config.config.media;
    let settings = MediaSettings {
        jitter_min: media.jitter_min(),
        jitter_max: media.jitter_max(),
        secure_signalling: peer.transport == crate::sip::peer::Transport::Tls,
    };
    let leg = SipLeg::new(
        now,
        SystemTime::now(),
        trunk,
        offer,
        rtp_addr,
        settings,
        &mut rng,
    );
    let arrival = Arrival {
        id: call,
        trunk: trunk.name.clone(),
        sip_call_id: sip_call_id.clone(),
        caller: caller_of(&from),
        callee: caller_of(&to),
        route: trunk.route.clone(),
        ring: std::time::Duration::from_millis(trunk.ring_ms),
    };
    let core = Call::new(now, leg, config.clone(), arrival, rng);
    let (to_center, from_center) = mpsc::unbounded_channel();
    let io = Io {
        carrier: LegSockets { rtp, rtcp },
        call: CallIo::new(to_center, None),
        transports,
        onward: None,
        to_place: None,
    };
    drive(&ctx, core, io, sip_events, from_center, &sip).await;
}

/// The call's loop, inbound or outbound: signalling, the center's commands and the frame
/// clock into the core, its outputs out, until it is over.
pub(super) async fn drive(
    ctx: &Arc<CallContext>,
    mut core: Call<SipLeg>,
    mut io: Io,
    mut sip_events: mpsc::UnboundedReceiver<SipEvent>,
    mut from_center: mpsc::UnboundedReceiver<CenterToCall>,
    sip: &Sip,
) {
    let mut frames = Frames::new(ctx);
    let mut media_buf = vec![0u8; 2048];
    // The transfer target's leg: being made, then its SIP events.
    let mut onward_setup: Option<oneshot::Receiver<Made>> = None;
    let mut onward_events: Option<mpsc::UnboundedReceiver<SipEvent>> = None;
    loop {
        carry_out(&mut core, ctx, sip, &mut io);
        if let Some((place, sip_call_id)) = io.to_place.take() {
            onward_setup = Some(make_onward(ctx, &io.transports, sip, place, sip_call_id));
        }
        if core.is_over() {
            break;
        }
        let deadline = core.poll_timeout();
        tokio::select! {
            made = async { onward_setup.as_mut().expect("guarded").await }, if onward_setup.is_some() => {
                onward_setup = None;
                let now = Instant::now();
                match made {
                    Ok((call, Ok(made))) => {
                        let OutgoingLeg { leg, sockets, invite } = made;
                        if core.onward_ready(leg).is_ok() {
                            onward_events = Some(invite.send());
                            io.onward = Some(OnwardIo {
                                sockets,
                                sip: Sip { call, commands: sip.commands.clone() },
                            });
                        }
                    }
                    Ok((_, Err(why))) => {
                        tracing::warn!(error = %why, "transfer target not called");
                        core.onward_unreachable(now);
                    }
                    // The task making it panicked.
                    Err(_) => core.onward_unreachable(now),
                }
            }
            Some(ev) = async { onward_events.as_mut().expect("guarded").recv().await }, if onward_events.is_some() => {
                core.handle_onward(Instant::now(), |leg, now| leg.handle_sip(now, ev));
            }
            ev = sip_events.recv() => {
                let now = Instant::now();
                match ev {
                    Some(ev) => core.handle_leg(now, |leg, now| leg.handle_sip(now, ev)),
                    // The signalling task dropped the call without a word: it is stopping.
                    None => core.shutdown(now),
                }
            }
            msg = from_center.recv() => {
                if let Some(msg) = msg {
                    on_center(&mut core, &mut io.call, msg);
                }
            }
            _ = sleep_until(deadline) => {
                frames.tick(&mut core, &mut io.call, |core| take_media(core, &io.carrier, io.onward.as_ref(), &mut media_buf));
            }
            _ = ctx.stop.cancelled() => core.shutdown(Instant::now()),
        }
    }
    carry_out(&mut core, ctx, sip, &mut io);
    io.call.recording.finish(ctx).await;
}

/// A transfer target's leg as made (or why not), with its call reference.
type Made = (CallRef, Result<OutgoingLeg, String>);

/// Makes the transfer target's leg on a task of its own (finding the proxies takes DNS).
fn make_onward(
    ctx: &Arc<CallContext>,
    transports: &Transports,
    sip: &Sip,
    place: Box<PlaceCall>,
    sip_call_id: String,
) -> oneshot::Receiver<Made> {
    let (tx, rx) = oneshot::channel();
    let ctx = ctx.clone();
    let transports = transports.clone();
    let commands = sip.commands.clone();
    tokio::spawn(
        async move {
            let made = super::placing::prepare(
                &ctx,
                &transports,
                &commands,
                place.call,
                &place.plan,
                sip_call_id,
            )
            .await;
            let _ = tx.send((place.call, made));
        }
        .in_current_span(),
    );
    rx
}

/// Carries out everything the core and its legs have queued.
fn carry_out(core: &mut Call<SipLeg>, ctx: &CallContext, sip: &Sip, io: &mut Io) {
    io.carrier.carry_out(core.leg_mut(), sip);
    if let (Some(leg), Some(onward)) = (core.onward_mut(), &io.onward) {
        onward.sockets.carry_out(leg, &onward.sip);
    }
    if let Some(place) = carry_out_core(core, ctx, &mut io.call) {
        io.to_place = Some(place);
    }
}

/// A call refused before it could have a core (its trunk gone, no RTP port): its arrival and end
/// still go on the bus, so metrics and the journal count it.
pub(super) fn refused(
    bus: &Bus,
    call: CallRef,
    trunk: &str,
    sip_call_id: &str,
    from: &str,
    to: &str,
    status: u16,
) {
    bus.call(
        call,
        CallEvent::Arrived {
            trunk: trunk.to_string(),
            sip_call_id: sip_call_id.to_string(),
            caller: caller_of(from),
            callee: caller_of(to),
        },
    );
    bus.call(
        call,
        CallEvent::Ended {
            side: Side::Gateway,
            cause: EndCause::Refused { status },
            answered: false,
            quality: Box::default(),
        },
    );
}

/// Everything the carrier sent since the last frame, in the order it came, each at its arrival
/// time. RTCP too: it needs no quicker answer than the next frame, and its arrival stamp keeps
/// the round trip it measures exact.
fn take_media(
    core: &mut Call<SipLeg>,
    carrier: &LegSockets,
    onward: Option<&OnwardIo>,
    buf: &mut [u8],
) {
    let clock = Clock::now();
    carrier.drain(buf, &clock, |at, packet| {
        core.handle_leg(at, |leg, now| packet.into_leg(leg, now))
    });
    if let Some(onward) = onward {
        onward.sockets.drain(buf, &clock, |at, packet| {
            core.handle_onward(at, |leg, now| packet.into_leg(leg, now))
        });
    }
}
