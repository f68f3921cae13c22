//! RFC 3264 offer/answer for one G.711 audio stream.
//!
//! The trunk side of a call carries exactly one audio stream. When the carrier offers (INVITE
//! with SDP, re-INVITE), [`answer`] keeps the carrier's m-line count and order, accepts the first
//! usable audio stream and refuses every other one with port 0. When the carrier sent an INVITE
//! without SDP, we [`offer`] in the 200 OK and [`accept_answer`] checks the answer in the ACK.
//!
//! "Usable" means `RTP/AVP`, or `RTP/SAVP` with an SDES key we can use (RFC 4568) when the trunk
//! allows SRTP and the signalling is encrypted (SDES keys in the clear protect nothing). Feedback
//! profiles (`AVPF`) and DTLS-SRTP are refused rather than answered with what we cannot honour.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::codec::Codec;
use super::crypto::{Crypto, SrtpKey, SrtpPolicy};
use super::direction::Direction;
use super::model::{
    AddrType, Attribute, Connection, Fmtp, MediaDescription, Origin, Rtpmap, SessionDescription,
};

/// What RFC 3551 implies for G.711 when the peer names no ptime; every G.711 endpoint takes it.
const DEFAULT_PTIME_MS: u32 = 20;
/// A ptime outside this range is a typo or an attack on our frame buffers, not a preference;
/// such a value is ignored.
const SANE_PTIME_MS: std::ops::RangeInclusive<u32> = 10..=120;
/// RFC 4733 events we offer: DTMF digits 0–9, *, #, A–D (0–15) and flash (16).
const TELEPHONE_EVENTS: &str = "0-16";
const AUDIO_PROTO: &str = "RTP/AVP";
const SECURE_AUDIO_PROTO: &str = "RTP/SAVP";

/// Our side of the audio stream, as configured for the trunk and allocated for this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address the carrier sends RTP to (our `c=`); its family picks IP4 or IP6.
    pub addr: IpAddr,
    pub rtp_port: u16,
    /// Codecs we accept, most preferred first. Answering picks the first of these the offer has,
    /// whatever the offerer's order.
    pub codecs: Vec<Codec>,
    /// Payload type for telephone-event when we offer (e.g. 101). In an answer the offerer's
    /// number is used instead.
    pub telephone_event_pt: u8,
    /// Packetisation we ask for when we offer.
    pub ptime_ms: u32,
    /// `o=` session id: pick once per dialog and keep it.
    pub session_id: u64,
    /// `o=` session version. The caller must increase it every time our SDP changes within the
    /// dialog (RFC 3264 §8: a peer treats an unchanged version as an unchanged description) and
    /// may repeat it only when re-sending an identical description.
    pub session_version: u64,
    /// What we want to do: sendrecv normally, sendonly when we put the carrier on hold.
    pub direction: Direction,
    /// `o=` username; `-` is used if this is empty or contains whitespace.
    pub username: String,
    /// The trunk's SRTP setting.
    pub srtp: SrtpPolicy,
    /// Whether this SDP travels encrypted (SIP over TLS): SDES keys are sent and taken only then.
    pub secure_signalling: bool,
    /// Our keys, one per suite we offer, in preference order (one fresh set per call).
    pub srtp_keys: Vec<SrtpKey>,
}

impl LocalMedia {
    /// Whether our offers carry SRTP.
    fn offers_srtp(&self) -> bool {
        self.srtp != SrtpPolicy::Off && self.secure_signalling && !self.srtp_keys.is_empty()
    }

    fn key_for(&self, suite: super::crypto::SrtpSuite) -> Option<&SrtpKey> {
        self.srtp_keys.iter().find(|key| key.suite == suite)
    }
}

/// The keys of an SRTP stream, each way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// Ours: what we encrypt with.
    pub send: SrtpKey,
    /// The peer's: what we decrypt with.
    pub receive: SrtpKey,
}

