//! ISDN PRI over E1 (#15): Q.921 (LAPD) and Q.931 as sans-IO cores, the E1 leg behind the
//! call core's `Leg` seam, and the span drivers (DAHDI, and a software span over Unix sockets).
//!
//! - [`q921`]: the data link layer on the D-channel;
//! - [`q931`]: call control over it.
pub mod q921;
pub mod q931;
