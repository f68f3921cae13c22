//! RFC 4028 session timers on our dialogs, in both roles: a call whose far end vanished without a
//! BYE (an SBC restarted, a NAT binding gone) is ended rather than kept up forever.
//!
//! ```text
//!  negotiated (2xx to INVITE, re-INVITE or UPDATE) ──▶ running: interval S, refresher
//!    we refresh:   S/2 after the last refresh ──▶ UPDATE (peer's Allow has it) or re-INVITE
//!                  2xx ──▶ restart (or stop: no Session-Expires in it)
//!                  408, 481, no answer ──▶ BYE, Ended { SessionExpired }
//!                  405/501 to UPDATE ──▶ re-INVITE at once; 401/407 ──▶ answered once;
//!                  anything else (491, 500…) ──▶ again 4 s later
//!    they refresh: their re-INVITE or UPDATE, answered 2xx ──▶ restart (or stop)
//!    either way:   no successful refresh within S − min(32 s, S/3) ──▶ BYE, Ended { SessionExpired }
//! ```
//!
//! As UAS: an INVITE (or refresh) whose Session-Expires is below our Min-SE gets 422 with ours;
//! a UAC that supports timers (`Supported: timer` or `Require: timer`) gets `Session-Expires`
//! (its value if it gave one, else ours, never below either Min-SE) with its `refresher` or
//! `uac`, and `Require: timer`. As UAC: our INVITE offers ours with `refresher=uas` and
//! `Supported: timer`; a 422 re-sends it once with the 422's Min-SE; the 2xx decides.
//!
//! The smallest correct subset of RFC 4028. Left out, and why:
//! - A Session-Expires in a request from a UAC without timer support (a proxy inserted it) is not
//!   claimed: §9 would make us the refresher for a UAC that cannot take part. Our 2xx carries
//!   none, which by §9 means no session timer; a proxy that wanted one runs its own.
//! - The UAS never lowers a requested interval (§9 allows it), and a refresh request from a peer
//!   that no longer offers the timer is answered without one: the timer stops (§10).
//! - As refresher we give up at the same S − min(32 s, S/3) as a watcher would (RFC 4028 leaves
//!   the refresher's end to 408, 481 or a timeout, which also end the call here).
//! - A 422 to one of our refreshes is not retried with its Min-SE (the peer accepted the interval
//!   when the dialog was set up): it is retried like any failure until the session expires.
//! - The SDP answer in a 2xx to our refresh re-INVITE is not passed to the call: we offered the
//!   same media, only the `o=` version changed. So the call's own later SDP does not go back in
//!   version, the dialog raises it past ours ([`super::Dialog::next_local_sdp`]). A dialog
//!   without an SDP of ours (a call placed without an offer) refreshes with UPDATE even when the
//!   peer's Allow does not list it.
//! - UPDATE with an SDP body (an RFC 3311 offer) gets 488; only bodiless UPDATE refreshes. Our
//!   Allow does not list UPDATE, so peers that read it refresh with re-INVITE.
//! - The Contact of a peer's refresh is not taken as a new remote target (RFC 3261 §12.2.2),
//!   as for re-INVITEs before session timers.
//! - Proxies' session timers, and Min-SE bookkeeping (§7.4) beyond one 422 retry of our INVITE.
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::Header;

use super::{CallEvent, CallRef, DialogState, EndReason, UserAgent};
use crate::sip::message::{self, list_values, response_to};
use crate::sip::transaction::TransactionKey;

/// RFC 4028 §4: no Session-Expires or Min-SE below this.
pub const MIN_SE_FLOOR: Duration = Duration::from_secs(90);
/// The interval we ask for when nothing says otherwise (as `[sip] session_expires_s`).
pub const DEFAULT_SESSION_EXPIRES: Duration = Duration::from_secs(1800);
/// After a refresh failed in a way that ends nothing (491 glare, 500, 503…), it is tried again
/// this much later, until the session expires.
pub const REFRESH_RETRY: Duration = Duration::from_secs(4);

