//! The RFC 3261 §17 transaction layer, with the RFC 6026 Accepted states: what makes SIP reliable
//! over UDP, as a sans-IO core.
//!
//! Four state machines, one per file (`client_invite`, `client_non_invite`, `server_invite`,
//! `server_non_invite`), each driven by messages, `handle_timeout(now)` and `poll_timeout()`, and
//! each collecting what it wants sent and told in an [`Outbox`]. [`TransactionLayer`] owns them,
//! routes messages by [`TransactionKey`], and offers the quinn-proto style loop a shell drives:
//!
//! ```text
//! handle_message / handle_timeout / respond / send_request
//!   then poll_transmit until None, poll_event until None, sleep until poll_timeout
//! ```
//!
//! What is deliberately left to the transaction user (TU): 2xx retransmission and the ACK for a
//! 2xx (§13.3.1.4, §13.2.2.4: they belong to the dialog, not the transaction), the ring timeout and
//! the CANCEL that ends it, the choice of 400 or silence for messages that cannot be keyed, and
//! Via `received`/`rport` stamping (the transport's job, §18.2.1). Responses from a server
//! transaction go back to the peer the request came from (symmetric response routing as in
//! RFC 3581), which is what carriers expect and what NAT needs.
mod client_invite;
mod client_non_invite;
mod key;
mod message;
mod server_invite;
mod server_non_invite;
#[cfg(test)]
mod tests;
mod timer;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::StdRng;
use rand::Rng;
use rsip::Method;

use crate::sip::peer::Peer;
use client_invite::ClientInvite;
use client_non_invite::ClientNonInvite;
pub use key::{Role, TransactionKey};
use server_invite::ServerInvite;
use server_non_invite::ServerNonInvite;
pub use timer::{Timer, TimerConfig};

/// The prefix that marks an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A fresh Via branch for a request the TU is about to send: the magic cookie and 16 random
/// alphanumerics (about 95 bits) drawn from `rng`, unique across space and time as §8.1.1.7 asks
/// when `rng` is a CSPRNG seeded from the OS (the cores never draw entropy themselves; see
/// [`TransactionLayer::new`]).
pub fn new_branch<R: Rng + ?Sized>(rng: &mut R) -> String {
    let random = Alphanumeric.sample_string(rng, 16);
    format!("{MAGIC_COOKIE}{random}")
}

/// Bytes for the transport to send. Serialised once; a retransmission re-sends the same `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub payload: Bytes,
}

/// What the transaction layer tells the TU.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactionEvent {
    /// A new request (never a retransmission) started a server transaction; answer it with
    /// [`TransactionLayer::respond`]. For a CANCEL, `cancels` is the server INVITE transaction with
    /// the same branch and sender (§9.2), in whatever state it is in, so the TU can tell "no such
    /// INVITE" (None: answer 481) from "already answered" (the key of an INVITE in Accepted or
    /// Completed: answer the CANCEL 200 and leave the call alone; `respond` refuses a 487 there).
    Request {
        key: TransactionKey,
        peer: Peer,
        request: rsip::Request,
        cancels: Option<TransactionKey>,
    },
    /// An ACK the layer does not absorb: the ACK for a 2xx, which has its own branch and matches no
    /// transaction, or one that reached an INVITE server transaction in Accepted (RFC 6026 §8.7).
    /// ACKs for 3xx–6xx finals are absorbed by the transaction and never surface.
    Ack { peer: Peer, request: rsip::Request },
    /// A response for a client transaction: each distinct provisional once, the final once.
    /// Retransmissions are absorbed. A 2xx from a second fork (new To tag) in Accepted is a new
    /// final and arrives here too: the TU must ACK and then BYE it (§13.2.2.4).
    Response {
        key: TransactionKey,
        response: rsip::Response,
    },
    /// A response no live client transaction wants to deliver as new: one matching no transaction
    /// (a 2xx retransmitted after the INVITE transaction ended) or a repeat of a 2xx already
    /// delivered while the INVITE transaction is in Accepted. Either way the UAS is retransmitting
    /// because our ACK was lost: the TU re-sends the ACK for a 2xx and ignores anything else.
    StrayResponse {
        peer: Peer,
        response: rsip::Response,
    },
    /// Timer B or F (client: no final response), Timer B after a CANCEL (§9.1), or Timer H (server
    /// INVITE: no ACK for a 3xx–6xx final). `Terminated` follows.
    Timeout { key: TransactionKey },
    /// The transaction is gone; its key will not be used again by this layer.
    Terminated { key: TransactionKey },
}

