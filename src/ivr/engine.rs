//! The menu engine: one [`IvrSession`] per call, sans-IO.
//!
//! The call actor feeds it DTMF keys, "playback finished" notices and time, and carries out what
//! [`IvrSession::poll_output`] returns. A session moves through four phases:
//!
//! ```text
//! enter menu ─▶ Prompting ──playback finished──▶ Collecting ──key / timer──▶ action or replay
//!                  └──key, barge_in on: StopPlayback, the key counts──▶ Collecting
//! action with a prompt ─▶ Announcing ──playback finished──▶ Hangup / Transfer / enter menu
//! Hangup / Transfer ─▶ Ended
//! ```
//!
//! Operator-facing rules, and why:
//! - Collection timers start when the prompts have finished, never while they play: a long menu
//!   must not time out under the caller's ear.
//! - With `barge_in`, a key during the prompts stops them and counts as input; without it keys
//!   during prompts are dropped, so a menu that must be heard (legal notices) is heard.
//! - An invalid choice plays `invalid_prompt`, no input plays `timeout_prompt`; both then replay
//!   the menu and draw on the same `retries` budget. Once it is spent, that same prompt precedes
//!   `on_failure`, so the caller learns why they are being moved or dropped.
//! - A `Hangup` or `Transfer` is emitted only after the prompt leading to it has finished, so the
//!   caller hears "goodbye" before the BYE. Keys pressed meanwhile (and during a read-back) are
//!   ignored: the caller is on the way out, or listening to what they typed.
//! - Entering a menu (goto, read_back, on_failure) resets its retry budget.
//! - Every event does a bounded amount of work: actions never call each other recursively, and
//!   a menu loop replaces state instead of stacking it, so memory stays constant however long
//!   a call runs. What a config *can* do is keep a silent caller (or a dead RTP
//!   stream) in a loop such as `on_failure = goto itself`; [`MAX_MENU_ENTRIES_PER_CALL`] caps
//!   that and hangs up.
//!
//! Contract with the media side: `Play` appends to whatever is queued; `on_playback_finished`
//! reports that the queue ran dry by playing (or that a prompt could not be played at all — the
//! engine would otherwise wait for ever); after `StopPlayback` the stopped prompts are never
//! reported. The call actor applies outputs in order on its own task, so there is no race
//! between a stop and a late completion.

use crate::route::Destination;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::config::{Action, Collect, IvrConfig, Menu};

/// How many times one call may enter or replay a menu before the engine hangs up.
///
/// Counting replays as well as transitions covers every config-made loop (`on_failure` pointing
/// back at its own menu, two menus sending a silent caller to each other, a huge `retries`). A
/// real caller needs a fraction of this: the example menus take two entries per read-back.
pub const MAX_MENU_ENTRIES_PER_CALL: u32 = 50;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IvrError {
    #[error("unknown ivr menu \"{0}\"")]
    UnknownMenu(String),
}

/// What the call actor must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrOutput {
    /// Queue these prompts, in order, after whatever is already playing.
    Play(Vec<String>),
    /// Drop everything queued or playing: the caller barged in.
    StopPlayback,
    /// End the call; the IVR is done.
    Hangup,
    /// Hand the call to `target`; `digits` are the keys that led there (the option chosen, or a
    /// collect menu's entry). The IVR is done.
    Transfer { target: Destination, digits: String },
}

/// The session's only timer; which one runs depends on whether a key has been pressed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Fires `timeout_ms` after the prompts finished if no key has been pressed: no input.
    FirstDigit,
    /// Fires `inter_digit_timeout_ms` after the latest key of an entry that could still grow:
    /// the entry is complete (collect) or settles on the shorter option (options).
    InterDigit,
}

#[derive(Debug)]
enum Phase {
    /// The menu's prompts (maybe behind an invalid/timeout prompt) are playing.
    Prompting,
    /// Waiting for keys until the timer fires.
    Collecting { timer: Timer, deadline: Instant },
    /// A prompt that must be heard in full before `next` happens.
    Announcing { next: Next },
    /// Hangup or Transfer was emitted.
    Ended,
}

#[derive(Debug)]
enum Next {
    Hangup,
    Transfer { target: Destination, digits: String },
    EnterMenu(String),
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Invalid,
    NoInput,
}

/// How a menu takes input, with the fallbacks an unvalidated config needs to stay panic-free.
enum Input<'a> {
    Options(&'a BTreeMap<String, Action>),
    Collect {
        collect: &'a Collect,
        then: &'a Action,
    },
}

/// A collect menu without `then` (rejected by validation) ends the call rather than panicking.
static SILENT_HANGUP: Action = Action::Hangup { prompt: None };
/// A menu with neither options nor collect (rejected by validation) treats every key as invalid.
static NO_OPTIONS: BTreeMap<String, Action> = BTreeMap::new();