/// The timers of one dialog's session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// We are the refresher: fires S/2 after the last successful refresh (or the 2xx that set the
    /// timer up), and [`REFRESH_RETRY`] after a refresh that failed without ending the call.
    Refresh,
    /// Fires S − min(32 s, S/3) after the last successful refresh (RFC 4028 §10) in either role:
    /// the session has expired, we send BYE.
    Expiry,
}

/// What the UA does about session timers: `expires` is the interval we ask for (`None`: no
/// session timers at all, `Require: timer` gets 420), `min_se` the smallest we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    pub expires: Option<Duration>,
    pub min_se: Duration,
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            expires: Some(DEFAULT_SESSION_EXPIRES),
            min_se: MIN_SE_FLOOR,
        }
    }
}

/// Who refreshes, named by the role in the transaction that carries the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A Session-Expires value (RFC 4028 §4): the interval and the refresher, if named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub interval: Duration,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// `1800;refresher=uac`; `None` when the delta-seconds are missing or not a number.
    pub fn parse(value: &str) -> Option<SessionExpires> {
        let mut parts = value.split(';');
        let secs: u64 = parts.next()?.trim().parse().ok()?;
        let refresher = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("refresher") {
                return None;
            }
            match v.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => None,
            }
        });
        Some(SessionExpires {
            interval: Duration::from_secs(secs),
            refresher,
        })
    }

    /// The header value, e.g. `90;refresher=uac`.
    pub fn value(&self) -> String {
        match self.refresher {
            Some(r) => format!("{};refresher={}", self.interval.as_secs(), r.as_str()),
            None => self.interval.as_secs().to_string(),
        }
    }
}

/// The message's Session-Expires (long name or compact `x`).
pub fn session_expires_of(headers: &rsip::Headers) -> Option<SessionExpires> {
    message::headers_named(headers, "Session-Expires")
        .chain(message::headers_named(headers, "x"))
        .find_map(SessionExpires::parse)
}