/// The outcome both ends agreed on: what the RTP layer needs for this call leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP; `None` when the peer holds with `c=0.0.0.0` (RFC 2543) or `::`.
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP: `a=rtcp` (RFC 3605) if given, else RTP port + 1.
    pub remote_rtcp: Option<SocketAddr>,
    pub codec: Codec,
    /// Payload type of `codec` in the peer's SDP: what we put in, and expect in, RTP headers.
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type, if both sides have it.
    pub telephone_event_pt: Option<u8>,
    /// Packetisation to send with.
    pub ptime_ms: u32,
    /// What WE do on this stream.
    pub local_direction: Direction,
    /// SRTP keys when the stream is `RTP/SAVP`.
    pub srtp: Option<SrtpKeys>,
}

impl Negotiated {
    /// Whether to send RTP: our direction allows it and the peer gave somewhere to send it.
    pub fn we_send(&self) -> bool {
        self.local_direction.sends() && self.remote_rtp.is_some()
    }

    /// Whether to expect (and play out) RTP from the peer.
    pub fn we_receive(&self) -> bool {
        self.local_direction.receives()
    }
}

/// Why no audio could be agreed. When answering an offer, every variant means SIP 488 Not
/// Acceptable Here ([`NegotiationError::sip_status`]); when checking an answer in an ACK the
/// call can only be ended with BYE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no common codec: offered {offered}; we accept {supported} over RTP/AVP audio")]
    NoCommonCodec { offered: String, supported: String },
    #[error("audio stream {media_index} has no c= line, nor has the session")]
    MissingConnection { media_index: usize },
    #[error("connection address {address:?} is not an ip address")]
    UnresolvedAddress { address: String },
    #[error("answer rejected our audio stream with port 0")]
    AnswerRejected,
    #[error("invalid answer: {count} m= lines for our 1")]
    AnswerMediaCount { count: usize },
    #[error(
        "invalid answer: m={media_type} with {proto} where we offered audio with {AUDIO_PROTO}"
    )]
    AnswerNotAudio { media_type: String, proto: String },
    #[error("answer picks none of the codecs we offered: {answered}")]
    AnswerCodecNotOffered { answered: String },
    #[error("this trunk requires SRTP and the offer has only plain RTP/AVP audio")]
    SrtpRequired,
    #[error(
        "this trunk requires SRTP, whose SDES keys must not travel unencrypted: the carrier must call over TLS"
    )]
    SrtpNeedsTls,
    #[error("SRTP (RTP/SAVP) offered but this trunk has srtp = \"off\"")]
    SrtpOff,
    #[error("SRTP (RTP/SAVP) offered over unencrypted signalling: its keys are public, refused")]
    SrtpKeysInTheClear,
    #[error("SRTP offered with no crypto suite we support: {offered}; we support AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32 and AEAD_AES_128_GCM with one inline key and no MKI")]
    NoUsableCrypto { offered: String },
    #[error("invalid answer: no a=crypto line matching one of our offered tags and suites")]
    AnswerCrypto,
}

impl NegotiationError {
    /// The SIP status that refuses the offer this error came from.
    pub fn sip_status(&self) -> u16 {
        488
    }
}

/// What was picked from the peer's audio stream.
struct Selection {
    codec: Codec,
    payload_type: u8,
    telephone_event: Option<(u8, Option<Fmtp>)>,
    ptime_ms: u32,
    remote: RemoteEndpoints,
    /// The peer's direction, after RFC 2543 hold took away its receiving.
    peer_direction: Direction,
}

struct RemoteEndpoints {
    rtp: Option<SocketAddr>,
    rtcp: Option<SocketAddr>,
}

