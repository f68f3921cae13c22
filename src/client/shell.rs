//! The tokio side of the agent: one task per agent owns its QUIC endpoint, connection, media
//! and recording, and moves bytes and time between them and the [`AgentCore`]. No locks: the
//! 20 ms media clock, the control stream and the datagrams are all served by one `select!`, so
//! the media state never crosses a thread.
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::agent::link;
use crate::agent::protocol::{self, from_agent::Stats, AgentMessage, FrameDecoder, GatewayMessage};

use super::args::{AgentSpec, AudioSource, Options};
use super::core::{Action, AgentCore, Command, CoreConfig, Exit, Loss};
use super::events::{Event, EventSink, MediaCounters};
use super::media::{CallMedia, Received};
use super::recorder::WavRecorder;
use super::sound::{SoundCall, SoundError};

pub use super::core::StopReason;

mod quic;

use quic::{
    attempt_done, connect, connection_loss, read_control, read_datagram, read_loss, write_loss,
    Attempt, Live,
};

/// One connection attempt (handshake and opening the control stream) may take this long; after
/// that the next attempt gets its chance.
pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// After logging out, how long to wait for the gateway to close the connection (which proves
/// it read everything), and then for our close to go out.
const LOGOUT_WAIT: Duration = Duration::from_secs(1);
/// How long to look for control data left behind by a closed connection.
const DRAIN_WAIT: Duration = Duration::from_millis(20);
/// The media clock.
const FRAME: Duration = Duration::from_millis(20);

/// Runs every agent of `options` until each has exited; returns the worst exit code (2 beats 1
/// beats 0). `commands` reaches every agent (interactive mode); `stop` resolves on a signal.
/// `--duration-secs` is enforced here.
pub async fn run(
    options: Options,
    sink: EventSink,
    commands: broadcast::Sender<Command>,
    stop: impl Future<Output = StopReason> + Send + 'static,
) -> i32 {
    let gateway = match resolve(&options.gateway).await {
        Ok(address) => address,
        Err(error) => {
            eprintln!("trunkgate-agent: {error}");
            return 1;
        }
    };
    let mut recorders = Vec::with_capacity(options.agents.len());
    for spec in &options.agents {
        match spec.record.as_deref().map(WavRecorder::create).transpose() {
            Ok(recorder) => recorders.push(recorder),
            Err(error) => {
                eprintln!("trunkgate-agent: {error}");
                return 1;
            }
        }
    }
    let (stop_tx, stop_rx) = watch::channel(None);
    let duration = options.duration;
    let stopper = tokio::spawn(async move {
        let reason = match duration {
            Some(duration) => tokio::select! {
                reason = stop => reason,
                _ = tokio::time::sleep(duration) => StopReason::Duration,
            },
            None => stop.await,
        };
        let _ = stop_tx.send(Some(reason));
    });
    let options = Arc::new(options);
    let mut agents = tokio::task::JoinSet::new();
    for (spec, recorder) in options.agents.iter().cloned().zip(recorders) {
        let task = AgentTask::new(
            spec,
            options.clone(),
            gateway,
            sink.clone(),
            recorder,
            stop_rx.clone(),
            commands.subscribe(),
        );
        agents.spawn(task.run());
    }
    let mut worst = 0;
    let mut totals = MediaCounters::default();
    let mut calls = 0;
    while let Some(joined) = agents.join_next().await {
        let (code, agent_calls, media) = joined.unwrap_or_else(|error| {
            eprintln!("trunkgate-agent: agent task failed: {error}");
            (1, 0, MediaCounters::default())
        });
        worst = worst.max(code);
        calls += agent_calls;
        totals += media;
    }
    stopper.abort();
    if options.agents.len() > 1 {
        let prefix = options.agents[0]
            .id
            .as_str()
            .rsplit_once('-')
            .map_or("swarm", |(prefix, _)| prefix);
        sink.emit(
            prefix,
            &Event::SwarmSummary {
                agents: options.agents.len(),
                calls,
                media: totals,
            },
        );
    }
    worst
}

/// The first address the name resolves to.
async fn resolve(gateway: &str) -> Result<SocketAddr, String> {
    tokio::net::lookup_host(gateway)
        .await
        .map_err(|e| format!("--gateway {gateway}: {e}"))?
        .next()
        .ok_or_else(|| format!("--gateway {gateway}: the name has no address"))
}

