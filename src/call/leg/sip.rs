//! The SIP leg: a call from a SIP trunk, as a sans-IO [`Leg`]. It makes the SDP decisions
//! (answer the carrier's offer, or offer first on a late-offer INVITE and take the answer from
//! the ACK; answer re-INVITEs for hold, unhold and new addresses) and carries the audio over
//! [`RtpMedia`]. What it asks of the signalling task comes out of [`SipLeg::poll_signal`].
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;

use super::{Leg, LegEnd, LegRefusal, MediaTransmit, Progress, RtpMedia};
use crate::events::LegQuality;
use crate::media::dtmf::DtmfError;
use crate::sip::sdp::{
    self, Codec, Direction, LocalMedia, Negotiated, NegotiationError, SdpError, SrtpKey,
    SrtpPolicy, SrtpSuite,
};
use crate::sip::trunk::{CodecName, TrunkConfig};
use crate::sip::ua::{CallEvent as SipEvent, EndReason};

/// What the leg asks of the signalling task (the call reference is the shell's to add).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipSignal {
    Ring,
    Answer(Vec<u8>),
    Reject(u16),
    AnswerReInvite(Result<Vec<u8>, u16>),
    Hangup,
    /// Ask the carrier to transfer the call to this number, for this agent (REFER).
    Refer {
        number: String,
        by: String,
    },
}