/// The states of RFC 3261 Figures 5–8 with RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("message has no via header")]
    MissingVia,
    #[error("top via {0:?} cannot be parsed")]
    MalformedVia(String),
    #[error("top via {0:?} has no branch parameter")]
    MissingBranch(String),
    #[error("message has no cseq header")]
    MissingCSeq,
    #[error("cseq {0:?} cannot be parsed")]
    MalformedCSeq(String),
    #[error("request method {request} does not match cseq method {cseq}")]
    MethodMismatch { request: Method, cseq: Method },
    #[error("no live transaction {0}")]
    UnknownTransaction(TransactionKey),
    #[error("{0} is a client transaction; only server transactions are answered")]
    NotAServerTransaction(TransactionKey),
    #[error("status {0} is outside 100-699")]
    InvalidStatus(u16),
    #[error("status {status} is not allowed for {key} in state {state:?}")]
    ResponseNotAllowed {
        key: TransactionKey,
        status: u16,
        state: TransactionState,
    },
}

/// What one machine wants sent and told, drained by the layer after every call into it.
#[derive(Debug, Default)]
struct Outbox {
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
}

impl Outbox {
    fn transmit(&mut self, peer: Peer, payload: Bytes) {
        self.transmits.push_back(Transmit { peer, payload });
    }

    fn event(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }
}

enum Transaction {
    /// Boxed: it keeps the INVITE for building ACKs and is twice the size of the others.
    InviteClient(Box<ClientInvite>),
    NonInviteClient(ClientNonInvite),
    InviteServer(ServerInvite),
    NonInviteServer(ServerNonInvite),
}

impl Transaction {
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Transaction::InviteClient(tx) => tx.handle_timeout(now),
            Transaction::NonInviteClient(tx) => tx.handle_timeout(now),
            Transaction::InviteServer(tx) => tx.handle_timeout(now),
            Transaction::NonInviteServer(tx) => tx.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Transaction::InviteClient(tx) => tx.poll_timeout(),
            Transaction::NonInviteClient(tx) => tx.poll_timeout(),
            Transaction::InviteServer(tx) => tx.poll_timeout(),
            Transaction::NonInviteServer(tx) => tx.poll_timeout(),
        }
    }

    fn state(&self) -> TransactionState {
        match self {
            Transaction::InviteClient(tx) => tx.state(),
            Transaction::NonInviteClient(tx) => tx.state(),
            Transaction::InviteServer(tx) => tx.state(),
            Transaction::NonInviteServer(tx) => tx.state(),
        }
    }

    fn outbox(&mut self) -> &mut Outbox {
        match self {
            Transaction::InviteClient(tx) => &mut tx.out,
            Transaction::NonInviteClient(tx) => &mut tx.out,
            Transaction::InviteServer(tx) => &mut tx.out,
            Transaction::NonInviteServer(tx) => &mut tx.out,
        }
    }
}

struct Slot {
    /// Orders deadlines of transactions whose keys have no order of their own.
    id: u64,
    /// The deadline this slot has in `TransactionLayer::deadlines`, kept so it can be removed.
    scheduled: Option<Instant>,
    transaction: Transaction,
}

/// All live transactions of one SIP endpoint, the single entry point between transports and the
/// TU. Not thread-safe by design: one task owns it and feeds it.
pub struct TransactionLayer {
    timers: TimerConfig,
    transactions: HashMap<TransactionKey, Slot>,
    keys_by_id: HashMap<u64, TransactionKey>,
    /// Every live transaction's next deadline, so `poll_timeout` is exact and `handle_timeout`
    /// visits only the transactions that are due.
    deadlines: BTreeSet<(Instant, u64)>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
    /// Where branches come from: the layer draws no entropy of its own.
    rng: StdRng,
}