/// Answers a carrier's offer (RFC 3264 §6). Returns the SDP to send and what the RTP layer must
/// do. Errors when no stream is usable; the SIP layer then answers 488.
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let mut accepted = None;
    let mut address_error = None;
    for (media_index, media) in offer.media.iter().enumerate() {
        if !is_audio_stream(media) {
            continue;
        }
        let security = match stream_security(media, local) {
            Ok(security) => security,
            Err(error) => {
                address_error.get_or_insert(error);
                continue;
            }
        };
        match select_from_offer(offer, media_index, media, local) {
            Ok(Some(selection)) => {
                accepted = Some((media_index, selection, security));
                break;
            }
            Ok(None) => {}
            Err(error) => {
                address_error.get_or_insert(error);
            }
        }
    }
    let Some((accepted_index, selection, security)) = accepted else {
        return Err(
            address_error.unwrap_or_else(|| NegotiationError::NoCommonCodec {
                offered: describe_offered(offer),
                supported: describe_codecs(&local.codecs),
            }),
        );
    };

    let local_direction = selection.peer_direction.answer_to(local.direction);
    let mut sdp = local_description(local);
    // RFC 3264 §6: the answer's t= equals the offer's.
    sdp.timing = offer.timing.clone();
    for (media_index, media) in offer.media.iter().enumerate() {
        sdp.media.push(if media_index == accepted_index {
            answered_audio(media, &selection, local_direction, local, security.as_ref())
        } else {
            refused(media)
        });
    }
    let negotiated = Negotiated {
        remote_rtp: selection.remote.rtp,
        remote_rtcp: selection.remote.rtcp,
        codec: selection.codec,
        payload_type: selection.payload_type,
        telephone_event_pt: selection.telephone_event.map(|(pt, _)| pt),
        ptime_ms: selection.ptime_ms,
        local_direction,
        srtp: security.map(|(theirs, ours)| SrtpKeys {
            send: ours,
            receive: theirs.key,
        }),
    };
    Ok((sdp, negotiated))
}

/// Our offer, for an INVITE that came without SDP (late offer: it goes in the 200 OK). Lists every
/// local codec in preference order with its static payload type, then telephone-event. A
/// telephone-event payload type that collides with a codec's is left out rather than offered
/// ambiguously. With SRTP, `RTP/SAVP` and one `a=crypto` line per key, tagged 1, 2, …
pub fn offer(local: &LocalMedia) -> Result<SessionDescription, NegotiationError> {
    if local.srtp == SrtpPolicy::Required && !local.secure_signalling {
        return Err(NegotiationError::SrtpNeedsTls);
    }
    let mut sdp = local_description(local);
    let proto = if local.offers_srtp() {
        SECURE_AUDIO_PROTO
    } else {
        AUDIO_PROTO
    };
    let mut media = MediaDescription::new("audio", local.rtp_port, proto);
    let mut codecs: Vec<Codec> = Vec::new();
    for codec in &local.codecs {
        if !codecs.contains(codec) {
            codecs.push(*codec);
        }
    }
    for codec in &codecs {
        let payload_type = codec.static_payload_type();
        media.formats.push(payload_type.to_string());
        media
            .attributes
            .push(Attribute::Rtpmap(codec.rtpmap(payload_type)));
    }
    let event_pt = local.telephone_event_pt;
    let collides = codecs
        .iter()
        .any(|codec| codec.static_payload_type() == event_pt);
    if event_pt <= 127 && !collides {
        push_telephone_event(
            &mut media,
            event_pt,
            Some(Fmtp {
                format: event_pt.to_string(),
                params: TELEPHONE_EVENTS.to_owned(),
            }),
        );
    }
    media.attributes.push(Attribute::Ptime(local.ptime_ms));
    media.attributes.push(Attribute::Direction(local.direction));
    if local.offers_srtp() {
        for (tag, key) in (1..).zip(&local.srtp_keys) {
            media.attributes.push(crypto_attribute(&Crypto {
                tag,
                key: key.clone(),
            }));
        }
    }
    sdp.media.push(media);
    Ok(sdp)
}

