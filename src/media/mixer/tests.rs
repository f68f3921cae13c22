//! The mixer as a supervisor's call uses it: who hears whom in monitor, whisper and barge,
//! levels that add exactly, loud voices that clip instead of wrapping, parties that leave or
//! say nothing.
use super::*;

const N: usize = 160;

/// Caller, agent and supervisor, each putting a steady level of its own.
struct Call {
    mixer: Mixer,
    caller: PartyId,
    agent: PartyId,
    supervisor: PartyId,
}

const CALLER: i16 = 1000;
const AGENT: i16 = 200;
const SUPERVISOR: i16 = 30;

impl Call {
    fn new() -> Self {
        let mut mixer = Mixer::new(N);
        let caller = mixer.add();
        let agent = mixer.add();
        let supervisor = mixer.add();
        mixer.set_hears(caller, agent, true);
        mixer.set_hears(agent, caller, true);
        Call {
            mixer,
            caller,
            agent,
            supervisor,
        }
    }

    fn monitor(&mut self) {
        let (c, a, s) = (self.caller, self.agent, self.supervisor);
        self.mixer.set_hears(s, c, true);
        self.mixer.set_hears(s, a, true);
        self.mixer.set_hears(a, s, false);
        self.mixer.set_hears(c, s, false);
    }

    fn whisper(&mut self) {
        self.monitor();
        self.mixer.set_hears(self.agent, self.supervisor, true);
    }

    fn barge(&mut self) {
        self.whisper();
        self.mixer.set_hears(self.caller, self.supervisor, true);
    }

    /// One period, everyone talking: the level each one hears.
    fn period(&mut self) -> (i16, i16, i16) {
        self.mixer.put(self.caller, &[CALLER; N]);
        self.mixer.put(self.agent, &[AGENT; N]);
        self.mixer.put(self.supervisor, &[SUPERVISOR; N]);
        let heard = |m: &mut Mixer, id| {
            let frame = m.mix_for(id);
            assert!(frame.iter().all(|s| *s == frame[0]), "a steady level");
            frame[0]
        };
        let levels = (
            heard(&mut self.mixer, self.caller),
            heard(&mut self.mixer, self.agent),
            heard(&mut self.mixer, self.supervisor),
        );
        self.mixer.end_period();
        levels
    }
}

#[test]
fn two_parties_hear_each_other_and_not_themselves() {
    let mut call = Call::new();
    let (caller, agent, supervisor) = call.period();
    assert_eq!(caller, AGENT);
    assert_eq!(agent, CALLER);
    assert_eq!(supervisor, 0, "a new party hears nobody");
}

#[test]
fn monitor_whisper_and_barge_are_who_hears_whom() {
    let mut call = Call::new();
    call.monitor();
    assert_eq!(
        call.period(),
        (AGENT, CALLER, CALLER + AGENT),
        "monitor: the supervisor hears both, neither hears it"
    );
    call.whisper();
    assert_eq!(
        call.period(),
        (AGENT, CALLER + SUPERVISOR, CALLER + AGENT),
        "whisper: the agent hears the supervisor, the caller does not"
    );
    call.barge();
    assert_eq!(
        call.period(),
        (AGENT + SUPERVISOR, CALLER + SUPERVISOR, CALLER + AGENT),
        "barge: everybody hears everybody"
    );
    // And back to monitor: the supervisor is out of the conversation again.
    call.monitor();
    assert_eq!(call.period(), (AGENT, CALLER, CALLER + AGENT));
}

#[test]
fn a_party_never_hears_itself_even_when_told_to() {
    let mut call = Call::new();
    let caller = call.caller;
    call.mixer.set_hears(caller, caller, true);
    assert!(!call.mixer.hears(caller, caller));
    assert_eq!(call.period().0, AGENT);
}

#[test]
fn loud_voices_clip_instead_of_wrapping_around() {
    let mut mixer = Mixer::new(N);
    let listener = mixer.add();
    let a = mixer.add();
    let b = mixer.add();
    mixer.set_hears(listener, a, true);
    mixer.set_hears(listener, b, true);
    mixer.put(a, &[30_000; N]);
    mixer.put(b, &[30_000; N]);
    assert!(mixer.mix_for(listener).iter().all(|s| *s == i16::MAX));
    mixer.put(a, &[i16::MIN; N]);
    mixer.put(b, &[-5; N]);
    assert!(mixer.mix_for(listener).iter().all(|s| *s == i16::MIN));
    // Opposite voices cancel sample by sample, exactly.
    let wave: Vec<i16> = (0..N).map(|i| ((i as i16) - 80) * 400).collect();
    let inverse: Vec<i16> = wave.iter().map(|s| -s).collect();
    mixer.put(a, &wave);
    mixer.put(b, &inverse);
    assert!(mixer.mix_for(listener).iter().all(|s| *s == 0));
}

#[test]
fn a_party_that_leaves_is_heard_no_more_and_its_handle_is_not_reused() {
    let mut call = Call::new();
    call.barge();
    call.mixer.remove(call.supervisor);
    assert!(!call.mixer.contains(call.supervisor));
    assert_eq!(call.mixer.len(), 2);
    assert_eq!(call.period(), (AGENT, CALLER, 0));
    let newcomer = call.mixer.add();
    assert_ne!(newcomer, call.supervisor);
    assert!(!call.mixer.hears(call.caller, newcomer));
    // A dead handle changes nothing.
    call.mixer.set_hears(call.caller, call.supervisor, true);
    call.mixer.put(call.supervisor, &[9999; N]);
    assert_eq!(call.period().0, AGENT);
}

#[test]
fn a_party_that_says_nothing_is_silent_not_repeated() {
    let mut call = Call::new();
    call.period();
    // Only the caller puts a frame this time: the caller hears silence from the agent.
    call.mixer.put(call.caller, &[CALLER; N]);
    assert!(call.mixer.mix_for(call.caller).iter().all(|s| *s == 0));
    assert!(call.mixer.mix_for(call.agent).iter().all(|s| *s == CALLER));
}

#[test]
fn short_frames_are_padded_with_silence_and_long_ones_cut() {
    let mut mixer = Mixer::new(N);
    let listener = mixer.add();
    let speaker = mixer.add();
    mixer.set_hears(listener, speaker, true);
    mixer.put(speaker, &[700; 100]);
    let heard = mixer.mix_for(listener).to_vec();
    assert_eq!(heard.len(), N);
    assert!(heard[..100].iter().all(|s| *s == 700));
    assert!(heard[100..].iter().all(|s| *s == 0));
    mixer.put(speaker, &[700; 400]);
    assert_eq!(mixer.mix_for(listener).len(), N);
}