fn input_of(menu: &Menu) -> Input<'_> {
    match (&menu.options, &menu.collect) {
        (Some(options), _) => Input::Options(options),
        (None, Some(collect)) => Input::Collect {
            collect,
            then: menu.then.as_ref().unwrap_or(&SILENT_HANGUP),
        },
        (None, None) => Input::Options(&NO_OPTIONS),
    }
}

/// One caller's walk through the menus.
#[derive(Debug)]
pub struct IvrSession {
    config: Arc<IvrConfig>,
    /// Always a key of `config.menus`: it is only assigned after a successful lookup.
    menu: String,
    /// Keys of the entry in progress; cleared on every (re)play of a menu.
    digits: String,
    /// Replays used in the current menu.
    replays: u32,
    /// Menu entries and replays in this call, for [`MAX_MENU_ENTRIES_PER_CALL`].
    menu_entries: u32,
    phase: Phase,
    outputs: VecDeque<IvrOutput>,
}

impl IvrSession {
    /// Starts a call in `start_menu`; its prompts are the first output.
    pub fn new(config: Arc<IvrConfig>, start_menu: &str, now: Instant) -> Result<Self, IvrError> {
        if !config.menus.contains_key(start_menu) {
            return Err(IvrError::UnknownMenu(start_menu.to_owned()));
        }
        let mut session = IvrSession {
            config,
            menu: start_menu.to_owned(),
            digits: String::new(),
            replays: 0,
            menu_entries: 0,
            phase: Phase::Prompting,
            outputs: VecDeque::new(),
        };
        session.enter_menu(now, start_menu, Vec::new());
        Ok(session)
    }

    /// A DTMF key from the caller. Anything but 0-9, * and # is ignored.
    pub fn on_digit(&mut self, now: Instant, digit: char) {
        if !super::config::is_dtmf_key(digit) {
            tracing::debug!(?digit, "ivr ignores a key that is not on a phone keypad");
            return;
        }
        match self.phase {
            Phase::Prompting => {
                let config = Arc::clone(&self.config);
                if self.current(&config).barge_in {
                    self.outputs.push_back(IvrOutput::StopPlayback);
                    self.accept_key(now, digit);
                }
            }
            Phase::Collecting { .. } => self.accept_key(now, digit),
            Phase::Announcing { .. } | Phase::Ended => {}
        }
    }

