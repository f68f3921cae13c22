//! Q.921 (LAPD), the D-channel's data link: [`frame`] encodes and decodes its frames; the link
//! state machine (establishment, sequence numbers, timers T200/T203) comes next.
pub mod frame;
