//! The task that places a call an agent dialled: it resolves the trunk's proxy, binds RTP on
//! the address the carrier will reach, makes the leg and its SDP offer, hands the INVITE to
//! the signalling task, and from then on runs the call like any other ([`super::shell`]).
//! What it cannot do (the proxy does not resolve, no RTP port) ends the call at once as
//! `unreachable`, on the bus and to the center.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::core::{Call, PlacedCall};
use super::leg::sip::MediaSettings;
use super::leg::SipLeg;
use super::outbound::{IdentityHeader, Plan};
use super::rtp_socket::RtpSocket;
use super::shell::{drive, CallContext, Io, Sip};
use crate::events::{CallEvent, EndCause, Side, Unanswered};
use crate::queue::center::shell::{CallInput, PlaceRequest};
use crate::sip::endpoint::SipCommand;
use crate::sip::peer::{Peer, Transport};
use crate::sip::tls::TlsClient;
use crate::sip::transport::Transports;
use crate::sip::ua::register::RegistrarUri;
use crate::sip::ua::OutgoingCall;

/// How long the proxy's name may take to resolve.
const RESOLVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    let prepared = prepare(&ctx, &transports, &config, &place.plan).await;
    let (rtp, rtcp, local, peer, proxy_host) = match prepared {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(error = %why, "call not placed");
            return unreachable(&ctx, placed);
        }
    };
    let Some(trunk) = config
        .config
        .trunks
        .iter()
        .find(|t| t.name == place.plan.trunk)
    else {
        return unreachable(&ctx, placed);
    };
    let rtp_addr = rtp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::new(local.ip(), 0));
    let now = Instant::now();
    let mut rng = StdRng::from_entropy();
    let media_config = &config.config.media;
    let settings = MediaSettings {
        jitter_min: media_config.jitter_min(),
        jitter_max: media_config.jitter_max(),
        secure_signalling: peer.transport == Transport::Tls,
    };
    let (leg, offer) =
        match SipLeg::new_outgoing(now, SystemTime::now(), trunk, rtp_addr, settings, &mut rng) {
            Ok(made) => made,
            Err(e) => {
                tracing::warn!(error = %e, "no sdp offer for the call");
                return unreachable(&ctx, placed);
            }
        };
    let mut outgoing = invite_for(&place.plan, &trunk.name, peer, local, &proxy_host, offer);
    outgoing.call_id = Some(sip_call_id);
    let (events_tx, sip_events) = mpsc::unbounded_channel();
    let _ = commands.send(SipCommand::Invite {
        call,
        outgoing: Box::new(outgoing),
        events: events_tx,
    });
    let core = Call::new_outgoing(now, leg, config.clone(), placed, rng);
    // Nothing here enqueues; the center's commands come on `from_center`.
    let (to_center, _) = mpsc::unbounded_channel();
    let io = Io {
        rtp,
        rtcp,
        to_center,
        agent: media,
    };
    let sip = Sip { call, commands };
    drive(&ctx, core, io, sip_events, from_center, &sip).await;
}

type Prepared = (RtpSocket, RtpSocket, SocketAddr, Peer, String);

/// Where the INVITE goes and our sockets for the call.
async fn prepare(
    ctx: &CallContext,
    transports: &Transports,
    config: &crate::config::Loaded,
    plan: &Plan,
) -> Result<Prepared, String> {
    let uri = RegistrarUri::parse(&plan.proxy)?;
    let lookup = tokio::net::lookup_host((uri.host.as_str(), uri.port));
    let target = match tokio::time::timeout(RESOLVE_LIMIT, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next(),
        _ => None,
    }
    .ok_or_else(|| format!("proxy {} does not resolve", plan.proxy))?;
    if uri.transport == Transport::Tls {
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
        let client = TlsClient::for_trunk(trunk, &uri.host, &c.base_dir, ours)
            .map_err(|e| format!("tls toward {}: {e}", plan.proxy))?;
        transports.set_tls_client(target, client);
    }
    let local = transports
        .local_address(uri.transport, target)
        .ok_or_else(|| {
            format!(
                "no {} listener to reach {}",
                uri.transport.via_token(),
                plan.proxy
            )
        })?;
    let (rtp, rtcp) = ctx
        .ports
        .allocate(local.ip())
        .await
        .map_err(|e| format!("no rtp port: {e}"))?;
    let rtp = rtp
        .into_std()
        .and_then(RtpSocket::new)
        .map_err(|e| e.to_string())?;
    let rtcp = rtcp
        .into_std()
        .and_then(RtpSocket::new)
        .map_err(|e| e.to_string())?;
    let host = match uri.port {
        5060 if uri.transport != Transport::Tls => uri.host.clone(),
        5061 if uri.transport == Transport::Tls => uri.host.clone(),
        port => format!("{}:{port}", uri.host),
    };
    Ok((rtp, rtcp, local, Peer::new(uri.transport, target), host))
}

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
    let headers = match plan.identity {
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
fn unreachable(ctx: &CallContext, placed: PlacedCall) {
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
