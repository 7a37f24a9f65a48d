//! SSE fan-out load client: opens many concurrent `GET /health/status/stream`
//! connections to a running service and measures how long one pushed report
//! takes to reach all of them.
//!
//! This is a benchmark, not a test; `scripts/bench-sse` starts the demo
//! service, runs this against it and samples the server's memory at the
//! marker lines below.
//!
//! ```sh
//! cargo build --release --example quickstart --example sse_load
//! ulimit -n 65536
//! PORT=8097 POLL_INTERVAL_SECS=5 target/release/examples/quickstart &
//! target/release/examples/sse_load --addr 127.0.0.1:8097 --clients 10000 --events 1
//! ./scripts/bench-sse                                    # the whole run, with server memory
//! ```
//!
//! Options (each also read from the environment variable in brackets):
//!
//! | option | default | meaning |
//! | --- | --- | --- |
//! | `--addr` (`SSE_ADDR`) | `127.0.0.1:8097` | the service |
//! | `--clients` (`SSE_CLIENTS`) | 10000 | concurrent stream connections |
//! | `--events` (`SSE_EVENTS`) | 1 | poll rounds to measure after all clients are connected |
//! | `--batch` (`SSE_BATCH`) | 100 | connections opened at once; the next batch waits until this one has its first event (keep it under the server's accept backlog, 128 for a tokio listener) |
//! | `--timeout` (`SSE_TIMEOUT_SECS`) | 120 | give up (and report what arrived) after this many seconds |
//! | `--threads` (`SSE_THREADS`) | 1 | tokio worker threads of the client (1 = current-thread runtime) |
//! | `--hold-ms` (`SSE_HOLD_MS`) | 1000 | pause after each marker line so a driver can sample memory |
//!
//! Every connection is one task with a 2 KiB read buffer and a reused event
//! buffer; it decodes `Transfer-Encoding: chunked` and splits the body into
//! SSE blocks at `\n\n`. The first event (the current report) only counts the
//! client as connected. Once every client has it, the program prints
//! `SSE_LOAD_CONNECTED`, then records each later event whose `checked_at` is
//! after that moment: the wall-clock time the read that completed it returned,
//! and its `checked_at`.
//!
//! The server publishes a report each time one probe of a poll round finishes,
//! so one round is several reports (milliseconds apart when idle, more under
//! load), and a client may get one to all of them (a slow one skips to the
//! newest). A *round* is a cluster of `checked_at` values with no gap over
//! 500 ms. For each round it prints how many events each client got and,
//! over the clients:
//!
//! - the **next poll event**: the first event of the round each client got,
//!   latency = receive time − that event's `checked_at`, min / median / p99 /
//!   max, and the receive spread (last − first client);
//! - the **newest report of the round** (the last one published): how many
//!   clients got it and the same latency figures — this is the time for one
//!   report to reach every client;
//! - the whole round: from its first `checked_at` until the last client had
//!   the newest report.
//!
//! It also prints a `RESULT key=value ...` line per round. Then it prints
//! `SSE_LOAD_MEASURED`, closes every connection and exits; it exits non-zero
//! if a client failed, a client missed a report, or the timeout passed first.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Two `checked_at` values further apart than this belong to different poll rounds.
const ROUND_GAP_US: i64 = 500_000;
/// Per-connection read buffer.
const READ_BUF: usize = 2048;
/// At most this many events are kept per client and measured round.
const EVENTS_PER_ROUND: usize = 8;
const CHECKED_AT: &[u8] = b"\"checked_at\":\"";

#[derive(Debug, Clone)]
struct Config {
    addr: SocketAddr,
    clients: usize,
    events: usize,
    batch: usize,
    timeout: Duration,
    threads: usize,
    hold: Duration,
}

