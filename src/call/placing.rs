//! The task that places a call an agent dialled: it finds the trunk's proxies (RFC 3263, those
//! answering first), binds RTP on the address the carrier will reach, makes the leg and its SDP
//! offer, hands the INVITE to the signalling task (and to the next proxy when one fails), and
//! from then on runs the call like any other ([`super::shell`]).
//! What it cannot do (the proxy does not resolve, no RTP port) ends the call at once as
//! `unreachable`, on the bus and to the center.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::core::{Call, PlacedCall};
use super::leg::sip::MediaSettings;
use super::leg::SipLeg;
use super::outbound::health::{proxy_failed, Health};
use super::outbound::{IdentityHeader, Plan};
use super::rtp_socket::RtpSocket;
use super::shell::{drive, CallContext, Io, LegSockets, Sip};
use super::task::CallIo;
use crate::events::{CallEvent, EndCause, Side, Unanswered};
use crate::queue::center::shell::{CallInput, PlaceRequest};
use crate::sip::endpoint::SipCommand;
use crate::sip::peer::{Peer, Transport};
use crate::sip::resolve::SipTarget;
use crate::sip::tls::TlsClient;
use crate::sip::transport::Transports;
use crate::sip::ua::{CallEvent as SipEvent, CallRef, OutgoingCall};

/// How long finding the proxies (NAPTR, SRV, A/AAAA) may take.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// Takes the center's calls to place until the daemon stops, each on a task of its own.
pub async fn dial_out(
    ctx: Arc<CallContext>,
    transports: Transports,
    commands: mpsc::UnboundedSender<SipCommand>,
    mut places: mpsc::UnboundedReceiver<PlaceRequest>,
) {
    while let Some(request) = places.recv().await {
        let span = tracing::info_span!(
            "call",
            call_id = request.place.call,
            trunk = %request.place.plan.trunk,
            agent = %request.place.agent,
        );
        tokio::spawn(
            place(ctx.clone(), transports.clone(), commands.clone(), request).instrument(span),
        );
    }
}

async fn place(
    ctx: Arc<CallContext>,
    transports: Transports,
    commands: mpsc::UnboundedSender<SipCommand>,
    request: PlaceRequest,
) {
    if matches!(
        request.place.plan.via,
        crate::call::outbound::Via::E1 { .. }
    ) {
        return crate::isdn::calls::place(ctx, request).await;
    }
    let PlaceRequest {
        place,
        from_center,
        media,
    } = request;
    let call = place.call;
    let config = ctx.config.load_full();
    // Ours to choose, so the CDR has it from the start.
    let sip_call_id = format!(
        "{}@trunkgate",
        rand::distributions::DistString::sample_string(
            &rand::distributions::Alphanumeric,
            &mut rand::thread_rng(),
            24
        )
    );
    let placed = PlacedCall {
        id: call,
        trunk: place.plan.trunk.clone(),
        sip_call_id: sip_call_id.clone(),
        agent: place.agent.clone(),
        caller_id: place.plan.caller_id.clone(),
        callee: place.plan.number.to_string(),
        ring_timeout: place.ring_timeout,
    };
    let prepared = prepare(&ctx, &transports, &commands, call, &place.plan, sip_call_id).await;
    let OutgoingLeg {
        leg,
        sockets,
        invite,
    } = match prepared {
        Ok(prepared) => prepared,
        Err(why) => {
            tracing::warn!(error = %why, "call not placed");
            return unreachable(&ctx, placed);
        }
    };
    let sip_events = invite.send();
    let now = Instant::now();
    let rng = StdRng::from_entropy();
    let core = Call::new_outgoing(now, leg, config.clone(), placed, rng);
    // Nothing here enqueues; the center's commands come on `from_center`.
    let (to_center, _) = mpsc::unbounded_channel();
    let io = Io {
        carrier: sockets,
        call: CallIo::new(to_center, media),
        transports,
        onward: None,
        to_place: None,
    };
    let sip = Sip { call, commands };
    drive(&ctx, core, io, sip_events, from_center, &sip).await;
}

