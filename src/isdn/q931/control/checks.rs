//! Reading a message's elements the way §5.8.6–§5.8.7 asks: a mandatory element missing or
//! unreadable stops the message (cause 96 or 100); an optional one that is unreadable is left
//! out and reported afterwards (STATUS, cause 100), as is an element we do not know (cause 99);
//! an unknown element that must be understood counts as a missing mandatory one.
use super::super::cause;
use super::super::ie::{self, IeError};
use super::super::message::{CallRef, Message, MessageType};
use super::CallControl;

pub(super) struct Reading<'a> {
    message: &'a Message,
    bad: Vec<u8>,
}

impl<'a> Reading<'a> {
    pub fn new(message: &'a Message) -> Self {
        Reading {
            message,
            bad: Vec::new(),
        }
    }

    pub fn message(&self) -> &'a Message {
        self.message
    }

    /// Codeset-0 elements we do not know. Elements of other codesets (national, network
    /// specific) are not ours to understand and are passed over.
    fn unknown(&self) -> impl Iterator<Item = u8> + 'a {
        self.message
            .ies
            .iter()
            .filter(|e| e.codeset == 0 && !ie::id::KNOWN.contains(&e.id) && !e.single_octet())
            .map(|e| e.id)
    }

    /// An unknown element whose identifier says it must be understood (bits 8–5 zero).
    pub fn comprehension_required(&self) -> Option<u8> {
        self.unknown().find(|id| id & 0xf0 == 0)
    }

    pub fn optional<T>(
        &mut self,
        id: u8,
        read: impl FnOnce(&[u8]) -> Result<T, IeError>,
    ) -> Option<T> {
        let raw = self.message.ie(id)?;
        match read(&raw.body) {
            Ok(value) => Some(value),
            Err(_) => {
                self.bad.push(id);
                None
            }
        }
    }

    /// An element a message may lack, but that must be right when present: `Err((cause, id))`.
    pub fn checked_optional<T>(
        &mut self,
        id: u8,
        read: impl FnOnce(&[u8]) -> Result<T, IeError>,
    ) -> Result<Option<T>, (u8, u8)> {
        match self.message.ie(id) {
            None => Ok(None),
            Some(raw) => read(&raw.body)
                .map(Some)
                .map_err(|_| (cause::INVALID_IE_CONTENTS, id)),
        }
    }

    /// A mandatory element: `Err((cause, id))` if it is missing (96) or unreadable (100).
    pub fn mandatory<T>(
        &mut self,
        id: u8,
        read: impl FnOnce(&[u8]) -> Result<T, IeError>,
    ) -> Result<T, (u8, u8)> {
        match self.message.ie(id) {
            None if self.message.truncated => Err((cause::INVALID_IE_CONTENTS, id)),
            None => Err((cause::MANDATORY_IE_MISSING, id)),
            Some(raw) => read(&raw.body).map_err(|_| (cause::INVALID_IE_CONTENTS, id)),
        }
    }

    /// After the message was acted on: STATUS for what was wrong with it. A clearing message
    /// is answered by the clearing itself.
    pub fn report(self, control: &mut CallControl, call: CallRef) {
        if matches!(
            self.message.kind,
            MessageType::Disconnect | MessageType::Release | MessageType::ReleaseComplete
        ) {
            return;
        }
        let unknown: Vec<u8> = self.unknown().collect();
        let (value, diagnostic) = if !self.bad.is_empty() || self.message.truncated {
            (cause::INVALID_IE_CONTENTS, self.bad)
        } else if !unknown.is_empty() {
            (cause::IE_NON_EXISTENT, unknown)
        } else {
            return;
        };
        control.problem(format!(
            "{} with elements {}: STATUS cause {value}",
            self.message.kind.name(),
            match value {
                cause::INVALID_IE_CONTENTS => "we cannot read",
                _ => "we do not know",
            }
        ));
        control.send_status(call, value, diagnostic);
    }
}
