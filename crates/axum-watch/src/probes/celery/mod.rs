//! [`CeleryProbe`]: asks Celery workers `ping` through the broker, the way
//! `celery inspect ping` does, over Redis or AMQP.
//!
//! The wire protocol is kombu's pidbox: a command goes to the fanout
//! exchange `celery.pidbox` as JSON `{"method", "arguments", "destination",
//! "pattern", "matcher", "ticket", "reply_to"}` with headers `clock` and
//! `expires`; each worker answers `{"<node name>": <reply>}` through the
//! direct exchange `reply.celery.pidbox`, with the routing key named in
//! `reply_to` and the command's ticket in its headers.

mod amqp;
mod redis;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use self::amqp::AmqpMailbox;
use self::redis::{RedisMailbox, unix_now};
use crate::probe::{Outcome, Probe, ProbeError};
use crate::probes::amqp::AmqpTarget;
use crate::probes::{ConfigError, ConfigErrorKind, invalid_redis_url};
use crate::redis_client::RedisTarget;
use crate::tls::TlsOptions;

const CONTROL_EXCHANGE: &str = "celery.pidbox";
const REPLY_EXCHANGE: &str = "reply.celery.pidbox";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The probe, as its construction errors name it.
const PROBE: &str = "CeleryProbe";
/// What `detailed` mode asks each worker, besides `ping`.
const INSPECT: [&str; 6] = [
    "active",
    "reserved",
    "scheduled",
    "stats",
    "registered",
    "active_queues",
];
const SCALED_DOWN: &str = "no workers online — they may be scaled down because there are no pending tasks";

/// Checks that Celery workers answer a `ping` broadcast through the broker
/// your Celery app uses (`redis://…` or `amqp://…`); no result backend is
/// needed.
///
/// | option | default | meaning |
/// | --- | --- | --- |
/// | [`min_workers`](Self::min_workers) | 0 | fewer workers answering is unhealthy; 0 accepts scale-to-zero |
/// | [`timeout`](Self::timeout) | 1 s | how long to collect replies to each broadcast |
/// | [`detailed`](Self::detailed) | off | also ask `active`, `reserved`, `scheduled`, `stats`, `registered`, `active_queues` |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s | bound on connecting to the broker |
///
/// Details: `workers_online` and `workers` (sorted node names, or in
/// detailed mode one object per worker); with no worker and
/// `min_workers = 0`, a `reason` instead of `workers`.
///
/// A `rediss://` broker is reached over TLS (rustls), its certificate
/// checked against the system's roots, with
/// [`tls_options`](Self::tls_options) for a private CA, a client certificate
/// or a test server; `amqps://` goes over lapin's rustls. Over `rediss://`
/// the details also carry `tls_version`, `cert_not_after` and
/// `cert_days_remaining`.
///
/// ```
/// use axum_watch::probes::CeleryProbe;
///
/// // Nothing connects before the first check.
/// let celery = CeleryProbe::new("redis://:s3cret@127.0.0.1:6379/0").unwrap().min_workers(2);
/// assert!(!format!("{celery:?}").contains("s3cret"));
/// ```
pub struct CeleryProbe {
    broker: Broker,
    min_workers: usize,
    timeout: Duration,
    connect_timeout: Duration,
    detailed: bool,
}

enum Broker {
    Redis(RedisTarget),
    Amqp(AmqpTarget),
}

/// One reply from one or more workers: its ticket and `{"node": reply}`.
struct Reply {
    ticket: Option<String>,
    body: Value,
}

enum Mailbox {
    Redis(Box<RedisMailbox>),
    Amqp(Box<AmqpMailbox>),
}