/// The message's Min-SE, in seconds.
pub fn min_se_of(headers: &rsip::Headers) -> Option<Duration> {
    let value = message::header(headers, "Min-SE")?;
    let secs = value.split(';').next()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// The option tags (or methods) of every `name` header, e.g. Supported, Require, Allow.
fn has_token(headers: &rsip::Headers, name: &str, token: &str) -> bool {
    list_values(headers, name)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// The sender supports session timers: `timer` in Supported or Require.
pub fn supports_timer(headers: &rsip::Headers) -> bool {
    has_token(headers, "Supported", "timer") || has_token(headers, "Require", "timer")
}

/// The sender's Allow lists UPDATE.
pub fn allows_update(headers: &rsip::Headers) -> bool {
    has_token(headers, "Allow", "UPDATE")
}

/// What we as UAS answer a request (INVITE, re-INVITE, UPDATE) about session timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasAnswer {
    /// Its Session-Expires is below our minimum: 422 with `Min-SE` this.
    TooSmall(Duration),
    /// The 2xx carries this Session-Expires (refresher always named) and `Require: timer`.
    Timer(SessionExpires),
    /// No session timer: nothing in the 2xx.
    None,
}

impl SessionTimerConfig {
    /// RFC 4028 §9 as we do it; see the module documentation for what is left out.
    pub fn negotiate_uas(&self, headers: &rsip::Headers) -> UasAnswer {
        let Some(ours) = self.expires else {
            return UasAnswer::None;
        };
        let requested = session_expires_of(headers);
        if let Some(se) = requested {
            if se.interval < self.min_se {
                return UasAnswer::TooSmall(self.min_se);
            }
        }
        if !supports_timer(headers) {
            return UasAnswer::None;
        }
        let their_min = min_se_of(headers).unwrap_or(MIN_SE_FLOOR);
        let interval = requested
            .map(|se| se.interval)
            .unwrap_or_else(|| ours.max(their_min).max(self.min_se));
        UasAnswer::Timer(SessionExpires {
            interval,
            refresher: Some(
                requested
                    .and_then(|se| se.refresher)
                    .unwrap_or(Refresher::Uac),
            ),
        })
    }
}

/// A session timer running on a dialog.
#[derive(Debug)]
pub struct SessionTimer {
    /// S, the session interval.
    pub interval: Duration,
    /// We send the refreshes; else we watch for the peer's.
    pub we_refresh: bool,
    /// The last successful refresh (or the 2xx that set the timer up).
    pub refreshed: Instant,
    /// When we refresh next ([`Timer::Refresh`]); only when `we_refresh`.
    pub next_refresh: Instant,
    /// Our refreshes are UPDATEs (the peer's Allow lists it), else re-INVITEs.
    pub use_update: bool,
    /// When this timer is filed in the UA's schedule (its key there).
    pub due: Instant,
}

impl SessionTimer {
    fn new(now: Instant, interval: Duration, we_refresh: bool, use_update: bool) -> Self {
        SessionTimer {
            interval,
            we_refresh,
            refreshed: now,
            next_refresh: now + interval / 2,
            use_update,
            due: now,
        }
    }

    /// [`Timer::Expiry`]: S − min(32 s, S/3) after the last refresh.
    pub fn expires_at(&self) -> Instant {
        self.refreshed + self.interval - (self.interval / 3).min(Duration::from_secs(32))
    }

    /// The next of its timers: the refresh when we are to send one (none of ours `in_flight`),
    /// and the expiry.
    fn next_due(&self, in_flight: bool) -> Instant {
        if self.we_refresh && !in_flight {
            self.next_refresh.min(self.expires_at())
        } else {
            self.expires_at()
        }
    }

    /// What fires at `now`, if anything.
    fn fired(&self, now: Instant, in_flight: bool) -> Option<Timer> {
        if now >= self.expires_at() {
            Some(Timer::Expiry)
        } else if self.we_refresh && !in_flight && now >= self.next_refresh {
            Some(Timer::Refresh)
        } else {
            None
        }
    }
}

/// A refresh of ours in flight. Kept on the dialog, not the timer: a 2xx to a re-INVITE is
/// ACKed even if the timer stopped meanwhile.
#[derive(Debug)]
pub struct Refresh {
    pub key: TransactionKey,
    /// As sent: a challenge answer re-sends it, the ACK of a re-INVITE copies its credentials.
    pub request: rsip::Request,
    /// A 401/407 has been answered already: another is a refusal.
    pub challenged: bool,
}

/// The `o=` session version of an SDP body.
pub fn sdp_version(sdp: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(sdp).ok()?;
    let origin = text.lines().find_map(|l| l.strip_prefix("o="))?;
    origin.split_whitespace().nth(2)?.parse().ok()
}

/// The SDP with its `o=` session version replaced by `version`; everything else byte for byte.
pub fn with_sdp_version(sdp: &[u8], version: u64) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(sdp).ok()?;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("o=") {
            // o=<username> <sess-id> <sess-version> …: the third field.
            let mut spaces = line.match_indices(' ').map(|(i, _)| i);
            let start = spaces.nth(1)? + 1;
            let end = spaces.next()?;
            line[start..end].parse::<u64>().ok()?;
            let (head, tail) = (&text[..offset + start], &text[offset + end..]);
            return Some(format!("{head}{version}{tail}").into_bytes());
        }
        offset += line.len();
    }
    None
}

impl UserAgent {
    /// Session timers (RFC 4028) for calls set up from now on: `expires` is the interval we ask
    /// for and grant (`None`: no session timers, and `Require: timer` gets 420), `min_se` the
    /// smallest we accept (a request below it gets 422). Both are raised to RFC 4028's floor of
    /// 90 s. Without this call a UA uses 1800 s and 90 s, as `[sip]` does by default.
    pub fn set_session_timers(&mut self, expires: Option<Duration>, min_se: Duration) {
        let min_se = min_se.max(MIN_SE_FLOOR);
        self.session_timers = SessionTimerConfig {
            expires: expires.map(|e| e.max(min_se)),
            min_se,
        };
    }