/// Checks the answer (in the ACK) to our [`offer`]: it must keep our single audio stream and pick
/// one of our codecs.
pub fn accept_answer(
    local: &LocalMedia,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    let [media] = &answer.media[..] else {
        return Err(NegotiationError::AnswerMediaCount {
            count: answer.media.len(),
        });
    };
    if media.port == 0 {
        return Err(NegotiationError::AnswerRejected);
    }
    let offered_proto = if local.offers_srtp() {
        SECURE_AUDIO_PROTO
    } else {
        AUDIO_PROTO
    };
    if !is_audio_stream(media) || !media.proto.eq_ignore_ascii_case(offered_proto) {
        return Err(NegotiationError::AnswerNotAudio {
            media_type: media.media_type.clone(),
            proto: media.proto.clone(),
        });
    }
    let srtp = if local.offers_srtp() {
        let keys = crypto_lines(media).find_map(|theirs| {
            let tag = usize::try_from(theirs.tag).ok()?.checked_sub(1)?;
            let ours = local.srtp_keys.get(tag)?;
            (ours.suite == theirs.key.suite).then(|| SrtpKeys {
                send: ours.clone(),
                receive: theirs.key,
            })
        });
        Some(keys.ok_or(NegotiationError::AnswerCrypto)?)
    } else {
        None
    };
    let Some((codec, payload_type)) = media.payload_types().find_map(|payload_type| {
        media
            .codec_of(payload_type)
            .filter(|codec| local.codecs.contains(codec))
            .map(|codec| (codec, payload_type))
    }) else {
        return Err(NegotiationError::AnswerCodecNotOffered {
            answered: describe_formats(media),
        });
    };
    let (remote, peer_direction) = remote_side(answer, 0, media)?;
    Ok(Negotiated {
        remote_rtp: remote.rtp,
        remote_rtcp: remote.rtcp,
        codec,
        payload_type,
        telephone_event_pt: telephone_event_of(media).map(|(pt, _)| pt),
        ptime_ms: ptime_of(answer, media).unwrap_or(local.ptime_ms),
        local_direction: peer_direction.reversed().intersect(local.direction),
        srtp,
    })
}

/// Audio on a port, in plain or SRTP's profile: a stream we may accept.
fn is_audio_stream(media: &MediaDescription) -> bool {
    media.is_audio()
        && media.port != 0
        && (media.proto.eq_ignore_ascii_case(AUDIO_PROTO)
            || media.proto.eq_ignore_ascii_case(SECURE_AUDIO_PROTO))
}

/// Whether an offered audio stream may be accepted by the trunk's SRTP policy, and with which
/// keys (the peer's line, our key of its suite) when it is SRTP.
fn stream_security(
    media: &MediaDescription,
    local: &LocalMedia,
) -> Result<Option<(Crypto, SrtpKey)>, NegotiationError> {
    let secure = media.proto.eq_ignore_ascii_case(SECURE_AUDIO_PROTO);
    match (secure, local.srtp) {
        (false, SrtpPolicy::Required) if !local.secure_signalling => {
            Err(NegotiationError::SrtpNeedsTls)
        }
        (false, SrtpPolicy::Required) => Err(NegotiationError::SrtpRequired),
        (false, _) => Ok(None),
        (true, SrtpPolicy::Off) => Err(NegotiationError::SrtpOff),
        (true, _) if !local.secure_signalling => Err(NegotiationError::SrtpKeysInTheClear),
        (true, _) => crypto_lines(media)
            .find_map(|theirs| {
                let ours = local.key_for(theirs.key.suite)?.clone();
                Some((theirs, ours))
            })
            .map(Some)
            .ok_or_else(|| NegotiationError::NoUsableCrypto {
                offered: describe_crypto(media),
            }),
    }
}

/// The values of a stream's `a=crypto` lines, in the offerer's order.
fn crypto_values(media: &MediaDescription) -> impl Iterator<Item = &str> + '_ {
    media
        .attributes
        .iter()
        .filter_map(|attribute| match attribute {
            Attribute::Other {
                name,
                value: Some(value),
            } if name.eq_ignore_ascii_case("crypto") => Some(value.as_str()),
            _ => None,
        })
}

/// The `a=crypto` lines of a stream we can use, in the offerer's order.
fn crypto_lines(media: &MediaDescription) -> impl Iterator<Item = Crypto> + '_ {
    crypto_values(media).filter_map(Crypto::parse)
}

/// The suites of every `a=crypto` line, for the log: keys never appear.
fn describe_crypto(media: &MediaDescription) -> String {
    let suites: Vec<&str> = crypto_values(media)
        .filter_map(|value| value.split_ascii_whitespace().nth(1))
        .collect();
    if suites.is_empty() {
        "no a=crypto lines".to_owned()
    } else {
        suites.join(", ")
    }
}