impl Mailbox {
    /// Publishes one command; returns its ticket and, when the broker says,
    /// how many workers received it.
    async fn broadcast(
        &mut self,
        method: &str,
        reply_id: &str,
        timeout: Duration,
    ) -> Result<(String, Option<usize>), ProbeError> {
        let ticket = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "method": method,
            "arguments": {},
            "destination": null,
            "pattern": null,
            "matcher": null,
            "ticket": ticket,
            "reply_to": {"exchange": REPLY_EXCHANGE, "routing_key": reply_id},
        });
        let expires = unix_now() + timeout.as_secs_f64();
        let deadline = Instant::now() + timeout;
        let receivers = match self {
            Self::Redis(mailbox) => {
                let headers = json!({"clock": 1, "expires": expires});
                Some(mailbox.publish(&body, headers, deadline).await?)
            }
            Self::Amqp(mailbox) => mailbox.publish(&body, 1, expires, deadline).await?,
        };
        Ok((ticket, receivers))
    }

    async fn next_reply(&mut self, deadline: Instant) -> Result<Option<Reply>, ProbeError> {
        match self {
            Self::Redis(mailbox) => mailbox.next_reply(deadline).await,
            Self::Amqp(mailbox) => mailbox.next_reply(deadline).await,
        }
    }

    /// Replies to `tickets` until `deadline`, or until each ticket has heard
    /// from `expected` workers. Per ticket: node name → reply.
    async fn gather(
        &mut self,
        tickets: &[String],
        expected: Option<usize>,
        deadline: Instant,
    ) -> Result<HashMap<String, BTreeMap<String, Value>>, ProbeError> {
        let mut replies: HashMap<String, BTreeMap<String, Value>> =
            tickets.iter().map(|t| (t.clone(), BTreeMap::new())).collect();
        let done = |replies: &HashMap<String, BTreeMap<String, Value>>| {
            expected.is_some_and(|n| replies.values().all(|r| r.len() >= n))
        };
        while !done(&replies) {
            let Some(reply) = self.next_reply(deadline).await? else {
                break;
            };
            let Some(per_ticket) = reply.ticket.and_then(|t| replies.get_mut(&t)) else {
                continue;
            };
            if let Value::Object(nodes) = reply.body {
                per_ticket.extend(nodes);
            }
        }
        Ok(replies)
    }

    async fn close(self) {
        match self {
            Self::Redis(mailbox) => mailbox.close().await,
            Self::Amqp(mailbox) => mailbox.close().await,
        }
    }
}

impl CeleryProbe {
    /// A probe for the workers of the Celery app whose broker is `broker_url`:
    /// `redis://[:password@]host[:port][/db]`, `amqp://…`, `amqps://…` or
    /// `pyamqp://…` (an empty AMQP vhost means `/`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the URL is malformed or its scheme is not one
    /// of those; the error does not repeat the password.
    pub fn new(broker_url: impl AsRef<str>) -> Result<Self, ConfigError> {
        let url = broker_url.as_ref();
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        let broker = match scheme {
            "redis" | "rediss" | "redis+unix" | "unix" => {
                Broker::Redis(RedisTarget::parse(url).map_err(|e| invalid_redis_url(PROBE, &e))?)
            }
            "amqp" | "amqps" => Broker::Amqp(AmqpTarget::parse(url, PROBE)?),
            "pyamqp" => Broker::Amqp(AmqpTarget::parse(&url.replacen("pyamqp://", "amqp://", 1), PROBE)?),
            _ => {
                return Err(ConfigError::new(
                    ConfigErrorKind::UnsupportedScheme,
                    PROBE,
                    "url",
                    format!("unsupported celery broker URL scheme {scheme:?}: use redis:// or amqp://"),
                ));
            }
        };
        Ok(Self {
            broker,
            min_workers: 0,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            detailed: false,
        })
    }

    /// Fewer workers answering than this is unhealthy (default 0: no worker
    /// at all is healthy, with a `reason`, for apps that scale to zero).
    #[must_use]
    pub fn min_workers(mut self, min_workers: usize) -> Self {
        self.min_workers = min_workers;
        self
    }

