//! Registering a trunk with its carrier's registrar (RFC 3261 §10) as a sans-IO core: it says
//! when a REGISTER is due and builds it, answers the registrar's digest challenge, refreshes
//! halfway through what the registrar granted, and backs off after a failure. The UA owns one
//! per registering trunk and sends what it builds through its transaction layer.
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rsip::headers::{Header, UntypedHeader};

use crate::sip::digest::Challenge;
use crate::sip::message::{self, header, header_param, uri_part};
use crate::sip::peer::{Peer, Transport};
use crate::sip::resolve::{default_port, SipTarget};
use crate::sip::transaction::{TransactionKey, TransactionLayer};

/// After a failure the next try waits this long, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A registrar that grants less than this is asked again no sooner than this.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// After the connection to the registrar drops, the REGISTER over a new one waits this long:
/// a registrar that is restarting is listening again by then, mostly.
const AFTER_FLOW_LOSS: Duration = Duration::from_secs(1);

/// `sip:HOST[:PORT][;transport=udp|tcp|tls]`, or `sips:` for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarUri {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

impl RegistrarUri {
    /// The URI's host, port and transport as [`SipTarget::parse`] reads them, with the
    /// defaults filled in: a registrar is reached at the address its URI names (no SRV).
    pub fn parse(text: &str) -> Result<RegistrarUri, String> {
        if text
            .split(';')
            .next()
            .is_some_and(|hostport| hostport.contains('@'))
        {
            return Err(format!(
                "{text:?}: the registrar is a host, not a user (the user goes in `aor`)"
            ));
        }
        let target = SipTarget::parse(text)?;
        let transport = target.default_transport();
        Ok(RegistrarUri {
            port: target.port.unwrap_or(default_port(transport)),
            host: target.host,
            transport,
        })
    }

    /// The Request-URI of our REGISTERs: the registrar's domain (RFC 3261 §10.2).
    pub fn request_uri(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let transport = match self.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        format!("sip:{host}:{}{transport}", self.port)
    }
}

/// What a registration needs, resolved: where REGISTERs go and what they say.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrationSpec {
    pub trunk: String,
    pub registrar: RegistrarUri,
    /// The registrar's address, resolved from its host.
    pub target: SocketAddr,
    /// `sip:USER@DOMAIN`: who we register as (From and To).
    pub aor: String,
    pub username: String,
    pub password: String,
    /// Our address as the registrar reaches it: Via and Contact.
    pub local: SocketAddr,
    pub expires: Duration,
    /// While registered, a keep-alive this often (zero: none): a double CRLF on TCP and TLS
    /// (RFC 5626 §4.4.1), an OPTIONS on UDP. Both keep NAT bindings open; an OPTIONS that goes
    /// unanswered and then is answered again means the registrar may have restarted.
    pub keepalive: Duration,
}

impl fmt::Debug for RegistrationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationSpec")
            .field("trunk", &self.trunk)
            .field("registrar", &self.registrar)
            .field("target", &self.target)
            .field("aor", &self.aor)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("local", &self.local)
            .field("expires", &self.expires)
            .field("keepalive", &self.keepalive)
            .finish()
    }
}

/// Where a registration stands, for metrics, the admin API and `ctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    /// The first REGISTER is on its way.
    Registering,
    Registered {
        /// When what the registrar granted runs out.
        until: Instant,
    },
    Failed {
        reason: String,
        retry_at: Instant,
    },
}

/// A registration as the admin API and `trunkgate ctl trunks` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistrationView {
    pub trunk: String,
    pub registrar: String,
    pub aor: String,
    /// `registering`, `registered` or `failed`.
    pub state: String,
    /// Registered: seconds left of what the registrar granted.
    pub expires_in_s: Option<u64>,
    /// Failed: why, and when the next try goes.
    pub reason: Option<String>,
    pub retry_in_s: Option<u64>,
}

impl RegistrationState {
    pub fn is_registered(&self) -> bool {
        matches!(self, RegistrationState::Registered { .. })
    }
}

pub struct Registration {
    spec: RegistrationSpec,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: Duration,
    state: RegistrationState,
    /// When the next REGISTER goes; `None` while one is in flight.
    due: Option<Instant>,
    /// The challenge we answer, with how many requests answered its nonce so far, and
    /// whether it came as 407 (Proxy-Authorization) rather than 401.
    challenge: Option<(Challenge, u32, bool)>,
    /// Challenges answered since the last success or failure: a registrar that challenges
    /// every answer is refusing the credentials, whatever it says about its nonces.
    answered_in_a_row: u32,
    failures: u32,
    /// When the next keep-alive goes (only while registered).
    next_ping: Option<Instant>,
    /// The last OPTIONS keep-alive got no answer.
    ping_unanswered: bool,
    pings_sent: u32,
}