    /// The headers of our INVITE that offer a session timer (RFC 4028 §7.1).
    pub(super) fn push_invite_session_headers(&self, headers: &mut rsip::Headers) {
        let Some(ours) = self.session_timers.expires else {
            return;
        };
        message::push(headers, "Supported", "timer");
        let se = SessionExpires {
            interval: ours,
            refresher: Some(Refresher::Uas),
        };
        message::push(headers, "Session-Expires", se.value());
        message::push(
            headers,
            "Min-SE",
            self.session_timers.min_se.as_secs().to_string(),
        );
    }

    /// Our 2xx to `request` from the peer (the INVITE, a re-INVITE, an UPDATE): what §9 puts in
    /// it, pushed into `resp`, and the dialog's timer (re)started or stopped as of `now`.
    pub(super) fn session_uas_2xx(
        &mut self,
        now: Instant,
        call: CallRef,
        request: &rsip::Request,
        resp: &mut rsip::Response,
    ) {
        if self.session_timers.expires.is_none() {
            return;
        }
        match self.session_timers.negotiate_uas(&request.headers) {
            UasAnswer::Timer(se) => {
                message::push(&mut resp.headers, "Session-Expires", se.value());
                message::push(&mut resp.headers, "Require", "timer");
                let use_update = if message::header(&request.headers, "Allow").is_some() {
                    allows_update(&request.headers)
                } else {
                    self.dialogs
                        .get(&call)
                        .and_then(|d| d.session.as_ref())
                        .is_some_and(|t| t.use_update)
                };
                // The peer is the UAC of its request: `uas` makes us the refresher.
                let we_refresh = se.refresher == Some(Refresher::Uas);
                self.start_session(now, call, se.interval, we_refresh, use_update);
            }
            UasAnswer::TooSmall(_) | UasAnswer::None => self.stop_session(call),
        }
    }

    /// The 2xx to our INVITE decides (§7.2): its Session-Expires starts the timer, `refresher=uas`
    /// leaves the refreshing to the callee; without one there is no session timer.
    pub(super) fn session_uac_2xx(&mut self, now: Instant, call: CallRef, resp: &rsip::Response) {
        if self.session_timers.expires.is_none() {
            return;
        }
        let Some(se) = session_expires_of(&resp.headers).filter(|se| !se.interval.is_zero()) else {
            return;
        };
        // A 2xx that names no refresher breaks §9; refreshing ourselves is the safe reading.
        let we_refresh = se.refresher != Some(Refresher::Uas);
        let use_update = allows_update(&resp.headers);
        self.start_session(now, call, se.interval, we_refresh, use_update);
    }

    /// Starts (or restarts) the dialog's timer as of `now`; an in-flight refresh of ours is kept.
    fn start_session(
        &mut self,
        now: Instant,
        call: CallRef,
        interval: Duration,
        we_refresh: bool,
        use_update: bool,
    ) {
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        if !matches!(d.state, DialogState::Answered | DialogState::Confirmed) {
            return;
        }
        let mut timer = SessionTimer::new(now, interval, we_refresh, use_update);
        timer.due = timer.next_due(d.refresh.is_some());
        if let Some(old) = d.session.take() {
            self.session_due.remove(&(old.due, call));
        }
        tracing::debug!(
            call,
            interval_s = interval.as_secs(),
            we_refresh,
            "session timer running"
        );
        self.session_due.insert((timer.due, call));
        d.session = Some(timer);
    }

    /// No session timer on the dialog any more (a refresh of ours in flight still gets its
    /// answer handled).
    pub(super) fn stop_session(&mut self, call: CallRef) {
        if let Some(timer) = self.dialogs.get_mut(&call).and_then(|d| d.session.take()) {
            self.session_due.remove(&(timer.due, call));
        }
    }

    /// Files the dialog's timer again after a change.
    fn reschedule_session(&mut self, call: CallRef) {
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        let in_flight = d.refresh.is_some();
        let Some(t) = d.session.as_mut() else {
            return;
        };
        self.session_due.remove(&(t.due, call));
        t.due = t.next_due(in_flight);
        self.session_due.insert((t.due, call));
    }

    pub(super) fn session_poll_timeout(&self) -> Option<Instant> {
        self.session_due.first().map(|(due, _)| *due)
    }

