//! ISDN PRI over E1 (#15): Q.921 (LAPD) and Q.931 as sans-IO cores, the E1 leg behind the
//! call core's `Leg` seam, and the span drivers (DAHDI, and a software span over Unix sockets).
//!
//! - [`q921`]: the data link layer on the D-channel;
//! - [`q931`]: call control over it;
//! - [`span`]: the two as one core per span, and [`shell`] its task;
//! - [`software`]: the software span over Unix sockets; [`bchannel`]: a B-channel's audio;
//! - [`pcap`]: the D-channel as Wireshark reads it.
pub mod bchannel;
pub mod calls;
pub mod config;
pub mod dahdi;
pub mod line;
pub mod pcap;
pub mod q921;
pub mod q931;
pub mod shell;
pub mod software;
pub mod span;
pub mod view;