/// Why an SDP body could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OfferError {
    #[error("unreadable sdp: {0}")]
    Unreadable(#[from] SdpError),
    #[error("unusable sdp: {0}")]
    Unusable(#[from] NegotiationError),
}

impl OfferError {
    /// The SIP status refusing it: 400 unreadable, 488 unusable.
    pub fn sip_status(&self) -> u16 {
        match self {
            OfferError::Unreadable(_) => 400,
            OfferError::Unusable(e) => e.sip_status(),
        }
    }
}

/// Media settings a leg needs from the configuration and the signalling.
#[derive(Debug, Clone, Copy)]
pub struct MediaSettings {
    pub jitter_min: Duration,
    pub jitter_max: Duration,
    /// The INVITE came over TLS: SDES keys may be exchanged.
    pub secure_signalling: bool,
}

pub struct SipLeg {
    local_media: LocalMedia,
    offer: Option<Vec<u8>>,
    /// Our SDP for the 200 OK, decided by [`Leg::accept`].
    answer_sdp: Option<String>,
    media: RtpMedia,
    signals: VecDeque<SipSignal>,
    end: Option<LegEnd>,
    answered: bool,
    hung_up: bool,
    /// We placed the call: the far end answers our offer.
    outgoing: bool,
    /// The far end's answer to our offer has been applied (from a 183 or the 2xx).
    got_answer: bool,
    /// The far end said it rings (told once).
    rang: bool,
    /// What came of our requests to the carrier to transfer the call.
    handed_over: VecDeque<Result<(), u16>>,
    progress: VecDeque<Progress>,
}

impl SipLeg {
    /// A call offered by `trunk`, with its SDP `offer` (`None`: a late offer), whose RTP is
    /// bound on `rtp` (the address the carrier reached us on, so SDP and packets agree).
    pub fn new(
        now: Instant,
        wall_clock: SystemTime,
        trunk: &TrunkConfig,
        offer: Option<Vec<u8>>,
        rtp: SocketAddr,
        settings: MediaSettings,
        rng: &mut impl Rng,
    ) -> Self {
        let mut local_media = local_media(trunk, rtp.ip(), rtp.port(), rng.gen());
        local_media.secure_signalling = settings.secure_signalling;
        if trunk.srtp != SrtpPolicy::Off && settings.secure_signalling {
            local_media.srtp_keys = SrtpSuite::ALL
                .iter()
                .map(|suite| SrtpKey::from_random(*suite, &rng.gen()))
                .collect();
        }
        let media = RtpMedia::new(
            now,
            wall_clock,
            provisional_negotiation(&local_media),
            trunk.symmetric_rtp,
            settings.jitter_min,
            settings.jitter_max,
            rng,
        );
        SipLeg {
            local_media,
            offer,
            answer_sdp: None,
            media,
            signals: VecDeque::new(),
            end: None,
            answered: false,
            hung_up: false,
            outgoing: false,
            got_answer: false,
            rang: false,
            handed_over: VecDeque::new(),
            progress: VecDeque::new(),
        }
    }

    /// A call we place on `trunk`, with our RTP bound on `rtp`; also our SDP offer for the
    /// INVITE.
    pub fn new_outgoing(
        now: Instant,
        wall_clock: SystemTime,
        trunk: &TrunkConfig,
        rtp: SocketAddr,
        settings: MediaSettings,
        rng: &mut impl Rng,
    ) -> Result<(Self, Vec<u8>), OfferError> {
        let mut leg = SipLeg::new(now, wall_clock, trunk, None, rtp, settings, rng);
        leg.outgoing = true;
        let offer = sdp::offer(&leg.local_media)?;
        Ok((leg, offer.to_string().into_bytes()))
    }

    /// The far end's SDP answer to our offer (from a 183 or the 2xx).
    fn take_answer(&mut self, now: Instant, answer: &[u8]) -> bool {
        match accept_answer(answer, &self.local_media) {
            Ok(neg) => {
                self.media.renegotiate(now, neg);
                self.got_answer = true;
                true
            }
            Err(e) => {
                tracing::info!(error = %e, "the callee's sdp answer is unusable: hanging up");
                self.hang_up(now);
                self.end.get_or_insert(LegEnd::Failed);
                false
            }
        }
    }

    /// A SIP event for this call from the signalling task.
    pub fn handle_sip(&mut self, now: Instant, event: SipEvent) {
        match event {
            SipEvent::Confirmed {
                answer: Some(answer),
                ..
            } => match accept_answer(&answer, &self.local_media) {
                Ok(neg) => self.media.renegotiate(now, neg),
                Err(e) => {
                    tracing::info!(error = %e, "ack carried no usable answer: hanging up");
                    self.hang_up(now);
                    self.end = Some(LegEnd::Failed);
                }
            },
            SipEvent::ReInvite { offer, .. } => {
                self.local_media.session_version += 1;
                let reply = match offer {
                    Some(offer) => match answer_offer(&offer, &self.local_media) {
                        Ok((sdp, neg)) => {
                            tracing::info!(direction = ?neg.local_direction, "re-invite");
                            self.media.renegotiate(now, neg);
                            Ok(sdp.into_bytes())
                        }
                        Err(e) => {
                            tracing::info!(error = %e, "re-invite offer refused");
                            Err(e.sip_status())
                        }
                    },
                    None => sdp::offer(&self.local_media)
                        .map(|sdp| sdp.to_string().into_bytes())
                        .map_err(|e| e.sip_status()),
                };
                self.signals.push_back(SipSignal::AnswerReInvite(reply));
            }
            SipEvent::Ended { reason, .. } => {
                if reason != EndReason::RemoteBye && self.answered && !self.hung_up {
                    self.media.bye(now);
                }
                self.end.get_or_insert(match reason {
                    EndReason::RemoteBye => LegEnd::HungUp,
                    EndReason::Cancelled => LegEnd::Cancelled,
                    EndReason::NoAck => LegEnd::NoConfirmation,
                    EndReason::Local => LegEnd::Local,
                    EndReason::SessionExpired => LegEnd::SessionExpired,
                });
            }
            SipEvent::Progress { sdp, code, .. } => {
                let early = match sdp {
                    Some(sdp) if !self.got_answer => self.take_answer(now, &sdp),
                    _ => false,
                };
                if early {
                    self.progress.push_back(Progress::EarlyMedia);
                } else if (code == 180 || code == 183) && !self.rang && !self.got_answer {
                    self.rang = true;
                    self.progress.push_back(Progress::Ringing);
                }
            }
            SipEvent::Answered { sdp, .. } => {
                // Without reliable provisionals the 2xx's answer is the one that counts.
                let usable = match sdp {
                    Some(sdp) => self.take_answer(now, &sdp),
                    None if self.got_answer => true,
                    None => {
                        tracing::info!("the callee answered without sdp: hanging up");
                        self.answered = true;
                        self.hang_up(now);
                        self.end.get_or_insert(LegEnd::Failed);
                        false
                    }
                };
                if usable {
                    self.answered = true;
                    self.progress.push_back(Progress::Answered);
                }
            }
            SipEvent::Failed { code, reason, .. } => {
                // Our own Timer B: the carrier said nothing at all, which is no status of its.
                let status = if reason == crate::sip::ua::NO_RESPONSE {
                    0
                } else {
                    code
                };
                self.end.get_or_insert(LegEnd::Unanswered { status });
            }
            SipEvent::Referred { status, .. } => {
                self.handed_over.push_back(if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(status)
                });
            }
            SipEvent::Confirmed { answer: None, .. }
            | SipEvent::Incoming(_)
            | SipEvent::Info { .. } => {}
        }
    }

    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.media.handle_rtp(now, from, datagram);
    }

    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.media.handle_rtcp(now, from, datagram);
    }

    /// Refuses the call for what was wrong with its SDP.
    fn refuse(&mut self, e: OfferError) -> LegRefusal {
        let status = e.sip_status();
        self.signals.push_back(SipSignal::Reject(status));
        self.hung_up = true;
        LegRefusal {
            status,
            reason: e.into(),
        }
    }

    pub fn poll_signal(&mut self) -> Option<SipSignal> {
        self.signals.pop_front()
    }

    /// A datagram for the leg's RTP or RTCP socket.
    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.media.poll_transmit()
    }
}

impl Leg for SipLeg {
    fn accept(&mut self, now: Instant) -> Result<(), LegRefusal> {
        let sdp = match &self.offer {
            Some(offer) => match answer_offer(offer, &self.local_media) {
                Ok((sdp, neg)) => {
                    self.media.renegotiate(now, neg);
                    sdp
                }
                Err(e) => return Err(self.refuse(e)),
            },
            // Late offer: we offer now, the ACK brings the answer.
            None => match sdp::offer(&self.local_media) {
                Ok(sdp) => sdp.to_string(),
                Err(e) => return Err(self.refuse(e.into())),
            },
        };
        self.answer_sdp = Some(sdp);
        Ok(())
    }

