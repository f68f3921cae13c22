//! Test harness: starts the real `trunkgate` binary and real SIP peers.
