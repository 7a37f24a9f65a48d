//! [`RedisStorage`]: results, history, alerts and alert claims in Redis,
//! shared by every replica of a service.
//!
//! Keys live under `<key_prefix>:<service>:` and every one of them expires:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `history:<probe>` | sorted set, scored by time | the probe's results from every replica, capped at `history_size` |
//! | `probes` | sorted set | the probe names with history |
//! | `latest:<replica>` | hash, probe → result | each replica's latest result per probe |
//! | `replicas` | sorted set | the replicas with latest results |
//! | `alerts` | sorted set, scored by time | the alert log, capped at `max_alerts` |
//! | `claim:<probe>:<old>:<new>` | string, `SET NX PX` | which replica sends a transition's alerts |
//!
//! Each write is one `MULTI` transaction that adds the entry, drops what fell
//! out of the size and age bounds and renews the keys' expiry to the TTL.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig};

use super::shared::{self, Backend, Latest, Op, Options, Replicated};
use super::{History, StorageError};
use crate::model::{AlertRecord, ProbeResult};
use crate::redis_client::RedisTarget;
use crate::tls::TlsOptions;

/// Storage in Redis shared by the replicas of one service (feature
/// `redis-storage`).
///
/// Every entry carries the id of the replica that wrote it; `/history` and
/// `/alerts` show every replica's entries, `status?scope=fleet` each
/// replica's latest results, and a transition's alerts are sent by one
/// replica only. Writes go to Redis in the background, in order, and reads
/// give up after the read timeout: probe runs and endpoints never wait for
/// it. While Redis is unreachable, or frozen (it accepts connections and
/// never answers), the registry answers from its own entries and buffers its
/// writes until Redis is back (see the [storage module](crate::storage)).
///
/// `rediss://` connects over TLS (rustls), the certificate checked against
/// the system's roots and the host name;
/// [`tls_options`](RedisStorageBuilder::tls_options) adds a private CA, a
/// client certificate for mutual TLS, a server name or, for a test server,
/// no verification.
///
/// ```no_run
/// use std::time::Duration;
/// use axum_watch::{HealthRegistry, storage::RedisStorage};
///
/// let storage = RedisStorage::builder("redis://127.0.0.1:6379", "checkout")
///     .history_size(50)
///     .result_ttl(Duration::from_secs(3600))
///     .build()
///     .unwrap();
/// let registry = HealthRegistry::builder().storage(storage).build().unwrap();
/// # drop(registry);
/// ```
#[derive(Clone)]
pub struct RedisStorage {
    inner: Replicated<RedisBackend>,
}

impl fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = self.inner.options();
        f.debug_struct("RedisStorage")
            .field("url", &self.inner.backend().url)
            .field("namespace", &self.inner.backend().namespace)
            .field("replica", &options.replica)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisStorage`]; see [`RedisStorage::builder`].
#[must_use]
pub struct RedisStorageBuilder {
    url: String,
    key_prefix: String,
    options: Options,
    tls: Option<TlsOptions>,
}

impl fmt::Debug for RedisStorageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorageBuilder")
            .field("url", &crate::redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("options", &self.options)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisStorage {
    /// A builder for the store at `url` (`redis://[user:password@]host:port[/db]`,
    /// `rediss://…` for TLS)
    /// keeping the entries of `service` (`[A-Za-z0-9_.-]+`; services sharing
    /// one Redis never see each other's entries).
    pub fn builder(url: impl Into<String>, service: impl Into<String>) -> RedisStorageBuilder {
        RedisStorageBuilder {
            url: url.into(),
            key_prefix: "axum-watch".to_owned(),
            options: Options::new(service.into()),
            tls: None,
        }
    }

    /// The id this replica labels its entries with.
    #[must_use]
    pub fn replica_id(&self) -> &str {
        &self.inner.options().replica
    }
}

impl RedisStorageBuilder {
    shared::shared_setters!();

