//! Handing a call back to the carrier to transfer (RFC 3515 REFER): the agent's caller goes to
//! an external number by the carrier's own switch, and the gateway's channel is free. We send
//! REFER in the caller's dialog with `Refer-To` and `Referred-By`; the carrier accepts (202) and
//! reports how its new call fares in NOTIFYs whose body is a SIP status line (`message/sipfrag`,
//! RFC 3515 §2.4.5). The first final status ends it: a 2xx means the caller is with the new
//! party (we then hang up our side), anything else that the transfer failed and the call goes
//! on. A REFER refused outright (405, 403, 501…) is the same failure.
use std::time::Instant;

use rsip::headers::UntypedHeader;

use super::{CallEvent, CallRef, DialogState, UaError, UserAgent};
use crate::sip::message::{self, header};
use crate::sip::transaction::TransactionKey;

impl UserAgent {
    /// Asks the carrier of `call` to transfer it to `number` (at the carrier's signalling
    /// address: `sip:NUMBER@ADDR`); `referred_by` names who asked (a user part). The outcome
    /// comes as [`CallEvent::Referred`].
    pub fn refer(
        &mut self,
        now: Instant,
        call: CallRef,
        number: &str,
        referred_by: &str,
    ) -> Result<(), UaError> {
        let d = self
            .dialogs
            .get_mut(&call)
            .ok_or(UaError::UnknownCall(call))?;
        if !matches!(d.state, DialogState::Answered | DialogState::Confirmed) {
            return Err(UaError::WrongState(call, d.state, "refer"));
        }
        d.local_cseq += 1;
        let branch = self.tx.new_branch();
        let mut request = d.request(rsip::Method::Refer, d.local_cseq, &self.user_agent, &branch);
        let target = format!("sip:{number}@{}", d.peer.addr);
        message::push(&mut request.headers, "Refer-To", format!("<{target}>"));
        message::push(
            &mut request.headers,
            "Referred-By",
            format!("<sip:{referred_by}@{}>", d.local),
        );
        request
            .headers
            .push(rsip::Header::Contact(rsip::headers::Contact::new(
                d.contact(),
            )));
        message::set_body(&mut request.headers, &mut request.body, None, Vec::new());
        let peer = d.peer;
        let key = self.tx.send_request(now, peer, request);
        self.refers.insert(key, call);
        Ok(())
    }

    /// The final answer to a REFER of ours (`None`: it timed out). False if `key` is no REFER.
    pub(super) fn on_refer_end(&mut self, key: &TransactionKey, status: Option<u16>) -> bool {
        let Some(call) = self.refers.remove(key) else {
            return false;
        };
        match status {
            // Accepted: the NOTIFYs tell the rest.
            Some(200..=299) => {}
            Some(code) => self
                .events
                .push_back(CallEvent::Referred { call, status: code }),
            None => self
                .events
                .push_back(CallEvent::Referred { call, status: 408 }),
        }
        true
    }

    /// A NOTIFY in `call`'s dialog: for our REFER (`Event: refer`), its sipfrag's status; the
    /// first final one is the transfer's outcome. Answered 200 either way (489 for an event
    /// we never subscribed to).
    pub(super) fn on_notify(
        &mut self,
        now: Instant,
        call: CallRef,
        key: TransactionKey,
        request: rsip::Request,
        tag: &str,
    ) {
        let event = header(&request.headers, "Event")
            .or_else(|| header(&request.headers, "o"))
            .unwrap_or_default();
        if !event.trim().to_ascii_lowercase().starts_with("refer") {
            return self.reply_in_dialog(now, &key, &request, 489, tag);
        }
        self.reply_in_dialog(now, &key, &request, 200, tag);
        let body = String::from_utf8_lossy(&request.body);
        let status = body
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("SIP/2.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok());
        if let Some(status @ 200..) = status {
            self.events.push_back(CallEvent::Referred { call, status });
        }
    }
}
