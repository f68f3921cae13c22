//! Tests of the whole layer, in virtual time: each machine's timers against a scripted far end,
//! CANCEL matching and races, two layers talking through a lossy in-memory network, and property
//! tests over random inputs.
mod calls;
mod cancel;
mod client;
mod pair;
mod props;
mod server;
mod support;
