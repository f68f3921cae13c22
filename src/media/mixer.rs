//! The mixer for calls with more than two parties — a supervisor monitoring, whispering to or
//! barging into a call. Each party puts one frame of 8 kHz PCM per frame period and takes the
//! sum of the parties it hears, never its own voice. Who hears whom is set per pair, so monitor
//! (the supervisor hears both, nobody hears it), whisper (the agent hears it too) and barge
//! (everybody hears everybody) are three settings of one mixer.
//!
//! Sums are taken in 32 bits and clamped to the 16-bit range: two loud voices clip rather than
//! wrap around into a burst of noise. A party that put nothing this period is silent in it, not
//! repeated.

/// A party's handle; never reused by the mixer that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(u32);

#[derive(Debug)]
struct Party {
    id: PartyId,
    frame: Vec<i16>,
    /// The parties this one hears.
    hears: Vec<PartyId>,
}

#[derive(Debug)]
pub struct Mixer {
    samples: usize,
    parties: Vec<Party>,
    next_id: u32,
    mixed: Vec<i16>,
    sum: Vec<i32>,
}

impl Mixer {
    /// A mixer of frames of `samples` samples (160 for 20 ms at 8 kHz).
    pub fn new(samples: usize) -> Self {
        Mixer {
            samples,
            parties: Vec::new(),
            next_id: 0,
            mixed: vec![0; samples],
            sum: vec![0; samples],
        }
    }

    /// A new party: it hears nobody and nobody hears it until [`Mixer::set_hears`] says so.
    pub fn add(&mut self) -> PartyId {
        let id = PartyId(self.next_id);
        self.next_id += 1;
        self.parties.push(Party {
            id,
            frame: vec![0; self.samples],
            hears: Vec::new(),
        });
        id
    }

    /// The party leaves: nobody hears it from now on, and its handle is dead.
    pub fn remove(&mut self, id: PartyId) {
        self.parties.retain(|p| p.id != id);
        for party in &mut self.parties {
            party.hears.retain(|h| *h != id);
        }
    }

    pub fn contains(&self, id: PartyId) -> bool {
        self.parties.iter().any(|p| p.id == id)
    }

    pub fn len(&self) -> usize {
        self.parties.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parties.is_empty()
    }

    /// Whether `listener` hears `speaker`. A party never hears itself; unknown parties are
    /// ignored.
    pub fn set_hears(&mut self, listener: PartyId, speaker: PartyId, on: bool) {
        if listener == speaker || !self.contains(speaker) {
            return;
        }
        let Some(party) = self.parties.iter_mut().find(|p| p.id == listener) else {
            return;
        };
        let known = party.hears.contains(&speaker);
        if on && !known {
            party.hears.push(speaker);
        } else if !on && known {
            party.hears.retain(|h| *h != speaker);
        }
    }

    pub fn hears(&self, listener: PartyId, speaker: PartyId) -> bool {
        self.parties
            .iter()
            .any(|p| p.id == listener && p.hears.contains(&speaker))
    }

    /// What `id` said this period; a short frame is padded with silence, a long one cut.
    pub fn put(&mut self, id: PartyId, frame: &[i16]) {
        let Some(party) = self.parties.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let n = frame.len().min(self.samples);
        party.frame[..n].copy_from_slice(&frame[..n]);
        party.frame[n..].fill(0);
    }

    /// What `listener` hears this period: the sum of the parties it hears, clamped.
    pub fn mix_for(&mut self, listener: PartyId) -> &[i16] {
        self.sum.fill(0);
        if let Some(party) = self.parties.iter().find(|p| p.id == listener) {
            for speaker in self.parties.iter().filter(|s| party.hears.contains(&s.id)) {
                for (acc, s) in self.sum.iter_mut().zip(&speaker.frame) {
                    *acc += i32::from(*s);
                }
            }
        }
        for (out, acc) in self.mixed.iter_mut().zip(&self.sum) {
            // The clamp makes the narrowing exact.
            *out = (*acc).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
        &self.mixed
    }

    /// The period is over: every party is silent until it puts its next frame.
    pub fn end_period(&mut self) {
        for party in &mut self.parties {
            party.frame.fill(0);
        }
    }
}

#[cfg(test)]
mod tests;
