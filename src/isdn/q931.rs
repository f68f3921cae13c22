//! Q.931, call control on the D-channel (ETSI EuroISDN for E1): [`message`] reads and writes
//! messages, [`ie`] their information elements, [`cause`] names Q.850 causes, and [`control`]
//! runs the calls of a PRI, user side or network side.
pub mod cause;
pub mod control;
pub mod ie;
pub mod message;