    /// The first part of every key (default `axum-watch`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Whom to trust and who the store is over TLS (see [`TlsOptions`]), for
    /// a `rediss://` URL; a plain `redis://` one ignores them.
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// The storage. It connects on first use, so building needs no server.
    ///
    /// # Errors
    ///
    /// A malformed URL, a service name outside `[A-Za-z0-9_.-]`, a replica
    /// id with spaces, or a zero TTL or timeout.
    pub fn build(self) -> Result<RedisStorage, StorageError> {
        self.options.validate()?;
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err(StorageError::new(format!(
                "invalid key prefix {:?}: use a non-empty prefix without spaces",
                self.key_prefix
            )));
        }
        let mut target =
            RedisTarget::parse(&self.url).map_err(|e| StorageError::new(format!("invalid Redis URL: {e}")))?;
        if let Some(options) = self.tls {
            target.set_tls_options(options);
        }
        let backend = RedisBackend {
            url: crate::redact(&self.url).into_owned(),
            namespace: format!("{}:{}", self.key_prefix, self.options.service),
            target,
            timeout: self.options.timeout,
            connection: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        };
        Ok(RedisStorage {
            inner: Replicated::new(backend, self.options),
        })
    }
}

struct RedisBackend {
    /// Redacted, for `Debug`.
    url: String,
    namespace: String,
    target: RedisTarget,
    /// Bounds connecting and each response, besides the caller's limit.
    timeout: Duration,
    /// Made on first use and again after a failure (`reset`).
    connection: Mutex<Option<MultiplexedConnection>>,
    /// Held while a connection is being made, so that one connects at a time.
    connecting: tokio::sync::Mutex<()>,
}