/// A leg toward a trunk's proxies with its RTP sockets, its INVITE not sent yet.
pub(super) struct OutgoingLeg {
    pub leg: SipLeg,
    pub sockets: LegSockets,
    pub invite: Invite,
}

/// The INVITE of an [`OutgoingLeg`], to the trunk's proxies one after the other.
pub(super) struct Invite {
    failover: Failover,
    from_ua: mpsc::UnboundedReceiver<SipEvent>,
}

impl Invite {
    /// Sends it; the leg's SIP events come on the receiver returned.
    pub(super) fn send(mut self) -> mpsc::UnboundedReceiver<SipEvent> {
        let (to_core, sip_events) = mpsc::unbounded_channel();
        self.failover.try_next();
        tokio::spawn(self.failover.run(self.from_ua, to_core));
        sip_events
    }
}

/// Makes a leg for `call` out by `plan`: finds the trunk's proxies (RFC 3263, those answering
/// first), binds RTP on our address toward the first, and writes the SDP offer.
pub(super) async fn prepare(
    ctx: &CallContext,
    transports: &Transports,
    commands: &mpsc::UnboundedSender<SipCommand>,
    call: CallRef,
    plan: &Plan,
    sip_call_id: String,
) -> Result<OutgoingLeg, String> {
    let config = ctx.config.load_full();
    let trunk = config
        .config
        .trunks
        .iter()
        .find(|t| t.name == plan.trunk)
        .ok_or("trunk no longer configured")?;
    let probe_every = trunk
        .outbound
        .as_ref()
        .map_or(Duration::from_secs(10), |o| {
            Duration::from_secs(o.probe_interval_s)
        });
    let (targets, host) = locate(ctx, transports, plan).await?;
    // RTP on our address toward the first proxy to try: the others are reached from it too.
    let first_local = targets[0].local;
    let sockets = async {
        let (rtp, rtcp) = ctx.ports.allocate(first_local.ip()).await?;
        let rtp = rtp.into_std().and_then(RtpSocket::new)?;
        let rtcp = rtcp.into_std().and_then(RtpSocket::new)?;
        std::io::Result::Ok((rtp, rtcp))
    };
    let (rtp, rtcp) = sockets.await.map_err(|e| format!("no rtp port: {e}"))?;
    let rtp_addr = rtp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::new(first_local.ip(), 0));
    let mut rng = StdRng::from_entropy();
    let media_config = &config.config.media;
    let settings = MediaSettings {
        jitter_min: media_config.jitter_min(),
        jitter_max: media_config.jitter_max(),
        secure_signalling: targets[0].peer.transport == Transport::Tls,
    };
    let (leg, offer) = SipLeg::new_outgoing(
        Instant::now(),
        SystemTime::now(),
        trunk,
        rtp_addr,
        settings,
        &mut rng,
    )
    .map_err(|e| format!("no sdp offer for the call: {e}"))?;
    let (ua_tx, from_ua) = mpsc::unbounded_channel();
    let failover = Failover {
        call,
        trunk: trunk.name.clone(),
        plan: plan.clone(),
        host,
        offer,
        sip_call_id,
        targets,
        tried: 0,
        probe_every,
        commands: commands.clone(),
        events: ua_tx,
        health: ctx.health.clone(),
    };
    Ok(OutgoingLeg {
        leg,
        sockets: LegSockets { rtp, rtcp },
        invite: Invite { failover, from_ua },
    })
}

/// A proxy to try, reachable from one of our listeners.
#[derive(Debug, Clone)]
struct Target {
    peer: Peer,
    /// Our address as it reaches us.
    local: SocketAddr,
}