/// Where the agent's socket binds: loopback for a loopback gateway (nothing leaves the machine),
/// else any address of the gateway's family.
fn bind_address(gateway: SocketAddr) -> SocketAddr {
    let ip = match (gateway.ip().is_loopback(), gateway.is_ipv4()) {
        (true, true) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (true, false) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        (false, true) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (false, false) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// What woke the agent's loop.
enum Wake {
    Stop(StopReason),
    Command(Command),
    Timer,
    ConnectDue,
    Attempt(Result<Live, String>),
    Control(Result<Option<usize>, quinn::ReadError>),
    Datagram(Result<Bytes, quinn::ConnectionError>),
    Tick,
    SoundOpened(Result<Result<SoundCall, SoundError>, JoinError>),
}

struct AgentTask {
    spec: AgentSpec,
    options: Arc<Options>,
    gateway: SocketAddr,
    sink: EventSink,
    recorder: Option<WavRecorder>,
    stop: watch::Receiver<Option<StopReason>>,
    commands: broadcast::Receiver<Command>,
    endpoint: Option<quinn::Endpoint>,
    live: Option<Live>,
    attempt: Option<Attempt>,
    connect_at: Option<Instant>,
    decoder: FrameDecoder<GatewayMessage>,
    read_buffer: Vec<u8>,
    media: Option<CallMedia>,
    /// With `--sound`: the device, open while a call's media runs.
    sound: Option<SoundCall>,
    sound_opening: Option<JoinHandle<Result<SoundCall, SoundError>>>,
    ticker: Option<Interval>,
    totals: MediaCounters,
    exit: Option<Exit>,
}

impl AgentTask {
    fn new(
        spec: AgentSpec,
        options: Arc<Options>,
        gateway: SocketAddr,
        sink: EventSink,
        recorder: Option<WavRecorder>,
        stop: watch::Receiver<Option<StopReason>>,
        commands: broadcast::Receiver<Command>,
    ) -> Self {
        Self {
            spec,
            options,
            gateway,
            sink,
            recorder,
            stop,
            commands,
            endpoint: None,
            live: None,
            attempt: None,
            connect_at: None,
            decoder: FrameDecoder::new(),
            read_buffer: vec![0; 16 * 1024],
            media: None,
            sound: None,
            sound_opening: None,
            ticker: None,
            totals: MediaCounters::default(),
            exit: None,
        }
    }

    /// Returns the exit code, the calls that ended and the media counters.
    async fn run(mut self) -> (i32, u32, MediaCounters) {
        let mut core = AgentCore::new(
            Instant::now().into_std(),
            CoreConfig {
                agent: self.spec.id.clone(),
                credential: self.options.credential.clone(),
                skills: self.options.skills.clone(),
                behaviour: self.options.behaviour.clone(),
            },
        );
        match link::client_endpoint(&self.options.trust, bind_address(self.gateway)) {
            Ok(endpoint) => self.endpoint = Some(endpoint),
            Err(error) => {
                self.emit(&Event::ConnectionLost {
                    error: error.to_string(),
                });
                self.exit = Some(Exit::ConnectFailed);
            }
        }
        while self.exit.is_none() {
            self.carry_out(&mut core).await;
            if self.exit.is_some() {
                break;
            }
            let wake = self.wait(core.poll_timeout()).await;
            self.handle(&mut core, wake).await;
        }
        self.finish(&core).await
    }

    async fn wait(&mut self, timeout: Option<std::time::Instant>) -> Wake {
        let (recv, connection) = match &mut self.live {
            Some(live) => (live.recv.as_mut(), Some(&live.connection)),
            None => (None, None),
        };
        let connect_due = self.connect_at.filter(|_| self.attempt.is_none());
        // Control before datagrams: when a close races the gateway's last message, the message
        // is read first. The media clock before datagrams, so a flood cannot stall the audio.
        tokio::select! {
            biased;
            reason = stop_requested(&mut self.stop) => Wake::Stop(reason),
            command = next_command(&mut self.commands) => Wake::Command(command),
            _ = sleep_until(timeout.map(Instant::from_std)) => Wake::Timer,
            _ = sleep_until(connect_due) => Wake::ConnectDue,
            result = attempt_done(self.attempt.as_mut()) => Wake::Attempt(result),
            read = read_control(recv, &mut self.read_buffer) => Wake::Control(read),
            opened = sound_opened(self.sound_opening.as_mut()) => Wake::SoundOpened(opened),
            _ = tick(self.ticker.as_mut()) => Wake::Tick,
            datagram = read_datagram(connection) => Wake::Datagram(datagram),
        }
    }

    async fn handle(&mut self, core: &mut AgentCore, wake: Wake) {
        let now = Instant::now().into_std();
        match wake {
            Wake::Stop(reason) => core.stop(reason),
            Wake::Command(command) => core.handle_command(command),
            Wake::Timer => core.handle_timeout(now),
            Wake::ConnectDue => {
                self.connect_at = None;
                self.emit(&Event::Connecting {
                    gateway: self.gateway,
                    resume: core.has_session(),
                });
                if let Some(endpoint) = &self.endpoint {
                    let attempt = connect(
                        endpoint.clone(),
                        self.gateway,
                        self.options.server_name.clone(),
                    );
                    self.attempt = Some(Box::pin(attempt));
                }
            }
            Wake::Attempt(Ok(live)) => {
                self.attempt = None;
                let local = self.local_address();
                self.emit(&Event::Connected {
                    local,
                    remote: live.connection.remote_address(),
                });
                self.live = Some(live);
                self.decoder = FrameDecoder::new();
                let login = core.connected(now);
                self.send(core, &login).await;
            }
            Wake::Attempt(Err(error)) => {
                self.attempt = None;
                core.connection_lost(now, Loss::Lost { error });
            }
            Wake::Control(Ok(Some(read))) => {
                // `read` is at most the buffer's length: quinn fills the slice it was given.
                let bytes = &self.read_buffer[..read.min(self.read_buffer.len())];
                self.decoder.push(bytes);
                while let Some(decoded) = self.decoder.pop() {
                    match decoded {
                        Ok(message) => core.handle_message(now, message),
                        Err(error) => core.handle_decode_error(error),
                    }
                }
            }
            Wake::Control(Ok(None)) => {
                // The gateway finished its side; it closes the connection next, which the
                // datagram read reports.
                if let Err(error) = self.decoder.finish() {
                    core.handle_decode_error(error);
                }
                if let Some(live) = &mut self.live {
                    live.recv = None;
                }
            }
            Wake::Control(Err(error)) => {
                self.drop_connection();
                core.connection_lost(now, read_loss(error));
            }
            Wake::Datagram(Ok(datagram)) => {
                if let Some(media) = &mut self.media {
                    match media.receive(now, &datagram) {
                        Received::Invalid { reason } => {
                            tracing::debug!(agent = %self.spec.id, %reason, "media datagram dropped");
                        }
                        Received::Reflect => {
                            let sent = self.live.as_ref().is_some_and(|live| {
                                live.connection.send_datagram(datagram).is_ok()
                            });
                            if sent {
                                media.count_sent();
                            }
                        }
                        Received::Accepted | Received::OtherFlow { .. } => {}
                    }
                }
            }
            Wake::Datagram(Err(error)) => {
                self.drain_control(core, now).await;
                self.drop_connection();
                core.connection_lost(now, connection_loss(error));
            }
            Wake::Tick => self.media_tick(now),
            Wake::SoundOpened(opened) => self.sound_opened(opened),
        }
    }

    /// Reads what the control stream still holds after the connection closed: a gateway that
    /// closes right after its last message (a `login_refused`, an `error`) may have had it
    /// delivered in the same flight as the close.
    async fn drain_control(&mut self, core: &mut AgentCore, now: std::time::Instant) {
        let Some(recv) = self.live.as_mut().and_then(|live| live.recv.as_mut()) else {
            return;
        };
        while let Ok(Ok(Some(read))) =
            tokio::time::timeout(DRAIN_WAIT, recv.read(&mut self.read_buffer)).await
        {
            self.decoder
                .push(&self.read_buffer[..read.min(self.read_buffer.len())]);
        }
        while let Some(decoded) = self.decoder.pop() {
            match decoded {
                Ok(message) => core.handle_message(now, message),
                Err(error) => core.handle_decode_error(error),
            }
        }
    }

    /// Carries out the core's actions in order, until it has none left.
    async fn carry_out(&mut self, core: &mut AgentCore) {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Send(message) => self.send(core, &message).await,
                Action::Emit(event) => self.emit(&event),
                Action::StartMedia { call, flow } => {
                    let Some(params) = core.media_params().copied() else {
                        continue;
                    };
                    self.end_media();
                    match CallMedia::new(
                        call,
                        flow,
                        &params,
                        self.options.audio.clone(),
                        &mut rand::thread_rng(),
                    ) {
                        Ok(media) => {
                            self.media = Some(media);
                            self.open_sound();
                            let mut ticker = tokio::time::interval(FRAME);
                            // A stalled task catches up on the frames it missed, as a sound card
                            // would: the RTP clock stays in step with real time.
                            ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
                            self.ticker = Some(ticker);
                        }
                        Err(error) => self.emit(&Event::MediaError {
                            error: error.to_string(),
                        }),
                    }
                }
                Action::MoveMedia { flow } => {
                    if let Some(Err(error)) = self.media.as_mut().map(|m| m.move_to_flow(flow)) {
                        self.emit(&Event::MediaError {
                            error: error.to_string(),
                        });
                    }
                }
                Action::HoldMedia { on } => {
                    if let Some(media) = &mut self.media {
                        media.set_held(on);
                    }
                }
                Action::EndMedia { call, reason } => {
                    let media = self.end_media();
                    self.emit(&Event::CallEnded {
                        call: call.0,
                        reason,
                        media,
                    });
                }
                Action::SendStats { call } => {
                    if let Some(stats) = self.stats(call) {
                        self.send(core, &AgentMessage::Stats(stats)).await;
                    }
                }
                Action::Rebind => self.rebind(),
                Action::Connect { at } => {
                    if let Some(live) = self.live.take() {
                        live.connection
                            .close(protocol::close_code::PROTOCOL_ERROR.into(), b"reconnecting");
                    }
                    self.attempt = None;
                    self.connect_at = Some(Instant::from_std(at));
                }
                Action::Exit(exit) => {
                    self.exit = Some(exit);
                    return;
                }
            }
        }
    }

    /// Encodes and writes one message; a failed write is a lost connection.
    async fn send(&mut self, core: &mut AgentCore, message: &AgentMessage) {
        let Some(live) = &mut self.live else {
            return;
        };
        let mut frame = Vec::with_capacity(256);
        if let Err(error) = protocol::encode(message, &mut frame) {
            self.emit(&Event::CommandError {
                error: error.to_string(),
            });
            return;
        }
        if let Err(error) = live.send.write_all(&frame).await {
            self.drop_connection();
            core.connection_lost(Instant::now().into_std(), write_loss(error));
        }
    }

    fn media_tick(&mut self, now: std::time::Instant) {
        let Some(media) = &mut self.media else {
            return;
        };
        if let Some(sound) = &mut self.sound {
            sound.read_microphone(media.microphone_frame());
        }
        let tick = match media.tick(now) {
            Ok(tick) => tick,
            Err(error) => {
                self.emit(&Event::MediaError {
                    error: error.to_string(),
                });
                return;
            }
        };
        let mut sound_error = None;
        if let Some(sound) = &mut self.sound {
            sound.play(tick.played);
            sound_error = sound.take_error();
        }
        let mut record_error = None;
        if let Some(recorder) = &mut self.recorder {
            if let Err(error) = recorder.write(tick.played) {
                record_error = Some(error);
            }
        }
        let sent = match (tick.datagram, &self.live) {
            (Some(datagram), Some(live)) => live
                .connection
                .send_datagram(Bytes::copy_from_slice(datagram))
                .is_ok(),
            _ => false,
        };
        if let (Some(feedback), Some(live)) = (tick.feedback, &self.live) {
            // Lost feedback is sent again within a second.
            let _ = live
                .connection
                .send_datagram(Bytes::copy_from_slice(feedback));
        }
        if sent {
            media.count_sent();
        }
        let link = media
            .poll_link(now)
            .map(|report| (media.call().0.clone(), report));
        if let Some((call, report)) = link {
            self.emit(&Event::Link { call, report });
        }
        if let Some(error) = sound_error {
            self.emit(&Event::MediaError {
                error: format!("sound device: {error}"),
            });
        }
        if let Some(error) = record_error {
            // A full disk should not end the call, but the recording is over.
            self.recorder = None;
            self.emit(&Event::MediaError {
                error: error.to_string(),
            });
        }
    }

    fn stats(&mut self, call: protocol::CallId) -> Option<Stats> {
        let (media, live) = (self.media.as_mut()?, self.live.as_ref()?);
        let (loss_pct, jitter_ms, packets_received, packets_lost) = media.stats_window();
        Some(Stats {
            call,
            rtt_ms: u32::try_from(live.connection.rtt().as_millis()).unwrap_or(u32::MAX),
            loss_pct,
            jitter_ms,
            packets_received,
            packets_lost,
        })
    }

    /// Moves the endpoint to a fresh UDP socket on the same address, as a network change would;
    /// QUIC migrates the connection to it.
    fn rebind(&mut self) {
        let Some(endpoint) = &self.endpoint else {
            return;
        };
        let local_ip = endpoint
            .local_addr()
            .map(|a| a.ip())
            .unwrap_or(bind_address(self.gateway).ip());
        let result = std::net::UdpSocket::bind(SocketAddr::new(local_ip, 0))
            .and_then(|socket| endpoint.rebind(socket));
        match result {
            Ok(()) => {
                let local = self.local_address();
                self.emit(&Event::Rebound { local });
            }
            Err(error) => self.emit(&Event::RebindFailed {
                error: error.to_string(),
            }),
        }
    }

    /// With `--sound`, opens the device for the call that just started. Opening takes a while
    /// (150 ms for ALSA on JACK), too long to stall the media clock and the datagrams, so it runs
    /// on a blocking thread; until it is done the call sends silence. A device that cannot be
    /// opened does not end the call: it goes on with silence, and the error is reported.
    fn open_sound(&mut self) {
        let AudioSource::Sound(devices) = &self.options.audio else {
            return;
        };
        let devices = devices.clone();
        self.sound_opening = Some(tokio::task::spawn_blocking(move || {
            SoundCall::open(&devices)
        }));
    }

    /// The device opened (or failed to) for the call whose media runs now.
    fn sound_opened(&mut self, opened: Result<Result<SoundCall, SoundError>, JoinError>) {
        self.sound_opening = None;
        let error = match opened {
            Ok(Ok(sound)) => {
                self.emit(&Event::SoundOpened {
                    input: sound.input().clone(),
                    output: sound.output().clone(),
                });
                self.sound = Some(sound);
                return;
            }
            Ok(Err(error)) => error.to_string(),
            Err(error) => format!("sound device: {error}"),
        };
        self.emit(&Event::MediaError { error });
    }

    /// Stops the call's media; returns its counters (added to the run's totals).
    fn end_media(&mut self) -> MediaCounters {
        // A device still opening is closed, unused, by the blocking thread that opened it.
        self.sound_opening = None;
        // The device closes (and flushes what it played) as the closure drops it, before the
        // event says so.
        if let Some(counters) = self.sound.take().map(|sound| sound.counters()) {
            self.emit(&Event::SoundClosed { counters });
        }
        self.ticker = None;
        let counters = self
            .media
            .take()
            .map(|media| media.counters())
            .unwrap_or_default();
        self.totals += counters;
        counters
    }

    fn drop_connection(&mut self) {
        self.live = None;
    }

    fn local_address(&self) -> SocketAddr {
        self.endpoint
            .as_ref()
            .and_then(|e| e.local_addr().ok())
            .unwrap_or(bind_address(self.gateway))
    }

    fn emit(&self, event: &Event) {
        self.sink.emit(self.spec.id.as_str(), event);
    }

    /// Logs out or closes, finalises the recording, prints the summary and the exit line.
    async fn finish(mut self, core: &AgentCore) -> (i32, u32, MediaCounters) {
        let exit = self.exit.clone().unwrap_or(Exit::ConnectFailed);
        if let Some(mut live) = self.live.take() {
            // Logout is a FIN on the control stream (retransmitted if lost, unlike a
            // CONNECTION_CLOSE). A close discards unsent stream data, so whatever the agent said
            // last (a hang-up, an `error`) must be acknowledged first.
            let _ = live.send.finish();
            if exit.logs_out() {
                // The gateway closes once it has read the FIN, proving it got everything.
                let _ = tokio::time::timeout(LOGOUT_WAIT, live.connection.closed()).await;
            } else {
                let _ = tokio::time::timeout(LOGOUT_WAIT, live.send.stopped()).await;
            }
            live.connection
                .close(exit.close_code().into(), exit.name().as_bytes());
        }
        if let Some(endpoint) = &self.endpoint {
            let _ = tokio::time::timeout(LOGOUT_WAIT, endpoint.wait_idle()).await;
        }
        self.end_media();
        if let Some(recorder) = self.recorder.take() {
            if let Err(error) = recorder.finish() {
                self.emit(&Event::MediaError {
                    error: error.to_string(),
                });
            }
        }
        self.emit(&Event::Summary {
            calls: core.calls_ended(),
            media: self.totals,
        });
        self.emit(&Event::Exit {
            code: exit.code(),
            reason: exit.name().to_string(),
        });
        (exit.code(), core.calls_ended(), self.totals)
    }
}

async fn stop_requested(stop: &mut watch::Receiver<Option<StopReason>>) -> StopReason {
    loop {
        if let Some(reason) = *stop.borrow_and_update() {
            return reason;
        }
        if stop.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

async fn next_command(commands: &mut broadcast::Receiver<Command>) -> Command {
    loop {
        match commands.recv().await {
            Ok(command) => return command,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn sound_opened(
    opening: Option<&mut JoinHandle<Result<SoundCall, SoundError>>>,
) -> Result<Result<SoundCall, SoundError>, JoinError> {
    match opening {
        Some(opening) => opening.await,
        None => std::future::pending().await,
    }
}

async fn tick(ticker: Option<&mut Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}