fn crypto_attribute(crypto: &Crypto) -> Attribute {
    Attribute::Other {
        name: "crypto".to_owned(),
        value: Some(crypto.value()),
    }
}

/// `Ok(None)` when the stream shares no codec with us.
fn select_from_offer(
    offer: &SessionDescription,
    media_index: usize,
    media: &MediaDescription,
    local: &LocalMedia,
) -> Result<Option<Selection>, NegotiationError> {
    let picked = local.codecs.iter().find_map(|codec| {
        media
            .payload_types()
            .find(|payload_type| media.codec_of(*payload_type) == Some(*codec))
            .map(|payload_type| (*codec, payload_type))
    });
    let Some((codec, payload_type)) = picked else {
        return Ok(None);
    };
    let (remote, peer_direction) = remote_side(offer, media_index, media)?;
    Ok(Some(Selection {
        codec,
        payload_type,
        telephone_event: telephone_event_of(media),
        ptime_ms: ptime_of(offer, media).unwrap_or(DEFAULT_PTIME_MS),
        remote,
        peer_direction,
    }))
}

/// The peer's addresses and direction for an accepted stream. RFC 2543 hold (`c=` 0.0.0.0 or
/// `::`) means the peer receives nothing, whatever its direction attribute says.
fn remote_side(
    sdp: &SessionDescription,
    media_index: usize,
    media: &MediaDescription,
) -> Result<(RemoteEndpoints, Direction), NegotiationError> {
    let connection = sdp
        .connection_for(media)
        .ok_or(NegotiationError::MissingConnection { media_index })?;
    let ip = connection_ip(connection)?;
    let direction = sdp.direction_for(media);
    if ip.is_unspecified() {
        let held = RemoteEndpoints {
            rtp: None,
            rtcp: None,
        };
        return Ok((held, Direction::from_flags(direction.sends(), false)));
    }
    let rtcp = match media.rtcp() {
        Some(rtcp) => {
            let rtcp_ip = match &rtcp.connection {
                Some(connection) => connection_ip(connection)?,
                None => ip,
            };
            Some(SocketAddr::new(rtcp_ip, rtcp.port))
        }
        None => media
            .port
            .checked_add(1)
            .map(|port| SocketAddr::new(ip, port)),
    };
    let endpoints = RemoteEndpoints {
        rtp: Some(SocketAddr::new(ip, media.port)),
        rtcp,
    };
    Ok((endpoints, direction))
}

fn connection_ip(connection: &Connection) -> Result<IpAddr, NegotiationError> {
    connection
        .ip()
        .ok_or_else(|| NegotiationError::UnresolvedAddress {
            address: connection.address.clone(),
        })
}

fn telephone_event_of(media: &MediaDescription) -> Option<(u8, Option<Fmtp>)> {
    let payload_type = media
        .payload_types()
        .find(|payload_type| media.is_telephone_event(*payload_type))?;
    Some((payload_type, media.fmtp(payload_type).cloned()))
}

/// The peer's ptime, capped by its maxptime; `None` when it gave no sane value.
fn ptime_of(sdp: &SessionDescription, media: &MediaDescription) -> Option<u32> {
    let sane = |ms: &u32| SANE_PTIME_MS.contains(ms);
    let ptime = sdp.ptime_for(media).filter(sane);
    let maxptime = sdp.maxptime_for(media).filter(sane);
    match (ptime, maxptime) {
        (Some(ptime), Some(max)) => Some(ptime.min(max)),
        (Some(ptime), None) => Some(ptime),
        (None, Some(max)) if max < DEFAULT_PTIME_MS => Some(max),
        (None, _) => None,
    }
}