    pub(super) fn session_handle_timeout(&mut self, now: Instant) {
        while let Some(&(due, call)) = self.session_due.first() {
            if due > now {
                break;
            }
            self.session_due.pop_first();
            let Some(d) = self.dialogs.get(&call) else {
                continue;
            };
            let fired = match &d.session {
                Some(t) if t.due == due => t.fired(now, d.refresh.is_some()),
                _ => continue,
            };
            match fired {
                Some(Timer::Expiry) => {
                    tracing::info!(call, "session timer expired without a refresh: BYE");
                    self.session_expired(now, call);
                    continue;
                }
                Some(Timer::Refresh) => self.send_refresh(now, call),
                None => {}
            }
            self.reschedule_session(call);
        }
    }

    /// The session is over (expired, or our refresh met 408/481/silence): BYE, and the call's end.
    fn session_expired(&mut self, now: Instant, call: CallRef) {
        self.stop_session(call);
        let Some(d) = self.dialogs.get(&call) else {
            return;
        };
        if !matches!(d.state, DialogState::Answered | DialogState::Confirmed) {
            return;
        }
        let told = d.told_end;
        self.send_bye(now, call);
        if !told {
            self.tell_end(
                call,
                CallEvent::Ended {
                    call,
                    reason: EndReason::SessionExpired,
                },
            );
        }
    }

    /// Our refresh (§7.4, §8): UPDATE without a body when the peer allows it, else a re-INVITE
    /// offering our last SDP again with its `o=` version bumped.
    fn send_refresh(&mut self, now: Instant, call: CallRef) {
        let branch = self.tx.new_branch();
        let min_se = self.session_timers.min_se;
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        let Some(t) = d.session.as_mut() else {
            return;
        };
        if d.refresh.is_some() {
            return;
        }
        if d.state != DialogState::Confirmed {
            t.next_refresh = now + REFRESH_RETRY;
            return;
        }
        let update = t.use_update || d.local_sdp.is_empty();
        if !update && (d.reinvite.is_some() || d.pending_2xx.is_some()) {
            // One INVITE transaction at a time (RFC 3261 §14.1): after theirs.
            t.next_refresh = now + REFRESH_RETRY;
            return;
        }
        let interval = t.interval;
        d.local_cseq += 1;
        let method = if update {
            rsip::Method::Update
        } else {
            rsip::Method::Invite
        };
        let mut req = d.request(method, d.local_cseq, &self.user_agent, &branch);
        req.headers
            .push(Header::Contact(rsip::headers::Contact::new(d.contact())));
        if !update {
            message::push(&mut req.headers, "Allow", message::ALLOW);
        }
        message::push(&mut req.headers, "Supported", "timer");
        let se = SessionExpires {
            interval,
            refresher: Some(Refresher::Uac),
        };
        message::push(&mut req.headers, "Session-Expires", se.value());
        message::push(&mut req.headers, "Min-SE", min_se.as_secs().to_string());
        if update {
            message::set_body(&mut req.headers, &mut req.body, None, Vec::new());
        } else {
            let version = sdp_version(&d.local_sdp).unwrap_or(0).wrapping_add(1);
            let sdp = with_sdp_version(&d.local_sdp, version).unwrap_or(d.local_sdp.clone());
            d.local_sdp = sdp.clone();
            message::set_body(
                &mut req.headers,
                &mut req.body,
                Some("application/sdp"),
                sdp,
            );
        }
        let peer = d.peer;
        tracing::debug!(call, %method, "session refresh");
        self.send_refresh_request(now, call, peer, req, false);
    }

    /// Sends a refresh of `call` and remembers it, to match its answer (and, unless
    /// `challenged` already, answer one challenge to it).
    fn send_refresh_request(
        &mut self,
        now: Instant,
        call: CallRef,
        peer: crate::sip::peer::Peer,
        request: rsip::Request,
        challenged: bool,
    ) {
        let key = self.tx.send_request(now, peer, request.clone());
        self.refresh_tx.insert(key.clone(), call);
        if let Some(d) = self.dialogs.get_mut(&call) {
            d.refresh = Some(Refresh {
                key,
                request,
                challenged,
            });
        }
    }