    /// The media side finished everything queued by the last `Play`.
    pub fn on_playback_finished(&mut self, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Ended) {
            Phase::Prompting => {
                let config = Arc::clone(&self.config);
                self.phase = Phase::Collecting {
                    timer: Timer::FirstDigit,
                    deadline: now + self.current(&config).timeout(),
                };
            }
            Phase::Announcing { next } => self.proceed(now, next),
            other => self.phase = other,
        }
    }

    /// Acts on the timer if it is due at `now`; early calls change nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Phase::Collecting { timer, deadline } = self.phase else {
            return;
        };
        if now < deadline {
            return;
        }
        match timer {
            Timer::FirstDigit => self.fail(now, Failure::NoInput),
            Timer::InterDigit => self.entry_complete(now),
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do; `None` while prompts
    /// play, since collection timers only start afterwards.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Collecting { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    pub fn poll_output(&mut self) -> Option<IvrOutput> {
        self.outputs.pop_front()
    }

    /// The menu the caller is in, for the journal and the admin API.
    pub fn current_menu(&self) -> &str {
        &self.menu
    }

    /// Keys of the entry in progress (or the one that just completed, until the next menu).
    pub fn collected(&self) -> &str {
        &self.digits
    }

    /// `config` is a clone of `self.config`, so the menu can be read while `self` changes.
    fn current<'c>(&self, config: &'c IvrConfig) -> &'c Menu {
        config
            .menus
            .get(&self.menu)
            .expect("self.menu is only assigned names found in this same immutable config")
    }

    fn accept_key(&mut self, now: Instant, key: char) {
        let config = Arc::clone(&self.config);
        let menu = self.current(&config);
        let wait_for_more = Phase::Collecting {
            timer: Timer::InterDigit,
            deadline: now + menu.inter_digit_timeout(),
        };
        match input_of(menu) {
            Input::Options(options) => {
                self.digits.push(key);
                let entry = self.digits.as_str();
                let could_grow = options
                    .keys()
                    .any(|option| option.len() > entry.len() && option.starts_with(entry));
                if could_grow {
                    self.phase = wait_for_more;
                } else if let Some(action) = options.get(entry) {
                    self.apply(now, action, Vec::new());
                } else {
                    self.fail(now, Failure::Invalid);
                }
            }
            Input::Collect { collect, then } => {
                if collect.terminator_key() == Some(key) {
                    if self.digits.is_empty() {
                        self.fail(now, Failure::Invalid);
                    } else {
                        self.apply(now, then, Vec::new());
                    }
                    return;
                }
                self.digits.push(key);
                // u32 → usize cannot truncate on the 32/64-bit targets we build for.
                if self.digits.len() >= collect.max_digits as usize {
                    self.apply(now, then, Vec::new());
                } else {
                    self.phase = wait_for_more;
                }
            }
        }
    }

    /// The inter-digit timer fired: the caller has stopped typing.
    fn entry_complete(&mut self, now: Instant) {
        let config = Arc::clone(&self.config);
        if self.digits.is_empty() {
            return self.fail(now, Failure::NoInput);
        }
        match input_of(self.current(&config)) {
            Input::Options(options) => match options.get(&self.digits) {
                Some(action) => self.apply(now, action, Vec::new()),
                None => self.fail(now, Failure::Invalid),
            },
            Input::Collect { then, .. } => self.apply(now, then, Vec::new()),
        }
    }

    fn fail(&mut self, now: Instant, failure: Failure) {
        let config = Arc::clone(&self.config);
        let menu = self.current(&config);
        let prompt = match failure {
            Failure::Invalid => &menu.invalid_prompt,
            Failure::NoInput => menu.no_input_prompt(),
        };
        // The failed entry is discarded: on_failure must not read back or transfer it.
        self.digits.clear();
        if self.replays < menu.retries {
            self.replays += 1;
            self.play_menu(now, vec![prompt.to_owned()]);
        } else {
            self.apply(now, &menu.on_failure, vec![prompt.to_owned()]);
        }
    }

    /// Carries out `action`, with `lead_in` prompts (a failure's explanation) played first.
    fn apply(&mut self, now: Instant, action: &Action, mut lead_in: Vec<String>) {
        match action {
            Action::Goto { menu } => self.enter_menu(now, menu, lead_in),
            Action::Hangup { prompt } => {
                lead_in.extend(prompt.iter().cloned());
                self.announce(now, lead_in, Next::Hangup);
            }
            Action::Destination { target } => {
                let next = Next::Transfer {
                    target: target.clone(),
                    digits: self.digits.clone(),
                };
                self.announce(now, lead_in, next);
            }
            Action::ReadBack { prompt, menu } => {
                lead_in.extend(prompt.iter().cloned());
                let config = Arc::clone(&self.config);
                lead_in.extend(
                    self.digits
                        .chars()
                        .filter_map(|key| config.digit_prompt(key)),
                );
                self.announce(now, lead_in, Next::EnterMenu(menu.clone()));
            }
        }
    }

    /// Plays `prompts` to the end, then does `next`; with nothing to play, does it at once.
    fn announce(&mut self, now: Instant, prompts: Vec<String>, next: Next) {
        if prompts.is_empty() {
            self.proceed(now, next);
        } else {
            self.outputs.push_back(IvrOutput::Play(prompts));
            self.phase = Phase::Announcing { next };
        }
    }

    fn proceed(&mut self, now: Instant, next: Next) {
        match next {
            Next::Hangup => self.end(IvrOutput::Hangup),
            Next::Transfer { target, digits } => self.end(IvrOutput::Transfer { target, digits }),
            Next::EnterMenu(menu) => self.enter_menu(now, &menu, Vec::new()),
        }
    }

    fn end(&mut self, output: IvrOutput) {
        self.outputs.push_back(output);
        self.phase = Phase::Ended;
    }

    fn enter_menu(&mut self, now: Instant, name: &str, lead_in: Vec<String>) {
        if !self.config.menus.contains_key(name) {
            // Only reachable with a config that skipped validation.
            tracing::warn!(menu = name, "ivr goto to an unknown menu; hanging up");
            return self.announce(now, lead_in, Next::Hangup);
        }
        self.menu = name.to_owned();
        self.replays = 0;
        self.play_menu(now, lead_in);
    }

    /// (Re)starts the current menu: `lead_in`, then its prompts, then collection.
    fn play_menu(&mut self, now: Instant, lead_in: Vec<String>) {
        if self.menu_entries >= MAX_MENU_ENTRIES_PER_CALL {
            tracing::warn!(
                menu = %self.menu,
                entries = self.menu_entries,
                "ivr menu entry cap reached; hanging up"
            );
            return self.end(IvrOutput::Hangup);
        }
        self.menu_entries += 1;
        self.digits.clear();
        let config = Arc::clone(&self.config);
        let menu = self.current(&config);
        let mut prompts = lead_in;
        prompts.extend(menu.prompts.iter().cloned());
        if prompts.is_empty() {
            self.phase = Phase::Collecting {
                timer: Timer::FirstDigit,
                deadline: now + menu.timeout(),
            };
        } else {
            self.outputs.push_back(IvrOutput::Play(prompts));
            self.phase = Phase::Prompting;
        }
    }
}

#[cfg(test)]
mod tests;