fn redis_error(what: &str, e: &redis::RedisError) -> StorageError {
    StorageError::new(format!("redis: {what}: {e}"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A sorted-set member: the write's 16-digit hex sequence number, then the
/// JSON. A retried write is the same member, so it is stored once.
fn member(seq: u64, json: &str) -> String {
    format!("{seq:016x}{json}")
}

fn unmember(member: &str) -> &str {
    member.get(16..).unwrap_or_default()
}

impl RedisBackend {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open connection, or a new one. Both limits hold for every
    /// connection: a server that accepts and never answers does not hold it
    /// up. A connection that broke fails its next call, and the shared
    /// layer then `reset`s it.
    async fn connection(&self) -> Result<MultiplexedConnection, StorageError> {
        if let Some(connection) = self.slot().clone() {
            return Ok(connection);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(connection) = self.slot().clone() {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(self.timeout));
        let (connection, _peer) = self
            .target
            .connect(self.timeout, config)
            .await
            .map_err(|e| StorageError::new(format!("redis: could not connect: {e}")))?;
        *self.slot() = Some(connection.clone());
        Ok(connection)
    }

    fn key(&self, part: &str) -> String {
        format!("{}:{part}", self.namespace)
    }
}

impl Backend for RedisBackend {
    async fn write(&self, seq: u64, op: &Op, options: &Options, now: i64) -> Result<(), StorageError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        match op {
            Op::Record { at, result } => {
                let ttl = millis(options.result_ttl);
                let cutoff = now.saturating_sub(ttl);
                let json = shared::encode(result)?;
                let history = self.key(&format!("history:{}", result.name));
                let probes = self.key("probes");
                let latest = self.key(&format!("latest:{}", options.replica));
                let replicas = self.key("replicas");
                let keep = isize::try_from(options.history_size).unwrap_or(isize::MAX - 1);
                pipe.zadd(&history, member(seq, &json), *at)
                    .ignore()
                    .zrembyscore(&history, "-inf", format!("({cutoff}"))
                    .ignore()
                    .zremrangebyrank(&history, 0, -(keep + 1))
                    .ignore()
                    .pexpire(&history, ttl)
                    .ignore();
                pipe.cmd("ZADD")
                    .arg(&probes)
                    .arg("GT")
                    .arg(*at)
                    .arg(&result.name)
                    .ignore()
                    .zrembyscore(&probes, "-inf", format!("({cutoff}"))
                    .ignore()
                    .pexpire(&probes, ttl)
                    .ignore();
                pipe.hset(&latest, &result.name, format!("{at}|{json}"))
                    .ignore()
                    .pexpire(&latest, ttl)
                    .ignore();
                pipe.cmd("ZADD")
                    .arg(&replicas)
                    .arg("GT")
                    .arg(*at)
                    .arg(&options.replica)
                    .ignore()
                    .zrembyscore(&replicas, "-inf", format!("({cutoff}"))
                    .ignore()
                    .pexpire(&replicas, ttl)
                    .ignore();
            }
            Op::Alert { at, alert } => {
                let ttl = millis(options.alert_ttl);
                let cutoff = now.saturating_sub(ttl);
                let alerts = self.key("alerts");
                let keep = isize::try_from(options.max_alerts).unwrap_or(isize::MAX - 1);
                pipe.zadd(&alerts, member(seq, &shared::encode(alert)?), *at)
                    .ignore()
                    .zrembyscore(&alerts, "-inf", format!("({cutoff}"))
                    .ignore()
                    .zremrangebyrank(&alerts, 0, -(keep + 1))
                    .ignore()
                    .pexpire(&alerts, ttl)
                    .ignore();
            }
        }
        let mut connection = self.connection().await?;
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(|e| redis_error("write", &e))
    }

    async fn latest(&self, _options: &Options, since: i64) -> Result<Latest, StorageError> {
        let mut connection = self.connection().await?;
        let replicas: Vec<String> = connection
            .zrangebyscore(self.key("replicas"), since, "+inf")
            .await
            .map_err(|e| redis_error("read replicas", &e))?;
        if replicas.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for replica in &replicas {
            pipe.hgetall(self.key(&format!("latest:{replica}")));
        }
        let hashes: Vec<Vec<(String, String)>> = pipe
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error("read latest results", &e))?;
        let mut out = Vec::new();
        for (_, value) in hashes.into_iter().flatten() {
            let Some((at, json)) = value.split_once('|') else {
                continue;
            };
            let Ok(at) = at.parse::<i64>() else { continue };
            if at < since {
                continue;
            }
            if let Some(result) = shared::decode::<ProbeResult>(json) {
                out.push((at, result));
            }
        }
        Ok(out)
    }

    async fn history(&self, _options: &Options, since: i64) -> Result<History, StorageError> {
        let mut connection = self.connection().await?;
        let mut probes: Vec<String> = connection
            .zrangebyscore(self.key("probes"), since, "+inf")
            .await
            .map_err(|e| redis_error("read probe names", &e))?;
        if probes.is_empty() {
            return Ok(Vec::new());
        }
        probes.sort();
        let mut pipe = redis::pipe();
        for probe in &probes {
            pipe.zrangebyscore(self.key(&format!("history:{probe}")), since, "+inf");
        }
        let members: Vec<Vec<String>> = pipe
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error("read history", &e))?;
        Ok(probes
            .into_iter()
            .zip(members)
            .map(|(probe, members)| {
                let results: Vec<ProbeResult> = members.iter().filter_map(|m| shared::decode(unmember(m))).collect();
                (probe, results)
            })
            .filter(|(_, results)| !results.is_empty())
            .collect())
    }

    async fn alerts(&self, _options: &Options, since: i64) -> Result<Vec<AlertRecord>, StorageError> {
        let mut connection = self.connection().await?;
        let members: Vec<String> = connection
            .zrangebyscore(self.key("alerts"), since, "+inf")
            .await
            .map_err(|e| redis_error("read alerts", &e))?;
        Ok(members.iter().filter_map(|m| shared::decode(unmember(m))).collect())
    }

    async fn claim(&self, options: &Options, key: &str, window: Duration) -> Result<bool, StorageError> {
        let mut connection = self.connection().await?;
        let answer: Option<String> = redis::cmd("SET")
            .arg(self.key(&format!("claim:{key}")))
            .arg(&options.replica)
            .arg("NX")
            .arg("PX")
            .arg(millis(window).max(1))
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error("claim an alert", &e))?;
        Ok(answer.is_some())
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(|e| redis_error("ping", &e))
    }

    fn reset(&self) {
        *self.slot() = None;
    }
}

shared::delegate_storage!(RedisStorage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let s = RedisStorage::builder("redis://:hunter2@127.0.0.1:6379/0", "svc")
            .replica("r1")
            .build()
            .unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("axum-watch:svc"), "{text}");
        let b = RedisStorage::builder("redis://:hunter2@127.0.0.1:6379/0", "svc");
        assert!(!format!("{b:?}").contains("hunter2"));
    }

    #[test]
    fn bad_input_is_refused_with_a_clear_error() {
        let e = RedisStorage::builder("http://x", "svc").build().unwrap_err();
        assert!(e.to_string().contains("invalid Redis URL"), "{e}");
        let e = RedisStorage::builder("redis://127.0.0.1", "a b").build().unwrap_err();
        assert!(e.to_string().contains("invalid service name"), "{e}");
        let e = RedisStorage::builder("redis://127.0.0.1", "svc")
            .key_prefix("")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("invalid key prefix"), "{e}");
    }

    #[test]
    fn members_keep_their_json_after_the_sequence() {
        let m = member(42, "{\"a\":1}");
        assert_eq!(m.len(), 16 + 7);
        assert_eq!(unmember(&m), "{\"a\":1}");
        assert_eq!(unmember("short"), "");
    }
}