    pub(super) fn is_refresh(&self, key: &TransactionKey) -> bool {
        self.refresh_tx.contains_key(key)
    }

    /// Our refresh went unanswered (Timer B or F): the peer is gone.
    pub(super) fn on_refresh_timeout(&mut self, now: Instant, key: &TransactionKey) {
        let Some(call) = self.refresh_tx.remove(key) else {
            return;
        };
        if let Some(d) = self.dialogs.get_mut(&call) {
            if d.refresh.as_ref().is_some_and(|r| r.key == *key) {
                d.refresh = None;
            }
        }
        tracing::info!(call, "our session refresh got no answer: BYE");
        self.session_expired(now, call);
    }

    /// A response to our refresh. A 2xx decides the timer from then on (its Session-Expires,
    /// or none); 408 and 481 end the call (RFC 4028 §10, RFC 3261 §12.2.1.2).
    pub(super) fn on_refresh_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: rsip::Response,
    ) {
        let code = response.status_code.code();
        if code < 200 {
            return;
        }
        let Some(call) = self.refresh_tx.remove(key) else {
            return;
        };
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        if d.refresh.as_ref().map(|r| &r.key) != Some(key) {
            return;
        }
        let Some(refresh) = d.refresh.take() else {
            return;
        };
        let method = refresh.request.method;
        let use_update = d.session.as_ref().is_some_and(|t| t.use_update);
        match code {
            200..=299 => {
                if method == rsip::Method::Invite {
                    self.ack_refresh(call, &refresh.request);
                }
                match session_expires_of(&response.headers).filter(|se| !se.interval.is_zero()) {
                    Some(se) => {
                        // We were the UAC: `uas` hands the refreshing to the peer.
                        let we_refresh = se.refresher != Some(Refresher::Uas);
                        self.start_session(now, call, se.interval, we_refresh, use_update);
                    }
                    None => {
                        tracing::info!(call, "the peer dropped the session timer");
                        self.stop_session(call);
                    }
                }
                return;
            }
            408 | 481 => {
                tracing::info!(call, code, "our session refresh failed: BYE");
                return self.session_expired(now, call);
            }
            401 | 407 if !refresh.challenged => {
                if self.answer_refresh_challenge(now, call, &refresh, &response) {
                    return;
                }
                self.retry_refresh(call, now + REFRESH_RETRY);
            }
            405 | 501 if method == rsip::Method::Update => {
                if let Some(t) = self.dialogs.get_mut(&call).and_then(|d| d.session.as_mut()) {
                    t.use_update = false;
                }
                self.retry_refresh(call, now);
            }
            _ => {
                tracing::info!(call, code, "our session refresh failed: trying again");
                self.retry_refresh(call, now + REFRESH_RETRY);
            }
        }
        let due_now = self
            .dialogs
            .get(&call)
            .and_then(|d| d.session.as_ref())
            .is_some_and(|t| t.we_refresh && t.next_refresh <= now);
        if due_now {
            self.send_refresh(now, call);
        }
        self.reschedule_session(call);
    }

    /// The next refresh attempt at `at` (the expiry still comes first if it is earlier).
    fn retry_refresh(&mut self, call: CallRef, at: Instant) {
        if let Some(t) = self.dialogs.get_mut(&call).and_then(|d| d.session.as_mut()) {
            t.next_refresh = at;
        }
    }

    /// The ACK for a 2xx to our refresh re-INVITE (same CSeq, the re-INVITE's credentials); kept
    /// to be re-sent if the 2xx is.
    fn ack_refresh(&mut self, call: CallRef, reinvite: &rsip::Request) {
        let branch = self.tx.new_branch();
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        let seq = message::cseq(&reinvite.headers)
            .map(|c| c.0)
            .unwrap_or(d.local_cseq);
        let mut ack = d.request(rsip::Method::Ack, seq, &self.user_agent, &branch);
        for h in reinvite.headers.iter() {
            if let Some((name @ ("Authorization" | "Proxy-Authorization"), value)) =
                message::name_value(h)
            {
                message::push(&mut ack.headers, name, value);
            }
        }
        message::set_body(&mut ack.headers, &mut ack.body, None, Vec::new());
        let payload = Bytes::from(ack.to_string());
        d.refresh_ack = Some((seq, payload.clone()));
        self.own_transmits.push_back(super::Transmit {
            peer: d.peer,
            payload,
        });
    }

    /// A 2xx to our refresh re-INVITE came again (our ACK was lost): the ACK again. True when
    /// `cseq` was that re-INVITE's.
    pub(super) fn resend_refresh_ack(&mut self, call: CallRef, cseq: u32) -> bool {
        let Some(d) = self.dialogs.get(&call) else {
            return false;
        };
        match &d.refresh_ack {
            Some((seq, payload)) if *seq == cseq => {
                self.own_transmits.push_back(super::Transmit {
                    peer: d.peer,
                    payload: payload.clone(),
                });
                true
            }
            _ => false,
        }
    }

    /// A 401/407 to our refresh from a trunk with credentials: the refresh again (CSeq + 1, a new
    /// branch) answering it, once. False when it cannot be answered.
    fn answer_refresh_challenge(
        &mut self,
        now: Instant,
        call: CallRef,
        refresh: &Refresh,
        response: &rsip::Response,
    ) -> bool {
        let code = response.status_code.code();
        let Some(trunk) = self.dialogs.get(&call).map(|d| d.trunk.clone()) else {
            return false;
        };
        let Some(credentials) = self.credentials_of(&trunk) else {
            tracing::info!(
                call,
                code,
                "our session refresh was challenged, no credentials"
            );
            return false;
        };
        let (Some(challenge), answer_header) = super::challenge_in(response) else {
            return false;
        };
        let branch = self.tx.new_branch();
        let cnonce = message::new_tag(&mut self.rng);
        let Some(d) = self.dialogs.get_mut(&call) else {
            return false;
        };
        d.local_cseq += 1;
        let old = &refresh.request;
        let method = old.method;
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {};branch={branch};rport",
            d.peer.transport.via_token(),
            d.local
        ))));
        for h in old.headers.iter() {
            match message::name_value(h) {
                Some(("Via" | "Authorization" | "Proxy-Authorization", _)) => {}
                Some(("CSeq", _)) => headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
                    "{} {method}",
                    d.local_cseq
                )))),
                _ => headers.push(h.clone()),
            }
        }
        let value = challenge.answer(
            &credentials.username,
            credentials.secret(),
            &method.to_string(),
            &old.uri.to_string(),
            1,
            &cnonce,
        );
        message::push(&mut headers, answer_header, value);
        let req = rsip::Request {
            method,
            uri: old.uri.clone(),
            version: rsip::Version::V2,
            headers,
            body: old.body.clone(),
        };
        let peer = d.peer;
        self.send_refresh_request(now, call, peer, req, true);
        true
    }

    /// 422 Session Interval Too Small (RFC 4028 §7.3): `req` asked for less than our `min_se`.
    pub(super) fn reply_too_brief(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &rsip::Request,
        tag: Option<&str>,
        min_se: Duration,
    ) {
        let min_se = min_se.as_secs().to_string();
        self.reply_with_headers(now, key, req, 422, tag, &[("Min-SE", min_se)]);
    }

    /// A response to `req` outside the 2xx path with extra header lines (Min-SE on 422,
    /// Unsupported on 420) and our Server; `tag` for To, a fresh one when `None`.
    pub(super) fn reply_with_headers(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &rsip::Request,
        code: u16,
        tag: Option<&str>,
        extra: &[(&str, String)],
    ) {
        let tag = match tag {
            Some(t) => t.to_string(),
            None => message::new_tag(&mut self.rng),
        };
        let mut resp = response_to(req, code, None, Some(&tag));
        for (name, value) in extra {
            message::push(&mut resp.headers, name, value.clone());
        }
        resp.headers.push(Header::Server(rsip::headers::Server::new(
            self.user_agent.clone(),
        )));
        message::set_body(&mut resp.headers, &mut resp.body, None, Vec::new());
        self.respond(now, key, resp);
    }
}

#[cfg(test)]
mod tests;