/// `o=`, `s=`, session `c=` and `t=0 0` for our side.
fn local_description(local: &LocalMedia) -> SessionDescription {
    let username_is_valid =
        !local.username.is_empty() && !local.username.chars().any(char::is_whitespace);
    let origin = Origin {
        username: if username_is_valid {
            local.username.clone()
        } else {
            "-".to_owned()
        },
        session_id: local.session_id,
        session_version: local.session_version,
        addr_type: AddrType::of(local.addr),
        address: local.addr.to_string(),
    };
    let mut sdp = SessionDescription::new(origin, "-");
    sdp.connection = Some(Connection::from_ip(local.addr));
    sdp
}

fn answered_audio(
    offered: &MediaDescription,
    selection: &Selection,
    direction: Direction,
    local: &LocalMedia,
    security: Option<&(Crypto, SrtpKey)>,
) -> MediaDescription {
    let mut media = MediaDescription::new(
        offered.media_type.clone(),
        local.rtp_port,
        offered.proto.clone(),
    );
    media.formats.push(selection.payload_type.to_string());
    media.attributes.push(Attribute::Rtpmap(
        selection.codec.rtpmap(selection.payload_type),
    ));
    if let Some((payload_type, fmtp)) = &selection.telephone_event {
        push_telephone_event(&mut media, *payload_type, fmtp.clone());
    }
    media.attributes.push(Attribute::Ptime(selection.ptime_ms));
    media.attributes.push(Attribute::Direction(direction));
    if let Some((theirs, ours)) = security {
        media.attributes.push(crypto_attribute(&Crypto {
            tag: theirs.tag,
            key: ours.clone(),
        }));
    }
    media
}

fn push_telephone_event(media: &mut MediaDescription, payload_type: u8, fmtp: Option<Fmtp>) {
    media.formats.push(payload_type.to_string());
    media.attributes.push(Attribute::Rtpmap(Rtpmap {
        payload_type,
        encoding: "telephone-event".to_owned(),
        clock_rate: 8000,
        params: None,
    }));
    if let Some(fmtp) = fmtp {
        media.attributes.push(Attribute::Fmtp(fmtp));
    }
}

/// RFC 3264 §6: a refused stream keeps its media type, proto and formats, with port 0.
fn refused(offered: &MediaDescription) -> MediaDescription {
    let mut media = MediaDescription::new(offered.media_type.clone(), 0, offered.proto.clone());
    media.formats = offered.formats.clone();
    media
}

/// For the 488 log line: every offered stream with its formats, e.g.
/// `audio RTP/AVP [18 G729/8000, 101 telephone-event/8000]`.
fn describe_offered(offer: &SessionDescription) -> String {
    if offer.media.is_empty() {
        return "no m= lines".to_owned();
    }
    let streams: Vec<String> = offer
        .media
        .iter()
        .map(|media| {
            let port_note = if media.port == 0 { " port 0" } else { "" };
            format!(
                "{} {}{port_note} [{}]",
                media.media_type,
                media.proto,
                describe_formats(media)
            )
        })
        .collect();
    streams.join("; ")
}

fn describe_formats(media: &MediaDescription) -> String {
    let mut text = String::new();
    for (index, format) in media.formats.iter().enumerate() {
        if index > 0 {
            text.push_str(", ");
        }
        text.push_str(format);
        let name =
            format
                .parse::<u8>()
                .ok()
                .and_then(|payload_type| match media.rtpmap(payload_type) {
                    Some(map) => Some(format!("{}/{}", map.encoding, map.clock_rate)),
                    None => static_payload_name(payload_type).map(str::to_owned),
                });
        if let Some(name) = name {
            // Writing to a String cannot fail.
            let _ = write!(text, " {name}");
        }
    }
    text
}

/// RFC 3551 static audio payload types a carrier may offer without rtpmap.
fn static_payload_name(payload_type: u8) -> Option<&'static str> {
    Some(match payload_type {
        0 => "PCMU/8000",
        3 => "GSM/8000",
        4 => "G723/8000",
        8 => "PCMA/8000",
        9 => "G722/8000",
        18 => "G729/8000",
        _ => return None,
    })
}

fn describe_codecs(codecs: &[Codec]) -> String {
    if codecs.is_empty() {
        return "no codecs".to_owned();
    }
    let names: Vec<String> = codecs.iter().map(Codec::to_string).collect();
    names.join(", ")
}
