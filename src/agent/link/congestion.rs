//! Congestion control for a link that carries live audio.
//!
//! quinn's controllers are built for bulk transfers. On a long, jittery path (LTE, busy Wi-Fi:
//! 150 ms each way, ±50 ms) datagrams arrive out of order; reordering looks like loss, Cubic
//! halves its window again and again down to two packets, and at a 300 ms round trip that is
//! less than the audio already in flight. Sends then wait, and frames leave late, in bursts.
//!
//! Audio sets its own rate (at most 64 kbit/s of Opus plus headers, 50 datagrams a second), so
//! the window never needs to be more than that rate times the round trip. [`AudioFloor`] keeps
//! Cubic's window but never lets it fall below [`WINDOW_FLOOR`]: enough for the audio at any
//! round trip up to about 2 s, too little for a burst that could congest anyone's link. Late
//! audio is worth nothing, so holding it back for the window only makes it later: on real
//! congestion it is the sender that must back off, by lowering the encoder's bitrate and
//! redundancy from the receiver's reports (call quality's sender adaptation, not built yet;
//! today a call sends a steady 40 kbit/s). Above the floor Cubic governs as before.
use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics, CubicConfig};
use quinn_proto::RttEstimator;

/// 64 kbit/s of Opus at 50 datagrams a second is ≈ 210 bytes a datagram with QUIC, UDP and IP
/// headers: 10.5 KB a second. 24 KiB carries that at a round trip of over 2 s, with room for
/// control messages and acknowledgements.
pub const WINDOW_FLOOR: u64 = 24 * 1024;

/// Builds [`AudioFloor`] controllers for new connections.
#[derive(Debug, Default)]
pub struct AudioFloorConfig {
    cubic: Arc<CubicConfig>,
}

impl ControllerFactory for AudioFloorConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(AudioFloor {
            inner: self.cubic.clone().build(now, current_mtu),
        })
    }
}

/// Cubic, with a window never below [`WINDOW_FLOOR`].
pub struct AudioFloor {
    inner: Box<dyn Controller>,
}

impl Controller for AudioFloor {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.inner.on_ack(now, sent, bytes, app_limited, rtt);
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.inner
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        self.inner.window().max(WINDOW_FLOOR)
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut metrics = self.inner.metrics();
        metrics.congestion_window = self.window();
        metrics
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(AudioFloor {
            inner: self.inner.clone_box(),
        })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window().max(WINDOW_FLOOR)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn controller() -> Box<dyn Controller> {
        Arc::new(AudioFloorConfig::default()).build(Instant::now(), 1200)
    }

    #[test]
    fn losses_never_take_the_window_below_what_audio_needs() {
        let mut ours = controller();
        let mut cubic = Arc::new(CubicConfig::default()).build(Instant::now(), 1200);
        let start = Instant::now();
        // Reordering on a jittery path reads as loss after loss, persistent congestion included.
        for i in 0..50u32 {
            let now = start + Duration::from_millis(20 * u64::from(i));
            for c in [&mut ours, &mut cubic] {
                c.on_congestion_event(now, now, i % 10 == 9, 1200);
            }
        }
        assert!(cubic.window() < 4 * 1024, "cubic alone: {}", cubic.window());
        assert_eq!(ours.window(), WINDOW_FLOOR);
        let highest_audio_rate = 64_000 / 8;
        assert!(WINDOW_FLOOR >= 2 * highest_audio_rate, "2 s of audio fit");
    }
}
