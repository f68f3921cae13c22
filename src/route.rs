//! Where a call goes next: a trunk's route, an IVR destination, a queue's overflow. Written by
//! operators as `ivr:MENU`, `queue:NAME`, `hangup` or `hangup:PROMPT`, `voicemail:BOX`,
//! `pstn:NUMBER`, and parsed once, when the configuration loads: a misspelt scheme stops the
//! daemon with the file, line and key instead of hanging up on a caller later.
//!
//! A leaf module: every stage may name a destination without importing another stage.
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// The local IVR, starting in this menu.
    Ivr { menu: String },
    /// Wait in this queue for an agent.
    Queue { name: String },
    /// End the call, after the prompt (if any) has been heard.
    Hangup { prompt: Option<String> },
    /// A voicemail box. Not routable yet: a call sent there is hung up, with a warning.
    Voicemail { mailbox: String },
    /// A number on the public network; empty means "the digits the caller entered". Not
    /// routable until outbound calls exist: a call sent there is hung up, with a warning.
    External { number: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("destination target is empty")]
    Empty,
    #[error("destination {0:?} names no {1}")]
    MissingName(String, &'static str),
    #[error(
        "unknown destination {0:?}: expected \"ivr:MENU\", \"queue:NAME\", \"hangup\", \
         \"hangup:PROMPT\", \"voicemail:BOX\" or \"pstn:NUMBER\""
    )]
    Unknown(String),
}

impl Destination {
    /// The prompt a hang-up destination says before hanging up.
    pub fn goodbye_prompt(&self) -> Option<&str> {
        match self {
            Destination::Hangup { prompt } => prompt.as_deref(),
            _ => None,
        }
    }
}

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        if s.is_empty() {
            return Err(DestinationError::Empty);
        }
        let (scheme, rest) = s.split_once(':').unwrap_or((s, ""));
        let named = |what: &'static str| {
            if rest.trim().is_empty() {
                Err(DestinationError::MissingName(s.to_string(), what))
            } else {
                Ok(rest.trim().to_string())
            }
        };
        Ok(match scheme {
            "ivr" => Destination::Ivr {
                menu: named("menu")?,
            },
            "queue" => Destination::Queue {
                name: named("queue")?,
            },
            "hangup" => Destination::Hangup {
                prompt: Some(rest.trim().to_string()).filter(|p| !p.is_empty()),
            },
            "voicemail" => Destination::Voicemail {
                mailbox: named("mailbox")?,
            },
            "pstn" => Destination::External {
                number: rest.trim().to_string(),
            },
            _ => return Err(DestinationError::Unknown(s.to_string())),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Ivr { menu } => write!(f, "ivr:{menu}"),
            Destination::Queue { name } => write!(f, "queue:{name}"),
            Destination::Hangup { prompt: None } => write!(f, "hangup"),
            Destination::Hangup { prompt: Some(p) } => write!(f, "hangup:{p}"),
            Destination::Voicemail { mailbox } => write!(f, "voicemail:{mailbox}"),
            Destination::External { number } => write!(f, "pstn:{number}"),
        }
    }
}

impl<'de> Deserialize<'de> for Destination {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_prints_back() {
        for text in [
            "ivr:main",
            "queue:support",
            "hangup",
            "hangup:goodbye",
            "voicemail:100",
            "pstn:+15551234",
            "pstn:",
        ] {
            let d: Destination = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(
            " queue:sales ".parse::<Destination>(),
            Ok(Destination::Queue {
                name: "sales".into()
            })
        );
    }

    #[test]
    fn bad_forms_are_refused_with_what_was_written() {
        assert_eq!("".parse::<Destination>(), Err(DestinationError::Empty));
        assert_eq!(" ".parse::<Destination>(), Err(DestinationError::Empty));
        assert_eq!(
            "queue:".parse::<Destination>(),
            Err(DestinationError::MissingName("queue:".into(), "queue"))
        );
        let e = "quuee:support".parse::<Destination>().unwrap_err();
        assert!(e.to_string().contains("\"quuee:support\""), "{e}");
        assert!(e.to_string().contains("queue:NAME"), "{e}");
    }
}
