//! Q.921 (LAPD), the D-channel's data link: [`frame`] encodes and decodes its frames, [`link`]
//! runs the link (establishment, acknowledged transfer, timers T200/T203) on a PRI.
pub mod frame;
pub mod link;