/// A keep-alive to send.
pub enum Keepalive {
    /// Bytes on the stream: `\r\n\r\n`.
    Crlf(Peer),
    Options(rsip::Request),
}

/// What the UA does after a response.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing until [`Registration::due`].
    Wait,
    /// Send again now (a challenge to answer, a longer expiry asked).
    SendNow,
}

impl Registration {
    /// A registration that sends its first REGISTER at `now`. `call_id` and `from_tag` are
    /// fresh randomness, kept for every refresh (RFC 3261 §10.2.4).
    pub fn new(now: Instant, spec: RegistrationSpec, call_id: String, from_tag: String) -> Self {
        Registration {
            expires: spec.expires,
            spec,
            call_id,
            from_tag,
            cseq: 0,
            state: RegistrationState::Registering,
            due: Some(now),
            challenge: None,
            answered_in_a_row: 0,
            failures: 0,
            next_ping: None,
            ping_unanswered: false,
            pings_sent: 0,
        }
    }

    pub fn spec(&self) -> &RegistrationSpec {
        &self.spec
    }

    pub fn state(&self) -> &RegistrationState {
        &self.state
    }

    pub fn view(&self, now: Instant) -> RegistrationView {
        let left = |at: Instant| at.saturating_duration_since(now).as_secs();
        let (state, expires_in_s, reason, retry_in_s) = match &self.state {
            RegistrationState::Registering => ("registering", None, None, None),
            RegistrationState::Registered { until } => {
                ("registered", Some(left(*until)), None, None)
            }
            RegistrationState::Failed { reason, retry_at } => {
                ("failed", None, Some(reason.clone()), Some(left(*retry_at)))
            }
        };
        RegistrationView {
            trunk: self.spec.trunk.clone(),
            registrar: self.spec.registrar.request_uri(),
            aor: self.spec.aor.clone(),
            state: state.to_owned(),
            expires_in_s,
            reason,
            retry_in_s,
        }
    }

    pub fn peer(&self) -> Peer {
        Peer::new(self.spec.registrar.transport, self.spec.target)
    }

    /// When the next REGISTER is due (`None` while one is in flight).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// When the next keep-alive is due (`None` unless registered with keep-alives on).
    pub fn ping_due(&self) -> Option<Instant> {
        self.next_ping
    }

    /// The keep-alive to send now; the next is scheduled.
    pub fn keepalive(&mut self, now: Instant, user_agent: &str, branch: &str) -> Keepalive {
        self.next_ping = Some(now + self.spec.keepalive);
        if self.spec.registrar.transport.is_reliable() {
            return Keepalive::Crlf(self.peer());
        }
        self.pings_sent += 1;
        let mut request = self.request(rsip::Method::Options, user_agent, branch);
        request
            .headers
            .push(Header::CSeq(rsip::headers::CSeq::new(format!(
                "{} OPTIONS",
                self.pings_sent
            ))));
        request
            .headers
            .push(Header::CallId(rsip::headers::CallId::new(format!(
                "ka-{}",
                self.call_id
            ))));
        message::set_body(&mut request.headers, &mut request.body, None, Vec::new());
        Keepalive::Options(request)
    }

    /// The registrar answered our OPTIONS (`true`) or did not (`false`). Answering again
    /// after a silence, it may have restarted and forgotten us: register anew.
    pub fn on_ping(&mut self, now: Instant, answered: bool) {
        if !answered {
            if !self.ping_unanswered {
                tracing::warn!(trunk = %self.spec.trunk, "the registrar does not answer keep-alives");
            }
            self.ping_unanswered = true;
            return;
        }
        if std::mem::take(&mut self.ping_unanswered) {
            tracing::info!(trunk = %self.spec.trunk, "the registrar answers again: registering anew");
            self.refresh_soon(now);
        }
    }

    /// The connection to the registrar is gone (TCP/TLS): register again over a new one in
    /// a second, as the registrar can no longer reach us through the old binding.
    pub fn refresh_soon(&mut self, now: Instant) {
        if self.due.is_some() {
            self.due = Some(now + AFTER_FLOW_LOSS);
        }
    }