    /// How long to wait for replies to each broadcast (default 1 s). Workers
    /// that answer later are not counted.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting to the broker may take (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whom to trust and who the probe is over TLS (see [`TlsOptions`]), for
    /// a `rediss://` broker; other brokers ignore them.
    #[must_use]
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        if let Broker::Redis(target) = &mut self.broker {
            target.set_tls_options(options);
        }
        self
    }

    /// Also collects each worker's tasks, pool, queues and registered tasks
    /// (five more broadcasts; meant for development and test).
    #[must_use]
    pub fn detailed(mut self, detailed: bool) -> Self {
        self.detailed = detailed;
        self
    }

    async fn open(&self, reply_id: &str) -> Result<Mailbox, ProbeError> {
        Ok(match &self.broker {
            Broker::Redis(target) => Mailbox::Redis(Box::new(
                RedisMailbox::open(target, reply_id, self.connect_timeout).await?,
            )),
            Broker::Amqp(target) => Mailbox::Amqp(Box::new(
                AmqpMailbox::open(target, reply_id, self.connect_timeout).await?,
            )),
        })
    }

    async fn inspect(&self, mailbox: &mut Mailbox, reply_id: &str) -> Result<Outcome, ProbeError> {
        let (ping, receivers) = mailbox.broadcast("ping", reply_id, self.timeout).await?;
        let deadline = Instant::now() + self.timeout;
        let mut pongs = mailbox.gather(std::slice::from_ref(&ping), receivers, deadline).await?;
        let online: Vec<String> = pongs.remove(&ping).unwrap_or_default().into_keys().collect();

        let count = online.len();
        let mut outcome = if count < self.min_workers {
            Outcome::unhealthy(if count == 0 {
                format!("no workers online; expected at least {}", self.min_workers)
            } else {
                format!("{count} workers online; expected at least {}", self.min_workers)
            })
        } else {
            Outcome::healthy()
        };
        outcome = outcome.detail("workers_online", count);
        if count == 0 {
            if self.min_workers == 0 {
                outcome = outcome.detail("reason", SCALED_DOWN);
            }
            return Ok(outcome);
        }
        if !self.detailed {
            return Ok(outcome.detail("workers", online));
        }

        let mut tickets = Vec::with_capacity(INSPECT.len());
        for method in INSPECT {
            tickets.push(mailbox.broadcast(method, reply_id, self.timeout).await?.0);
        }
        let deadline = Instant::now() + self.timeout;
        // Best effort: the workers are known to be up; missing answers leave gaps.
        let answers = match mailbox.gather(&tickets, Some(count), deadline).await {
            Ok(answers) => answers,
            Err(error) => {
                tracing::debug!(%error, "celery inspect broadcast failed; reporting the ping only");
                HashMap::new()
            }
        };
        let by_method: HashMap<&str, &BTreeMap<String, Value>> = INSPECT
            .iter()
            .zip(&tickets)
            .filter_map(|(method, ticket)| answers.get(ticket).map(|a| (*method, a)))
            .collect();
        let workers: Map<String, Value> = online
            .iter()
            .map(|node| (node.clone(), worker_details(node, &by_method)))
            .collect();
        Ok(outcome.detail("workers", Value::Object(workers)))
    }
}

/// One worker's entry in detailed mode, from its inspect replies.
fn worker_details(node: &str, by_method: &HashMap<&str, &BTreeMap<String, Value>>) -> Value {
    let answer = |method: &str| by_method.get(method).and_then(|a| a.get(node));
    let list = |method: &str| answer(method).and_then(Value::as_array).cloned().unwrap_or_default();
    let active: Vec<Value> = list("active").iter().map(task_summary).collect();
    let reserved: Vec<Value> = list("reserved").iter().map(task_summary).collect();
    // Scheduled entries wrap the task in `request`, next to `eta` and `priority`.
    let scheduled: Vec<Value> = list("scheduled")
        .iter()
        .map(|entry| {
            let mut task = task_summary(entry.get("request").unwrap_or(entry));
            if let Value::Object(fields) = &mut task {
                fields.insert("eta".into(), entry.get("eta").cloned().unwrap_or(Value::Null));
            }
            task
        })
        .collect();
    let stats = answer("stats");
    let pool = stats.and_then(|s| s.get("pool"));
    let queues: Vec<Value> = list("active_queues")
        .iter()
        .filter_map(|q| q.get("name").cloned())
        .collect();
    let mut registered = list("registered");
    registered.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    json!({
        "status": "online",
        "queues": queues,
        "active_tasks": active.len(),
        "reserved_tasks": reserved.len(),
        "scheduled_tasks": scheduled.len(),
        "pool": {
            "implementation": pool.and_then(|p| p.get("implementation")).cloned().unwrap_or(Value::Null),
            "max_concurrency": pool.and_then(|p| p.get("max-concurrency")).cloned().unwrap_or(Value::Null),
            "processes": pool.and_then(|p| p.get("processes")).cloned().unwrap_or(json!([])),
        },
        "total_tasks_executed": stats.and_then(|s| s.get("total")).cloned().unwrap_or(json!({})),
        "registered_tasks": registered,
        "active": active,
        "reserved": reserved,
        "scheduled": scheduled,
    })
}

/// The fields of a task request worth showing.
fn task_summary(task: &Value) -> Value {
    let field = |key: &str| task.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "id": field("id"),
        "name": field("name"),
        "args": field("args"),
        "kwargs": field("kwargs"),
        "time_start": field("time_start"),
        "worker_pid": field("worker_pid"),
    })
}