impl TransactionLayer {
    /// A layer with no transactions. `rng` is its only source of randomness (branches): production
    /// passes `StdRng::from_entropy()`, tests `StdRng::seed_from_u64(n)` so runs repeat.
    pub fn new(timers: TimerConfig, rng: StdRng) -> Self {
        TransactionLayer {
            rng,
            timers: timers.sanitised(),
            transactions: HashMap::new(),
            keys_by_id: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A message arrived from the transport. Requests that are retransmissions are absorbed (and
    /// the last response re-sent); ACKs for non-2xx finals are absorbed; everything new becomes an
    /// event. Errs for messages it cannot key (no Via or branch, no CSeq, CSeq method not the
    /// request method): the caller decides between 400 and silence.
    pub fn handle_message(
        &mut self,
        now: Instant,
        peer: Peer,
        message: rsip::SipMessage,
    ) -> Result<(), TransactionError> {
        match message {
            rsip::SipMessage::Request(request) => self.handle_request(now, peer, request),
            rsip::SipMessage::Response(response) => self.handle_response(now, peer, response),
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        peer: Peer,
        request: rsip::Request,
    ) -> Result<(), TransactionError> {
        let key = TransactionKey::for_received_request(&request)?;
        if request.method == Method::Ack {
            match self.transactions.get_mut(&key) {
                Some(Slot {
                    transaction: Transaction::InviteServer(invite),
                    ..
                }) => invite.handle_ack(now, peer, request),
                // ACK keys always carry INVITE, and only INVITE server transactions have
                // server INVITE keys; anything else here is an ACK for a 2xx.
                _ => self
                    .events
                    .push_back(TransactionEvent::Ack { peer, request }),
            }
            self.settle(&key);
            return Ok(());
        }
        if let Some(slot) = self.transactions.get_mut(&key) {
            match &mut slot.transaction {
                Transaction::InviteServer(tx) => tx.handle_retransmission(),
                Transaction::NonInviteServer(tx) => tx.handle_retransmission(),
                // Server keys never name client transactions: the role is part of the key.
                Transaction::InviteClient(_) | Transaction::NonInviteClient(_) => {}
            }
            self.settle(&key);
            return Ok(());
        }
        let cancels = (request.method == Method::Cancel)
            .then(|| key.with_method(Method::Invite))
            .filter(|invite| self.transactions.contains_key(invite));
        let transaction = if request.method == Method::Invite {
            Transaction::InviteServer(ServerInvite::new(key.clone(), peer, &request, self.timers))
        } else {
            Transaction::NonInviteServer(ServerNonInvite::new(key.clone(), peer, self.timers))
        };
        self.insert(key.clone(), transaction);
        self.events.push_back(TransactionEvent::Request {
            key: key.clone(),
            peer,
            request,
            cancels,
        });
        self.settle(&key);
        Ok(())
    }

    fn handle_response(
        &mut self,
        now: Instant,
        peer: Peer,
        response: rsip::Response,
    ) -> Result<(), TransactionError> {
        let key = TransactionKey::for_response(&response)?;
        match self
            .transactions
            .get_mut(&key)
            .map(|slot| &mut slot.transaction)
        {
            Some(Transaction::InviteClient(tx)) => tx.handle_response(now, peer, response),
            Some(Transaction::NonInviteClient(tx)) => tx.handle_response(now, peer, response),
            // Response keys are client keys, so a server transaction cannot match.
            Some(Transaction::InviteServer(_) | Transaction::NonInviteServer(_)) | None => self
                .events
                .push_back(TransactionEvent::StrayResponse { peer, response }),
        }
        self.settle(&key);
        Ok(())
    }

    /// The TU answers a server transaction: 1xx, 2xx or 3xx–6xx. Errs if the key is unknown or
    /// terminated, names a client transaction, or the response is not allowed in the current state
    /// (anything after a non-2xx final; anything but another 2xx after a 2xx on INVITE).
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: rsip::Response,
    ) -> Result<(), TransactionError> {
        let status = response.status_code.code();
        let class = message::status_class(status).ok_or(TransactionError::InvalidStatus(status))?;
        let slot = self
            .transactions
            .get_mut(key)
            .ok_or_else(|| TransactionError::UnknownTransaction(key.clone()))?;
        let outcome = match &mut slot.transaction {
            Transaction::InviteServer(tx) => tx.respond(now, class, response),
            Transaction::NonInviteServer(tx) => tx.respond(now, class, response),
            Transaction::InviteClient(_) | Transaction::NonInviteClient(_) => {
                return Err(TransactionError::NotAServerTransaction(key.clone()))
            }
        };
        self.settle(key);
        outcome.map_err(|state| TransactionError::ResponseNotAllowed {
            key: key.clone(),
            status,
            state,
        })
    }

    /// A fresh Via branch ([`new_branch`]) from the layer's own RNG, for a request the TU is
    /// about to send.
    pub fn new_branch(&mut self) -> String {
        new_branch(&mut self.rng)
    }

    /// The TU starts a client transaction (INVITE or non-INVITE, e.g. BYE or CANCEL) toward
    /// `peer`. The request must already carry a top Via with a fresh branch
    /// ([`TransactionLayer::new_branch`]).
    ///
    /// A CANCEL also arms Timer B on the INVITE it cancels, so an INVITE whose UAS never answers
    /// the CANCEL is abandoned after 64·T1 (§9.1). An ACK is not a transaction: it is sent once,
    /// as [`send_stateless`](Self::send_stateless) would. A request without a usable top Via
    /// branch is a TU bug; it is still sent, under a key no response can match, so the TU sees
    /// Timer B/F expire rather than a panic.
    pub fn send_request(
        &mut self,
        now: Instant,
        peer: Peer,
        request: rsip::Request,
    ) -> TransactionKey {
        let key = TransactionKey::for_sent_request(&request).unwrap_or_else(|error| {
            tracing::warn!(%error, method = %request.method, "request sent without a usable branch");
            TransactionKey::client(format!("{}-unkeyable", self.new_branch()), request.method)
        });
        match request.method {
            Method::Ack => {
                self.send_stateless(peer, request.into());
                return key;
            }
            Method::Cancel => {
                let invite = key.with_method(Method::Invite);
                if let Some(Slot {
                    transaction: Transaction::InviteClient(tx),
                    ..
                }) = self.transactions.get_mut(&invite)
                {
                    tx.cancel_sent(now);
                    self.settle(&invite);
                }
            }
            _ => {}
        }
        if self.transactions.contains_key(&key) {
            tracing::warn!(%key, "branch reused while its transaction lives; replacing it");
            self.remove(&key);
        }
        let transaction = if request.method == Method::Invite {
            Transaction::InviteClient(Box::new(ClientInvite::new(
                now,
                key.clone(),
                peer,
                request,
                self.timers,
            )))
        } else {
            Transaction::NonInviteClient(ClientNonInvite::new(
                now,
                key.clone(),
                peer,
                request,
                self.timers,
            ))
        };
        self.insert(key.clone(), transaction);
        self.settle(&key);
        key
    }

    /// Messages sent outside transactions: the ACK for a 2xx and the UAS core's 2xx
    /// retransmissions (§13.3.1.4 makes those the TU's job, not the transaction's).
    pub fn send_stateless(&mut self, peer: Peer, message: rsip::SipMessage) {
        self.transmits.push_back(Transmit {
            peer,
            payload: message::encode(message),
        });
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .deadlines
            .range(..=(now, u64::MAX))
            .map(|(_, id)| *id)
            .collect();
        for id in due {
            let Some(key) = self.keys_by_id.get(&id).cloned() else {
                continue;
            };
            if let Some(slot) = self.transactions.get_mut(&key) {
                slot.transaction.handle_timeout(now);
            }
            self.settle(&key);
        }
    }

    /// The earliest deadline across all transactions; None when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// Live transactions, for metrics and tests.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Where a live transaction stands; None once it has terminated. Lets the TU check, say,
    /// whether a CANCELled INVITE was already answered.
    pub fn state(&self, key: &TransactionKey) -> Option<TransactionState> {
        self.transactions
            .get(key)
            .map(|slot| slot.transaction.state())
    }

    fn insert(&mut self, key: TransactionKey, transaction: Transaction) {
        let id = self.next_id;
        self.next_id += 1;
        self.keys_by_id.insert(id, key.clone());
        self.transactions.insert(
            key,
            Slot {
                id,
                scheduled: None,
                transaction,
            },
        );
    }

    fn remove(&mut self, key: &TransactionKey) {
        if let Some(slot) = self.transactions.remove(key) {
            self.keys_by_id.remove(&slot.id);
            if let Some(at) = slot.scheduled {
                self.deadlines.remove(&(at, slot.id));
            }
        }
    }

    /// After any call into a machine: collect its output, move its deadline, and drop it once it
    /// has terminated.
    fn settle(&mut self, key: &TransactionKey) {
        let Some(slot) = self.transactions.get_mut(key) else {
            return;
        };
        let outbox = slot.transaction.outbox();
        self.transmits.append(&mut outbox.transmits);
        self.events.append(&mut outbox.events);
        let terminated = slot.transaction.state() == TransactionState::Terminated;
        let next = if terminated {
            None
        } else {
            slot.transaction.poll_timeout()
        };
        if next != slot.scheduled {
            if let Some(at) = slot.scheduled {
                self.deadlines.remove(&(at, slot.id));
            }
            if let Some(at) = next {
                self.deadlines.insert((at, slot.id));
            }
            slot.scheduled = next;
        }
        if terminated {
            self.remove(key);
        }
    }
}
