//! SRTP and SRTCP for a carrier leg (RFC 3711, RFC 7714 for GCM), keyed by SDES: one context
//! encrypts what we send, one decrypts what the carrier sends.
//!
//! The ciphers are rtc-srtp's on ring (docs/carriers.md says why that crate). A packet that
//! fails authentication or replays one already seen is dropped and counted, never played.
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use crate::sip::sdp::{SrtpKey, SrtpKeys, SrtpSuite};

/// Packets as far back as this from the newest are still taken (reordered, not replayed);
/// beyond it the jitter buffer could not use them anyway.
const REPLAY_WINDOW: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("srtp: {0}")]
pub struct SrtpError(String);

impl SrtpError {
    fn from(e: impl std::fmt::Display) -> Self {
        SrtpError(e.to_string())
    }
}

pub struct SrtpSession {
    keys: SrtpKeys,
    outbound: Context,
    inbound: Context,
}

impl SrtpSession {
    pub fn new(keys: &SrtpKeys) -> Result<Self, SrtpError> {
        Ok(SrtpSession {
            outbound: context(&keys.send, false)?,
            inbound: context(&keys.receive, true)?,
            keys: keys.clone(),
        })
    }

    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let out = self.outbound.encrypt_rtp(packet).map_err(SrtpError::from)?;
        // Takes the buffer over: no copy per packet.
        Ok(Vec::from(out))
    }

    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let out = self.inbound.decrypt_rtp(packet).map_err(SrtpError::from)?;
        Ok(Vec::from(out))
    }

    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let out = self
            .outbound
            .encrypt_rtcp(packet)
            .map_err(SrtpError::from)?;
        Ok(Vec::from(out))
    }

    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let out = self.inbound.decrypt_rtcp(packet).map_err(SrtpError::from)?;
        Ok(Vec::from(out))
    }
}

fn context(key: &SrtpKey, inbound: bool) -> Result<Context, SrtpError> {
    let profile = match key.suite {
        SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    };
    let provider = rtc_srtp::crypto::default_provider().map_err(SrtpError::from)?;
    let (rtp_replay, rtcp_replay) = if inbound {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(
        key.master_key(),
        key.master_salt(),
        profile,
        rtp_replay,
        rtcp_replay,
        provider.crypto(),
    )
    .map_err(SrtpError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::{self, RtpHeader};

    fn pair(suite: SrtpSuite) -> (SrtpSession, SrtpSession) {
        let a = SrtpKey::from_random(suite, &[1; 30]);
        let b = SrtpKey::from_random(suite, &[2; 30]);
        let ours = SrtpSession::new(&SrtpKeys {
            send: a.clone(),
            receive: b.clone(),
        })
        .unwrap();
        let theirs = SrtpSession::new(&SrtpKeys {
            send: b,
            receive: a,
        })
        .unwrap();
        (ours, theirs)
    }

    fn packet(sequence: u16) -> Vec<u8> {
        let header = RtpHeader::new(0, sequence, u32::from(sequence) * 160, 0x1234_5678, false);
        let mut out = Vec::new();
        rtp::write(&header, &[0x55; 160], &mut out);
        out
    }

    #[test]
    fn each_suite_carries_rtp_and_rtcp_both_ways_and_hides_the_audio() {
        for suite in SrtpSuite::ALL {
            let (mut ours, mut theirs) = pair(suite);
            let plain = packet(7);
            let sent = ours.protect_rtp(&plain).unwrap();
            assert_ne!(
                &sent[12..172],
                &plain[12..172],
                "{suite}: payload encrypted"
            );
            assert_eq!(theirs.unprotect_rtp(&sent).unwrap(), plain, "{suite}");
            let back = theirs.protect_rtp(&packet(9)).unwrap();
            assert_eq!(ours.unprotect_rtp(&back).unwrap(), packet(9), "{suite}");
            // A receiver report with no blocks (RFC 3550 §6.4.2).
            let report = [0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef];
            let sent = ours.protect_rtcp(&report).unwrap();
            assert_eq!(theirs.unprotect_rtcp(&sent).unwrap(), report, "{suite}");
        }
    }

    #[test]
    fn a_tampered_packet_a_replay_and_a_wrong_key_are_refused() {
        let (mut ours, mut theirs) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let sent = ours.protect_rtp(&packet(100)).unwrap();
        let mut tampered = sent.clone();
        tampered[20] ^= 1;
        assert!(theirs.unprotect_rtp(&tampered).is_err(), "tampered");
        assert!(theirs.unprotect_rtp(&sent).is_ok(), "the real one");
        assert!(theirs.unprotect_rtp(&sent).is_err(), "replayed");
        let (_, mut stranger) = pair(SrtpSuite::AeadAes128Gcm);
        let next = ours.protect_rtp(&packet(101)).unwrap();
        assert!(stranger.unprotect_rtp(&next).is_err(), "wrong key");
        assert!(theirs.unprotect_rtp(&packet(102)).is_err(), "plain rtp");
    }
}