impl fmt::Debug for CeleryProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let broker = match &self.broker {
            Broker::Redis(target) => target.describe_address(),
            Broker::Amqp(target) => target.to_string(),
        };
        f.debug_struct("CeleryProbe")
            .field("broker", &broker)
            .field("min_workers", &self.min_workers)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("detailed", &self.detailed)
            .finish()
    }
}

impl Probe for CeleryProbe {
    fn name(&self) -> &str {
        "celery"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let reply_id = uuid::Uuid::new_v4().to_string();
        let mut mailbox = self.open(&reply_id).await?;
        let outcome = self.inspect(&mut mailbox, &reply_id).await;
        let outcome = match &mailbox {
            Mailbox::Redis(redis) => match &redis.peer {
                Some(peer) => outcome.map(|o| peer.add_to(o)),
                None => outcome,
            },
            _ => outcome,
        };
        mailbox.close().await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde_json::json;

    use super::{CeleryProbe, worker_details};

    #[test]
    fn broker_urls_are_checked_and_hidden() {
        let redis = CeleryProbe::new("redis://:s3cret@127.0.0.1:6380/4").unwrap();
        let debug = format!("{redis:?}");
        assert!(
            debug.contains("redis://127.0.0.1:6380/4") && !debug.contains("s3cret"),
            "{debug}"
        );
        let amqp = CeleryProbe::new("pyamqp://guest:s3cret@rabbit//").unwrap();
        let debug = format!("{amqp:?}");
        assert!(
            debug.contains("amqp://guest@rabbit:5672/") && !debug.contains("s3cret"),
            "{debug}"
        );
        let err = CeleryProbe::new("sqs://key:s3cret@").unwrap_err().to_string();
        assert!(err.contains("unsupported celery broker URL scheme \"sqs\""), "{err}");
        let tls = CeleryProbe::new("rediss://:s3cret@cache:6380/0").unwrap();
        let debug = format!("{tls:?}");
        assert!(
            debug.contains("rediss://cache:6380/0") && !debug.contains("s3cret"),
            "{debug}"
        );
        let err = CeleryProbe::new("redis://:s3cret@cache:notaport/0")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid redis URL") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn detailed_entry_from_inspect_replies() {
        let node = "w1@host";
        let reply = |v: serde_json::Value| BTreeMap::from([(node.to_owned(), v)]);
        let active = reply(json!([{"id": "abc", "name": "tasks.sleep", "args": [5], "kwargs": {},
            "time_start": 1_700_000_000.0, "worker_pid": 101, "hostname": node, "acknowledged": true}]));
        let scheduled = reply(json!([{"eta": "2030-01-01T00:00:00", "priority": 6,
            "request": {"id": "def", "name": "tasks.add", "args": [1, 2], "kwargs": {}}}]));
        let stats = reply(json!({"pool": {"implementation": "celery.concurrency.thread:TaskPool",
            "max-concurrency": 2, "processes": [7]}, "total": {"tasks.add": 3}}));
        let registered = reply(json!(["tasks.sleep", "tasks.add"]));
        let queues = reply(json!([{"name": "celery", "exchange": {"name": "celery"}}]));
        let empty = reply(json!([]));
        let by_method = HashMap::from([
            ("active", &active),
            ("reserved", &empty),
            ("scheduled", &scheduled),
            ("stats", &stats),
            ("registered", &registered),
            ("active_queues", &queues),
        ]);
        let details = worker_details(node, &by_method);
        assert_eq!(details["status"], "online");
        assert_eq!(details["queues"], json!(["celery"]));
        assert_eq!(
            (details["active_tasks"].as_u64(), details["scheduled_tasks"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            details["active"][0],
            json!({"id": "abc", "name": "tasks.sleep", "args": [5], "kwargs": {},
            "time_start": 1_700_000_000.0, "worker_pid": 101})
        );
        assert_eq!(details["scheduled"][0]["eta"], "2030-01-01T00:00:00");
        assert_eq!(details["pool"]["max_concurrency"], 2);
        assert_eq!(details["total_tasks_executed"], json!({"tasks.add": 3}));
        assert_eq!(details["registered_tasks"], json!(["tasks.add", "tasks.sleep"]));

        // A worker that did not answer the inspect broadcasts still shows up.
        let details = worker_details("w2@host", &by_method);
        assert_eq!(details["active_tasks"], 0);
        assert_eq!(details["pool"]["implementation"], json!(null));
    }
}
