//! Media cores used beside every call leg: RTP/RTCP, the jitter buffer, G.711 with concealment,
//! DTMF, tones and prompts, the mixer of many-party calls. All sans-IO.
pub mod dtmf;
pub mod emodel;
pub mod feedback;
pub mod g711;
pub mod jitter;
pub mod link_health;
pub mod mixer;
pub mod ogg_opus;
pub mod opus;
pub mod opus_rx;
pub mod plc;
pub mod prompt;
pub mod red;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod rtp_quic;
pub mod srtp;
pub mod stereo_recorder;
pub mod stretch;
pub mod tone;