    fn ring(&mut self, _now: Instant) {
        self.signals.push_back(SipSignal::Ring);
    }

    fn answer(&mut self, _now: Instant) {
        let sdp = self.answer_sdp.take().unwrap_or_default();
        self.signals.push_back(SipSignal::Answer(sdp.into_bytes()));
        self.answered = true;
    }

    fn hang_up(&mut self, now: Instant) {
        if self.hung_up || self.end.is_some() {
            return;
        }
        self.hung_up = true;
        if self.answered {
            self.media.bye(now);
        }
        self.signals.push_back(SipSignal::Hangup);
    }

    fn poll_end(&mut self) -> Option<LegEnd> {
        self.end
    }

    fn frame_period(&self) -> Duration {
        self.media.ptime()
    }

    fn samples_per_frame(&self) -> usize {
        self.media.samples_per_frame()
    }

    fn exchange(&mut self, now: Instant, outgoing: &[i16]) -> &[i16] {
        self.media.tick(now, outgoing)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.media.handle_timeout(now);
    }

    fn poll_digit(&mut self) -> Option<char> {
        self.media.poll_digit()
    }

    fn send_digits(&mut self, digits: &str) -> Result<(), DtmfError> {
        self.media.send_digits(digits)
    }

    fn silent_for(&self, now: Instant) -> Duration {
        self.media.silent_for(now)
    }

    fn held_by_carrier(&self) -> bool {
        self.answered && !self.media.negotiated().we_send()
    }

    fn poll_progress(&mut self) -> Option<Progress> {
        self.progress.pop_front()
    }

    fn hand_over(&mut self, _now: Instant, number: &str, by: &str) -> bool {
        if !self.answered || self.hung_up || self.end.is_some() {
            return false;
        }
        self.signals.push_back(SipSignal::Refer {
            number: number.to_owned(),
            by: by.to_owned(),
        });
        true
    }

    fn poll_handed_over(&mut self) -> Option<Result<(), u16>> {
        self.handed_over.pop_front()
    }

    fn quality(&self) -> LegQuality {
        let rtcp = self.media.rtcp_stats();
        let stats = self.media.stats();
        let jitter = self.media.jitter_stats();
        LegQuality {
            packets_received: stats.rtp_received,
            packets_sent: stats.rtp_sent,
            packets_lost: rtcp.packets_lost,
            packets_rejected: stats.rtp_rejected,
            jitter_ms: rtcp.jitter_ms,
            concealed_frames: jitter.concealed,
            jitter_buffer_delay: jitter.mean_playout_delay(),
            jitter_buffer_delay_p95: self.media.playout_delay_p95(),
            round_trip_ms: rtcp.round_trip_ms,
            loss: self.media.loss_pattern(),
        }
    }
}

fn local_media(trunk: &TrunkConfig, ip: IpAddr, rtp_port: u16, session_id: u32) -> LocalMedia {
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
        session_id: session_id.into(),
        session_version: 1,
        direction: Direction::SendRecv,
        username: "trunkgate".into(),
        srtp: trunk.srtp,
        secure_signalling: false,
        srtp_keys: Vec::new(),
    }
}

/// Answers an SDP offer.
fn answer_offer(offer: &[u8], local: &LocalMedia) -> Result<(String, Negotiated), OfferError> {
    let parsed = sdp::parse(&String::from_utf8_lossy(offer))?;
    let (answer, neg) = sdp::answer(&parsed, local)?;
    Ok((answer.to_string(), neg))
}

fn accept_answer(answer: &[u8], local: &LocalMedia) -> Result<Negotiated, OfferError> {
    let parsed = sdp::parse(&String::from_utf8_lossy(answer))?;
    Ok(sdp::accept_answer(local, &parsed)?)
}

/// Until the answer is known (the offer's, or on a late-offer call the ACK's), receive our first
/// codec and send nothing (there is nowhere to send yet).
fn provisional_negotiation(local: &LocalMedia) -> Negotiated {
    let codec = local.codecs.first().copied().unwrap_or(Codec::Pcmu);
    Negotiated {
        remote_rtp: None,
        remote_rtcp: None,
        codec,
        payload_type: codec.static_payload_type(),
        telephone_event_pt: Some(local.telephone_event_pt),
        ptime_ms: local.ptime_ms,
        local_direction: Direction::SendRecv,
        srtp: None,
    }
}

/// The user part of a From or To header (`"Bob" <sip:+15551234@carrier>;tag=1` → `+15551234`),
/// what an agent sees as the caller.
pub fn caller_of(header: &str) -> String {
    let uri = crate::sip::message::uri_part(header);
    let user = uri
        .split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or(uri)
        .split('@')
        .next()
        .unwrap_or_default();
    user.chars().take(64).filter(|c| !c.is_control()).collect()
}