impl Config {
    fn parse() -> anyhow::Result<Self> {
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        for (key, env) in [
            ("addr", "SSE_ADDR"),
            ("clients", "SSE_CLIENTS"),
            ("events", "SSE_EVENTS"),
            ("batch", "SSE_BATCH"),
            ("timeout", "SSE_TIMEOUT_SECS"),
            ("threads", "SSE_THREADS"),
            ("hold-ms", "SSE_HOLD_MS"),
        ] {
            if let Ok(value) = std::env::var(env) {
                values.insert(key, value);
            }
        }
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                println!(
                    "usage: sse_load [--addr HOST:PORT] [--clients N] [--events N] [--batch N] \
                     [--timeout SECS] [--threads N] [--hold-ms MS]"
                );
                std::process::exit(0);
            }
            let (name, inline) = match arg.strip_prefix("--") {
                Some(rest) => match rest.split_once('=') {
                    Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                    None => (rest.to_owned(), None),
                },
                None => bail!("unexpected argument {arg:?} (see --help)"),
            };
            let key = match name.as_str() {
                "addr" => "addr",
                "clients" => "clients",
                "events" => "events",
                "batch" => "batch",
                "timeout" => "timeout",
                "threads" => "threads",
                "hold-ms" => "hold-ms",
                _ => bail!("unknown option --{name} (see --help)"),
            };
            let value = match inline {
                Some(value) => value,
                None => args.next().with_context(|| format!("--{name} needs a value"))?,
            };
            values.insert(key, value);
        }
        let number = |key: &str, default: u64| -> anyhow::Result<u64> {
            values.get(key).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .with_context(|| format!("--{key} {v:?} is not a number"))
            })
        };
        let addr = values.get("addr").map_or("127.0.0.1:8097", String::as_str);
        let config = Self {
            addr: addr
                .parse()
                .with_context(|| format!("--addr {addr:?} is not HOST:PORT"))?,
            clients: usize::try_from(number("clients", 10_000)?)?,
            events: usize::try_from(number("events", 1)?)?,
            batch: usize::try_from(number("batch", 100)?)?,
            timeout: Duration::from_secs(number("timeout", 120)?),
            threads: usize::try_from(number("threads", 1)?)?,
            hold: Duration::from_millis(number("hold-ms", 1000)?),
        };
        if config.clients == 0 || config.events == 0 || config.batch == 0 || config.threads == 0 {
            bail!("--clients, --events, --batch and --threads must be at least 1");
        }
        Ok(config)
    }
}

/// Counters the connection tasks update and `main` watches.
#[derive(Debug, Default)]
struct Shared {
    /// Clients that got their first event.
    connected: AtomicUsize,
    /// Clients that failed or were closed by the server.
    failed: AtomicUsize,
    /// Clients that failed after their first event.
    lost: AtomicUsize,
    /// Clients that recorded events of every measured round.
    done: AtomicUsize,
    /// Events recorded so far, by every client.
    recorded: AtomicUsize,
    /// Wall-clock microseconds after which events are recorded; 0 = not yet.
    armed_at: AtomicI64,
}

/// One recorded event: when the client read it, and the report's `checked_at`.
#[derive(Debug, Clone, Copy)]
struct Received {
    at_us: i64,
    checked_us: i64,
}

/// What a connection task hands back.
#[derive(Debug, Default)]
struct Outcome {
    connected: bool,
    events: Vec<Received>,
    error: Option<String>,
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the decoder is in the response.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Before the end of the response head.
    Head,
    /// Reading a chunk-size line; `ext` once past the hex digits.
    Size { size: usize, ext: bool },
    /// Inside a chunk's data.
    Data(usize),
    /// The CRLF after a chunk's data; how many bytes of it are left.
    DataEnd(u8),
    /// No chunked framing: the body runs to the end of the connection.
    Raw,
    /// The last chunk was read.
    End,
}

/// Decodes the HTTP/1.1 response and collects complete SSE blocks.
#[derive(Debug)]
struct Decoder {
    framing: Framing,
    /// The response head while `Head`, then body bytes not yet ending a block.
    pending: Vec<u8>,
}

impl Decoder {
    fn new() -> Self {
        Self {
            framing: Framing::Head,
            pending: Vec::with_capacity(1024),
        }
    }