    /// The REGISTER to send now, with `branch` (fresh) in its Via and `cnonce` (fresh) for a
    /// digest answer. Marks it in flight.
    pub fn build(&mut self, user_agent: &str, branch: &str, cnonce: &str) -> rsip::Request {
        self.due = None;
        self.cseq += 1;
        let mut request = self.request(rsip::Method::Register, user_agent, branch);
        let spec = &self.spec;
        let request_uri = spec.registrar.request_uri();
        let headers = &mut request.headers;
        headers.push(Header::CallId(rsip::headers::CallId::new(
            self.call_id.clone(),
        )));
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{} REGISTER",
            self.cseq
        ))));
        let expires = self.expires.as_secs();
        headers.push(Header::Contact(rsip::headers::Contact::new(format!(
            "{};expires={expires}",
            self.contact()
        ))));
        headers.push(Header::Expires(rsip::headers::Expires::new(
            expires.to_string(),
        )));
        if let Some((challenge, nc, proxy)) = &mut self.challenge {
            *nc += 1;
            let value = challenge.answer(
                &spec.username,
                &spec.password,
                "REGISTER",
                &request_uri,
                *nc,
                cnonce,
            );
            let name = if *proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            message::push(headers, name, value);
        }
        message::set_body(&mut request.headers, &mut request.body, None, Vec::new());
        request
    }

    /// A request to the registrar with Via, Max-Forwards, From, To and User-Agent; the caller
    /// adds Call-ID, CSeq and the rest.
    fn request(&self, method: rsip::Method, user_agent: &str, branch: &str) -> rsip::Request {
        let spec = &self.spec;
        let request_uri = spec.registrar.request_uri();
        let transport = spec.registrar.transport;
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.via_token(),
            spec.local
        ))));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        headers.push(Header::From(rsip::headers::From::new(format!(
            "<{}>;tag={}",
            spec.aor, self.from_tag
        ))));
        headers.push(Header::To(rsip::headers::To::new(format!(
            "<{}>",
            spec.aor
        ))));
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(user_agent)));
        rsip::Request {
            method,
            uri: rsip::Uri::try_from(request_uri.as_str()).unwrap_or_default(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        }
    }

    /// Our Contact: the username at our address, so the registrar's INVITEs name the trunk's
    /// account.
    fn contact(&self) -> String {
        let host = match self.spec.local {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let transport = match self.spec.registrar.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        format!("<sip:{}@{host}{transport}>", self.spec.username)
    }

    /// The registrar's final answer to our REGISTER.
    pub fn on_response(&mut self, now: Instant, response: &rsip::Response) -> Next {
        let code = response.status_code.code();
        let h = &response.headers;
        match code {
            200..=299 => {
                let granted = self.granted(h);
                self.failures = 0;
                self.answered_in_a_row = 0;
                self.state = RegistrationState::Registered {
                    until: now + granted,
                };
                self.due = Some(now + (granted / 2).max(MIN_REFRESH));
                let keepalive = self.spec.keepalive;
                self.next_ping = (!keepalive.is_zero()).then(|| now + keepalive);
                tracing::info!(trunk = %self.spec.trunk, expires_s = granted.as_secs(), "registered");
                Next::Wait
            }
            401 | 407 => {
                let name = if code == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                // Several challenges (one per algorithm, RFC 8760): the first we can answer.
                let parsed = message::headers_named(h, name)
                    .map(Challenge::parse)
                    .find(|c| c.is_ok())
                    .unwrap_or_else(|| Challenge::parse(header(h, name).unwrap_or("")));
                match parsed {
                    Ok(challenge) => {
                        // A nonce that expired since the last refresh costs one more answer
                        // (`stale`, or a fresh nonce from registrars that do not say so); a
                        // third challenge in a row is a refusal.
                        let answered = self.challenge.is_some();
                        self.challenge = Some((challenge, 0, code == 407));
                        if answered {
                            self.answered_in_a_row += 1;
                        }
                        if self.answered_in_a_row >= 2 {
                            return self.fail(now, format!("{code}: credentials refused"));
                        }
                        self.due = Some(now);
                        Next::SendNow
                    }
                    Err(e) => self.fail(
                        now,
                        format!("{code} with a challenge we cannot answer: {e}"),
                    ),
                }
            }
            423 => {
                let min = header(h, "Min-Expires")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match min {
                    Some(min) if min > self.expires && min <= Duration::from_secs(86_400) => {
                        self.expires = min;
                        self.due = Some(now);
                        Next::SendNow
                    }
                    _ => self.fail(now, "423 without a usable Min-Expires".into()),
                }
            }
            _ => {
                let reason = response.status_code.to_string();
                self.fail(now, format!("{code} {reason}"))
            }
        }
    }

    /// No answer from the registrar (the transaction timed out) or it could not be reached.
    pub fn on_no_answer(&mut self, now: Instant) {
        self.fail(now, "no answer from the registrar".into());
    }

    fn fail(&mut self, now: Instant, reason: String) -> Next {
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.min(10))
            .min(MAX_BACKOFF);
        self.failures += 1;
        self.answered_in_a_row = 0;
        self.next_ping = None;
        self.ping_unanswered = false;
        let retry_at = now + backoff;
        tracing::warn!(trunk = %self.spec.trunk, %reason, retry_in_s = backoff.as_secs(), "registration failed");
        self.state = RegistrationState::Failed { reason, retry_at };
        self.due = Some(retry_at);
        Next::Wait
    }

    /// What the registrar granted: our Contact's `expires` in the 200, else its Expires
    /// header, else what we asked.
    fn granted(&self, h: &rsip::Headers) -> Duration {
        let ours = format!("@{}", self.spec.local);
        let from_contact = message::list_values(h, "Contact")
            .into_iter()
            .find(|c| uri_part(c).contains(&ours))
            .and_then(|c| header_param(c, "expires"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let from_header = header(h, "Expires").and_then(|v| v.trim().parse::<u64>().ok());
        from_contact
            .or(from_header)
            .map(Duration::from_secs)
            .unwrap_or(self.expires)
    }
}

/// Every trunk's registration, with the transactions carrying their REGISTERs.
#[derive(Default)]
pub struct Registrations {
    list: Vec<Registration>,
    in_flight: HashMap<TransactionKey, String>,
    /// OPTIONS keep-alives on their way, by the trunk they keep alive.
    pings: HashMap<TransactionKey, String>,
}

impl Registrations {
    /// The registrations the configuration now asks for: one whose spec is unchanged goes on
    /// as it is, a new or changed one registers at once, a removed one stops.
    pub fn set(&mut self, now: Instant, specs: Vec<RegistrationSpec>, rng: &mut impl Rng) {
        let mut old = std::mem::take(&mut self.list);
        for spec in specs {
            match old.iter().position(|r| r.spec == spec) {
                Some(i) => self.list.push(old.swap_remove(i)),
                None => {
                    let call_id = format!("{}@trunkgate", message::new_tag(rng));
                    self.list
                        .push(Registration::new(now, spec, call_id, message::new_tag(rng)));
                }
            }
        }
        let kept: Vec<&str> = self.list.iter().map(|r| r.spec.trunk.as_str()).collect();
        self.in_flight
            .retain(|_, trunk| kept.contains(&trunk.as_str()));
        self.pings.retain(|_, trunk| kept.contains(&trunk.as_str()));
    }

    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.list.iter()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.list
            .iter()
            .flat_map(|r| [r.due(), r.ping_due()])
            .flatten()
            .min()
    }

    /// Sends every REGISTER and OPTIONS keep-alive that is due; returns where stream
    /// keep-alives go, which are bytes rather than requests.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        tx: &mut TransactionLayer,
        user_agent: &str,
        rng: &mut impl Rng,
    ) -> Vec<Peer> {
        let mut crlf = Vec::new();
        for registration in &mut self.list {
            if registration.due.is_some_and(|due| due <= now) {
                let request =
                    registration.build(user_agent, &tx.new_branch(), &message::new_tag(rng));
                let key = tx.send_request(now, registration.peer(), request);
                self.in_flight.insert(key, registration.spec.trunk.clone());
            }
            if registration.next_ping.is_some_and(|due| due <= now) {
                match registration.keepalive(now, user_agent, &tx.new_branch()) {
                    Keepalive::Crlf(peer) => crlf.push(peer),
                    Keepalive::Options(request) => {
                        let key = tx.send_request(now, registration.peer(), request);
                        self.pings.insert(key, registration.spec.trunk.clone());
                    }
                }
            }
        }
        crlf
    }

    /// A final response or a timeout for one of our transactions; false if it is not ours.
    pub fn on_transaction_end(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Option<&rsip::Response>,
    ) -> bool {
        if let Some(trunk) = self.pings.remove(key) {
            if let Some(registration) = self.list.iter_mut().find(|r| r.spec.trunk == trunk) {
                registration.on_ping(now, response.is_some());
            }
            return true;
        }
        let Some(trunk) = self.in_flight.remove(key) else {
            return false;
        };
        if let Some(registration) = self.list.iter_mut().find(|r| r.spec.trunk == trunk) {
            match response {
                Some(response) => {
                    registration.on_response(now, response);
                }
                None => registration.on_no_answer(now),
            }
        }
        true
    }

    /// The connection to `peer` closed or could not be opened: a registration through it
    /// registers again now, and one whose REGISTER was on it has failed (the transaction
    /// would only time out 32 s later).
    pub fn flow_lost(&mut self, now: Instant, peer: Peer) {
        for registration in &mut self.list {
            if registration.peer() != peer {
                continue;
            }
            let trunk = &registration.spec.trunk;
            let before = self.in_flight.len();
            self.in_flight.retain(|_, t| t != trunk);
            if self.in_flight.len() < before {
                registration.fail(now, "connection to the registrar lost".into());
            } else {
                registration.refresh_soon(now);
            }
        }
    }
}

#[cfg(test)]
mod tests;