/// The trunk's proxies in the order to try (RFC 3263, those answering first), each with our
/// address toward it and, over TLS, the trunk's client settings set for it; and the host for
/// the Request-URI.
async fn locate(
    ctx: &CallContext,
    transports: &Transports,
    plan: &Plan,
) -> Result<(Vec<Target>, String), String> {
    let uri = SipTarget::parse(plan.proxy())?;
    let resolver = ctx.resolver.as_ref().ok_or("no dns resolver")?;
    let mut rng = StdRng::from_entropy();
    let found = resolver
        .resolve(&uri, RESOLVE_LIMIT, &mut rng)
        .await
        .map_err(|e| format!("proxy {}: {e}", plan.proxy()))?;
    let config = ctx.config.load();
    let c = &config.config;
    let trunk = c
        .trunks
        .iter()
        .find(|t| t.name == plan.trunk)
        .ok_or("trunk no longer configured")?;
    let ours = c
        .sip
        .tls_certificate
        .as_deref()
        .zip(c.sip.tls_private_key.as_deref());
    let mut targets = Vec::new();
    for resolved in found {
        let Some(local) = transports.local_address(resolved.transport, resolved.addr) else {
            tracing::debug!(proxy = %resolved.addr, transport = resolved.transport.via_token(), "no listener of its transport: skipped");
            continue;
        };
        if resolved.transport == Transport::Tls {
            match TlsClient::for_trunk(trunk, &resolved.tls_name, &c.base_dir, ours) {
                Ok(client) => transports.set_tls_client(resolved.addr, client),
                Err(e) => {
                    tracing::warn!(proxy = %resolved.addr, error = %e, "no tls toward this proxy: skipped");
                    continue;
                }
            }
        }
        targets.push(Target {
            peer: Peer::new(resolved.transport, resolved.addr),
            local,
        });
    }
    if targets.is_empty() {
        return Err(format!(
            "no proxy of {} reachable with our listeners",
            plan.proxy()
        ));
    }
    let targets = ctx
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .order(targets, |t| t.peer);
    let host = match uri.port {
        Some(port) => format!("{}:{port}", uri.host),
        None => uri.host.clone(),
    };
    Ok((targets, host))
}

/// Between the signalling task and the call: sends the INVITE to the next proxy when one
/// fails (no answer, 503, its connection lost) before the callee answered anything, marking it
/// down; any other answer marks it up. The call sees only the last attempt's outcome.
struct Failover {
    call: CallRef,
    trunk: String,
    plan: Plan,
    host: String,
    offer: Vec<u8>,
    sip_call_id: String,
    targets: Vec<Target>,
    tried: usize,
    probe_every: Duration,
    commands: mpsc::UnboundedSender<SipCommand>,
    events: mpsc::UnboundedSender<SipEvent>,
    health: Arc<std::sync::Mutex<Health>>,
}

impl Failover {
    /// Sends the INVITE to the next proxy; false when none is left.
    fn try_next(&mut self) -> bool {
        let Some(target) = self.targets.get(self.tried).cloned() else {
            return false;
        };
        self.tried += 1;
        if self.tried > 1 {
            tracing::info!(proxy = %target.peer, "trying the next proxy");
        }
        let mut outgoing = invite_for(
            &self.plan,
            &self.trunk,
            target.peer,
            target.local,
            &self.host,
            self.offer.clone(),
        );
        outgoing.call_id = Some(self.sip_call_id.clone());
        let _ = self.commands.send(SipCommand::Invite {
            call: self.call,
            outgoing: Box::new(outgoing),
            events: self.events.clone(),
        });
        true
    }

    fn current(&self) -> Option<&Target> {
        self.tried.checked_sub(1).and_then(|i| self.targets.get(i))
    }

    async fn run(
        mut self,
        mut from_ua: mpsc::UnboundedReceiver<SipEvent>,
        to_core: mpsc::UnboundedSender<SipEvent>,
    ) {
        let mut heard_back = false;
        while let Some(event) = from_ua.recv().await {
            let now = Instant::now();
            match &event {
                SipEvent::Failed { code, reason, .. } if !heard_back => {
                    let proxy_failed = proxy_failed(*code, reason);
                    self.note(now, !proxy_failed);
                    if proxy_failed && !to_core.is_closed() && self.try_next() {
                        continue;
                    }
                }
                SipEvent::Progress { .. } | SipEvent::Answered { .. } if !heard_back => {
                    heard_back = true;
                    self.note(now, true);
                }
                _ => {}
            }
            if to_core.send(event).is_err() {
                // The call is over: nobody will hang this attempt up but us.
                let _ = self.commands.send(SipCommand::Hangup(self.call));
                break;
            }
        }
    }

