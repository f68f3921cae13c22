//! Tests of the agent client: the parts that need no gateway (arguments, event lines, the WAV
//! recorder, the core in virtual time, media between two in-memory ends), and the whole client
//! against a small QUIC gateway stand-in on loopback.
mod args;
mod core;
mod events;
mod gateway;
mod media;
mod recorder;