    /// Feeds bytes read from the socket, calling `on_block` with each
    /// complete SSE block (the text before a blank line).
    fn feed(&mut self, mut input: &[u8], on_block: &mut impl FnMut(&[u8])) -> anyhow::Result<()> {
        while !input.is_empty() {
            match self.framing {
                Framing::Head => {
                    let scan_from = self.pending.len().saturating_sub(3);
                    self.pending.extend_from_slice(input);
                    let Some(end) = find(&self.pending[scan_from..], b"\r\n\r\n").map(|i| i + scan_from + 4) else {
                        if self.pending.len() > 16 * 1024 {
                            bail!("response head longer than 16 KiB");
                        }
                        return Ok(());
                    };
                    let head = &self.pending[..end];
                    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
                    if !status_line.starts_with(b"HTTP/1.1 200") {
                        bail!(
                            "unexpected status line {:?}",
                            String::from_utf8_lossy(status_line).trim_end()
                        );
                    }
                    let chunked = head
                        .split(|&b| b == b'\n')
                        .map(<[u8]>::to_ascii_lowercase)
                        .any(|line| line.starts_with(b"transfer-encoding:") && find(&line, b"chunked").is_some());
                    self.framing = if chunked {
                        Framing::Size { size: 0, ext: false }
                    } else {
                        Framing::Raw
                    };
                    // The rest of the buffer (all of `input` went into it) is body.
                    let rest = self.pending.split_off(end);
                    self.pending.clear();
                    return self.feed(&rest, on_block);
                }
                Framing::Size { size, ext } => {
                    let byte = input[0];
                    input = &input[1..];
                    self.framing = match byte {
                        b'\n' if size == 0 => Framing::End,
                        b'\n' => Framing::Data(size),
                        b'\r' | b';' | b' ' | b'\t' => Framing::Size { size, ext: true },
                        _ if ext => Framing::Size { size, ext },
                        _ => {
                            let digit = (byte as char)
                                .to_digit(16)
                                .with_context(|| format!("bad chunk size byte {byte:#04x}"))?;
                            let size = size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(digit as usize))
                                .context("chunk size overflow")?;
                            Framing::Size { size, ext }
                        }
                    };
                }
                Framing::Data(left) => {
                    let take = left.min(input.len());
                    self.body(&input[..take], on_block);
                    input = &input[take..];
                    self.framing = if take == left {
                        Framing::DataEnd(2)
                    } else {
                        Framing::Data(left - take)
                    };
                }
                Framing::DataEnd(left) => {
                    input = &input[1..];
                    self.framing = if left <= 1 {
                        Framing::Size { size: 0, ext: false }
                    } else {
                        Framing::DataEnd(left - 1)
                    };
                }
                Framing::Raw => {
                    self.body(input, on_block);
                    input = &[];
                }
                Framing::End => return Ok(()),
            }
        }
        Ok(())
    }

    /// Appends body bytes and hands over every block they complete.
    fn body(&mut self, bytes: &[u8], on_block: &mut impl FnMut(&[u8])) {
        let scan_from = self.pending.len().saturating_sub(1);
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        let mut from = scan_from;
        while let Some(i) = find(&self.pending[from..], b"\n\n") {
            let end = from + i;
            on_block(&self.pending[start..end]);
            start = end + 2;
            from = start;
        }
        if start > 0 {
            self.pending.drain(..start);
        }
    }

    fn ended(&self) -> bool {
        matches!(self.framing, Framing::End)
    }
}

/// The `checked_at` of an SSE block that carries a report, in microseconds.
fn checked_at(block: &[u8]) -> Option<i64> {
    let has_data = block.split(|&b| b == b'\n').any(|line| line.starts_with(b"data:"));
    if !has_data {
        return None; // a `:` keep-alive comment
    }
    let start = find(block, CHECKED_AT)? + CHECKED_AT.len();
    let len = block[start..].iter().position(|&b| b == b'"')?;
    let text = std::str::from_utf8(&block[start..start + len]).ok()?;
    let at: jiff::Timestamp = text.parse().ok()?;
    Some(at.as_microsecond())
}