    /// The current proxy answered (`true`) or failed.
    fn note(&self, now: Instant, answered: bool) {
        let Some(target) = self.current() else {
            return;
        };
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if answered {
            if health.answered(&target.peer) {
                tracing::info!(proxy = %target.peer, trunk = %self.trunk, "carrier proxy answers again: back in use");
            }
        } else if health.failed(
            now,
            target.peer,
            &self.trunk,
            &self.host,
            target.local,
            self.probe_every,
        ) {
            tracing::warn!(proxy = %target.peer, trunk = %self.trunk, "carrier proxy down: probing it with OPTIONS");
        }
    }
}

/// Probes the proxies marked down until they answer; the answers come back through
/// [`super::shell::Spawner`].
pub async fn probe_down_proxies(
    ctx: Arc<CallContext>,
    commands: mpsc::UnboundedSender<SipCommand>,
) {
    let mut tick = tokio::time::interval(PROBE_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.stop.cancelled() => return,
        }
        let (due, down) = {
            let mut health = ctx.health.lock().unwrap_or_else(|p| p.into_inner());
            (health.due_probes(Instant::now()), health.down_per_trunk())
        };
        if let Some(gauge) = &ctx.proxies_down {
            for trunk in &ctx.config.load().config.trunks {
                let n = down.get(&trunk.name).copied().unwrap_or(0);
                gauge.with_label_values(&[&trunk.name]).set(n as i64);
            }
        }
        for probe in due {
            let sent = commands.send(SipCommand::Probe {
                peer: probe.peer,
                local: probe.local,
                host: probe.host,
            });
            if sent.is_err() {
                return;
            }
        }
    }
}

/// How often the prober looks for proxies due a probe.
const PROBE_TICK: Duration = Duration::from_millis(250);

/// The INVITE's addressing: the number in the trunk's format at the proxy's domain, our caller
/// id in From and, where the trunk wants it, P-Asserted-Identity or Remote-Party-ID.
fn invite_for(
    plan: &Plan,
    trunk: &str,
    peer: Peer,
    local: SocketAddr,
    host: &str,
    sdp: Vec<u8>,
) -> OutgoingCall {
    let identity = format!("<sip:{}@{host}>", plan.caller_id);
    let headers = match plan.identity() {
        IdentityHeader::None => Vec::new(),
        IdentityHeader::Pai => vec![("P-Asserted-Identity".to_owned(), identity.clone())],
        IdentityHeader::Rpid => vec![(
            "Remote-Party-ID".to_owned(),
            format!("{identity};party=calling;screen=yes;privacy=off"),
        )],
    };
    let transport = match peer.transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    };
    OutgoingCall {
        trunk: trunk.to_owned(),
        peer,
        local,
        request_uri: format!("sip:{}@{host}{transport}", plan.dialled),
        from: identity,
        to: format!("<sip:{}@{host}>", plan.dialled),
        headers,
        sdp,
        call_id: None,
    }
}

/// A call that could not even be sent: the bus and the center hear it ended unreachable.
pub(crate) fn unreachable(ctx: &CallContext, placed: PlacedCall) {
    let call = placed.id;
    ctx.bus.call(
        call,
        CallEvent::Dialled {
            trunk: placed.trunk,
            sip_call_id: placed.sip_call_id,
            agent: placed.agent,
            caller_id: placed.caller_id,
            callee: placed.callee,
        },
    );
    ctx.bus.call(
        call,
        CallEvent::Ended {
            side: Side::Gateway,
            cause: EndCause::Unanswered {
                why: Unanswered::Unreachable,
                status: 0,
            },
            answered: false,
            quality: Box::default(),
        },
    );
    let _ = ctx.center.send(CallInput::PlacedEnded {
        call,
        unanswered: Some(Unanswered::Unreachable),
    });
}