/// One stream client: connects, reads until told to stop, and records the
/// events that arrive after the measurement is armed.
async fn client(config: Arc<Config>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> Outcome {
    let mut outcome = Outcome::default();
    if let Err(e) = run_client(&config, &shared, &mut stop, &mut outcome).await {
        outcome.error = Some(format!("{e:#}"));
        shared.failed.fetch_add(1, Ordering::Relaxed);
        if outcome.connected {
            shared.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
    outcome
}

async fn run_client(
    config: &Config,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(config.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET /health/status/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        config.addr
    );
    stream.write_all(request.as_bytes()).await.context("send request")?;
    drop(request);

    let mut buf = [0u8; READ_BUF];
    let mut decoder = Decoder::new();
    // Poll rounds seen since the measurement was armed; `finished` after the last one.
    let mut rounds = 0usize;
    let mut finished = false;
    let mut last_checked: Option<i64> = None;
    let mut error = None;
    loop {
        let read = tokio::select! {
            read = stream.read(&mut buf) => read.context("read")?,
            _ = stop.changed() => return Ok(()),
        };
        let at_us = wall_us();
        if read == 0 {
            bail!("server closed the stream");
        }
        decoder.feed(&buf[..read], &mut |block| {
            let Some(checked_us) = checked_at(block) else {
                if block.windows(5).any(|w| w == b"data:") {
                    error.get_or_insert_with(|| "an event without a readable checked_at".to_owned());
                }
                return;
            };
            if !outcome.connected {
                outcome.connected = true;
                shared.connected.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let armed_at = shared.armed_at.load(Ordering::Relaxed);
            if armed_at == 0 || checked_us < armed_at || finished {
                return;
            }
            if last_checked.is_none_or(|last| checked_us - last > ROUND_GAP_US) {
                if rounds == config.events {
                    finished = true;
                    return;
                }
                rounds += 1;
                if rounds == config.events {
                    shared.done.fetch_add(1, Ordering::Relaxed);
                }
            }
            last_checked = Some(checked_us);
            if outcome.events.len() < config.events * EVENTS_PER_ROUND {
                if outcome.events.is_empty() {
                    outcome.events.reserve_exact(config.events * 3);
                }
                outcome.events.push(Received { at_us, checked_us });
                shared.recorded.fetch_add(1, Ordering::Relaxed);
            }
        })?;
        if let Some(e) = error.take() {
            bail!(e);
        }
        if decoder.ended() {
            bail!("server ended the response");
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[allow(clippy::cast_precision_loss)]
fn ms(us: i64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// Latencies of one report over the clients, and when they received it.
#[derive(Debug, Default)]
struct Delivery {
    /// Receive time − `checked_at`, per client, in µs.
    latency: Vec<i64>,
    /// Receive time, per client, in wall-clock µs.
    at: Vec<i64>,
}

impl Delivery {
    fn push(&mut self, event: Received, checked_us: i64) {
        self.latency.push(event.at_us - checked_us);
        self.at.push(event.at_us);
    }

    /// Prints the human-readable lines and returns `key=value` pairs for the
    /// machine-readable `RESULT` line.
    fn print(&mut self, label: &str, prefix: &str, connected: usize) -> String {
        self.latency.sort_unstable();
        let spread = self
            .at
            .iter()
            .max()
            .zip(self.at.iter().min())
            .map_or(0, |(max, min)| max - min);
        let (min, median, p99, max) = match (self.latency.first(), self.latency.last()) {
            (Some(&min), Some(&max)) => (
                min,
                percentile(&self.latency, 0.5),
                percentile(&self.latency, 0.99),
                max,
            ),
            _ => (0, 0, 0, 0),
        };
        println!("  {label}: reached {}/{connected} clients", self.latency.len());
        if !self.latency.is_empty() {
            println!(
                "  {label}: latency min {}, median {}, p99 {}, max {}; receive spread (last - first client) {}",
                ms(min),
                ms(median),
                ms(p99),
                ms(max),
                ms(spread)
            );
        }
        format!(
            "{prefix}_reached={} {prefix}_min_us={min} {prefix}_median_us={median} {prefix}_p99_us={p99} \
             {prefix}_max_us={max} {prefix}_spread_us={spread}",
            self.latency.len()
        )
    }
}

fn own_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn marker(text: &str) {
    println!("{text}");
    let _ = std::io::stdout().flush();
}

/// Per round, over the clients that got it: the first event each got and
/// the round's newest report.
fn report(config: &Config, outcomes: &[Outcome]) -> bool {
    // Rounds: clusters of checked_at values over every client.
    let mut all: Vec<i64> = outcomes
        .iter()
        .flat_map(|o| o.events.iter().map(|e| e.checked_us))
        .collect();
    all.sort_unstable();
    all.dedup();
    let mut rounds: Vec<Vec<i64>> = Vec::new();
    for checked in all {
        match rounds.last_mut() {
            Some(round) if round.last().is_some_and(|&last| checked - last <= ROUND_GAP_US) => round.push(checked),
            _ => rounds.push(vec![checked]),
        }
    }
    rounds.truncate(config.events);
    let connected = outcomes.iter().filter(|o| o.connected).count();
    let mut complete = rounds.len() == config.events;
    if !complete {
        println!(
            "sse_load: only {} of {} poll rounds arrived",
            rounds.len(),
            config.events
        );
    }
    for (n, round) in rounds.iter().enumerate() {
        let (lo, newest) = (round[0], round[round.len() - 1]);
        let mut first = Delivery::default();
        let mut last = Delivery::default();
        let mut per_client: BTreeMap<usize, usize> = BTreeMap::new();
        for outcome in outcomes.iter().filter(|o| o.connected) {
            let mine: Vec<Received> = outcome
                .events
                .iter()
                .copied()
                .filter(|e| (lo..=newest).contains(&e.checked_us))
                .collect();
            if let Some(&event) = mine.first() {
                first.push(event, event.checked_us);
            }
            if let Some(&event) = mine.iter().find(|e| e.checked_us == newest) {
                last.push(event, newest);
            }
            *per_client.entry(mine.len()).or_default() += 1;
        }
        let stamp = |us: i64| jiff::Timestamp::from_microsecond(us).map_or_else(|_| us.to_string(), |t| t.to_string());
        println!(
            "sse_load: poll round {}: {} distinct report(s) seen, stamped within {} (checked_at {} .. {})",
            n + 1,
            round.len(),
            ms(newest - lo),
            stamp(lo),
            stamp(newest),
        );
        let histogram: Vec<String> = per_client
            .iter()
            .map(|(events, clients)| format!("{events}: {clients}"))
            .collect();
        println!(
            "  events per client in this round (events: clients): {}",
            histogram.join(", ")
        );
        let first_kv = first.print("next poll event (first of the round per client)", "first", connected);
        let last_kv = last.print("newest report of the round", "newest", connected);
        let complete_us = last.at.iter().max().map_or(0, |max| max - lo);
        println!(
            "  the whole round (first checked_at to the last client having the newest report): {}",
            ms(complete_us)
        );
        println!(
            "RESULT round={} clients={connected} reports={} {first_kv} {last_kv} round_complete_us={complete_us}",
            n + 1,
            round.len()
        );
        complete &= first.latency.len() == connected && last.latency.len() == connected;
    }
    complete
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse()?;
    let runtime = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()?
    };
    let ok = runtime.block_on(run(Arc::new(config)))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(config: Arc<Config>) -> anyhow::Result<bool> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + config.timeout;
    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut timed_out = false;
    let tick = Duration::from_millis(2);

    println!(
        "sse_load: {} clients -> http://{}/health/status/stream in batches of {}, {} round(s), timeout {} s",
        config.clients,
        config.addr,
        config.batch,
        config.events,
        config.timeout.as_secs()
    );
    let mut opened = 0;
    'connect: while opened < config.clients {
        let batch_end = (opened + config.batch).min(config.clients);
        for _ in opened..batch_end {
            tasks.spawn(client(Arc::clone(&config), Arc::clone(&shared), stop_rx.clone()));
        }
        opened = batch_end;
        // The next batch waits until this one is accepted and answered.
        while shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < opened {
            if tokio::time::Instant::now() >= deadline {
                timed_out = true;
                break 'connect;
            }
            tokio::time::sleep(tick).await;
        }
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    println!(
        "sse_load: connected {connected}/{} clients in {:.2} s ({failed} failed)",
        config.clients,
        started.elapsed().as_secs_f64()
    );
    marker(&format!(
        "SSE_LOAD_CONNECTED clients={connected} failed={failed} client_rss_kb={}",
        own_rss_kb().unwrap_or(0)
    ));
    tokio::time::sleep(config.hold).await;

    // Measure: events whose checked_at is after now.
    shared.armed_at.store(wall_us(), Ordering::Relaxed);
    let armed = Instant::now();
    if !timed_out {
        loop {
            let alive = shared.connected.load(Ordering::Relaxed) - shared.lost.load(Ordering::Relaxed);
            if shared.done.load(Ordering::Relaxed) >= alive {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                timed_out = true;
                break;
            }
            tokio::time::sleep(tick).await;
        }
    }
    // Let the rest of the round's reports arrive: until nothing new for 300 ms (at most 3 s).
    let settle_until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut last = shared.recorded.load(Ordering::Relaxed);
    while !timed_out && tokio::time::Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = shared.recorded.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let done = shared.done.load(Ordering::Relaxed);
    let alive = shared.connected.load(Ordering::Relaxed) - shared.lost.load(Ordering::Relaxed);
    if timed_out {
        println!(
            "sse_load: TIMED OUT after {:.2} s: {done}/{alive} connected clients got {} poll round(s)",
            armed.elapsed().as_secs_f64(),
            config.events
        );
    } else {
        println!(
            "sse_load: {done}/{alive} connected clients got {} poll round(s) within {:.2} s of the start of the measurement",
            config.events,
            armed.elapsed().as_secs_f64()
        );
    }
    marker(&format!(
        "SSE_LOAD_MEASURED client_rss_kb={}",
        own_rss_kb().unwrap_or(0)
    ));
    tokio::time::sleep(config.hold).await;

    stop_tx.send_replace(true);
    let mut outcomes = Vec::with_capacity(config.clients);
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined.context("a client task panicked")?);
    }
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for outcome in &outcomes {
        if let Some(e) = &outcome.error {
            *errors.entry(e.clone()).or_default() += 1;
        }
    }
    for (error, count) in &errors {
        println!("sse_load: {count} client(s) failed: {error}");
    }
    let complete = report(&config, &outcomes);
    Ok(complete && errors.is_empty() && !timed_out)
}
