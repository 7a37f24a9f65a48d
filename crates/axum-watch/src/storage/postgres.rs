//! [`PostgresStorage`]: results, history, alerts and alert claims in
//! PostgreSQL, shared by every replica of a service.
//!
//! The tables are created on first use by idempotent DDL (run under an
//! advisory lock, so replicas starting together do not race);
//! [`PostgresStorage::SCHEMA`] is the same DDL, for those who prefer to
//! apply it as a migration:
//!
//! | table | holds |
//! | --- | --- |
//! | `axum_watch_results` | every probe's history from every replica, capped at `history_size` per probe |
//! | `axum_watch_latest` | each replica's latest result per probe |
//! | `axum_watch_alerts` | the alert log, capped at `max_alerts` per service |
//! | `axum_watch_alert_claims` | which replica sends a transition's alerts, until when |
//!
//! Each write is one statement that adds the entry (unless the same entry,
//! from the same replica at the same millisecond, is there already: a write
//! retried after a timeout is stored once) and deletes the rows of the
//! service that fell out of the size and age bounds. The session runs
//! with `synchronous_commit` off: a write does not wait for the disk, and a
//! crash of the database may lose its last few entries (never corrupt them).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, Statement};

use super::shared::{self, Backend, Latest, Op, Options, Replicated};
use super::{History, StorageError};
use crate::model::{AlertRecord, ProbeResult};
use crate::tls::TlsOptions;
use crate::tls::postgres::{PgTls, PgUrlError};

const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS axum_watch_results (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    replica TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS axum_watch_results_by_probe ON axum_watch_results (service, probe, recorded_at);
CREATE TABLE IF NOT EXISTS axum_watch_latest (
    service TEXT NOT NULL,
    replica TEXT NOT NULL,
    probe TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (service, replica, probe)
);
CREATE TABLE IF NOT EXISTS axum_watch_alerts (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    replica TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS axum_watch_alerts_by_time ON axum_watch_alerts (service, recorded_at);
CREATE TABLE IF NOT EXISTS axum_watch_alert_claims (
    service TEXT NOT NULL,
    claim TEXT NOT NULL,
    replica TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (service, claim)
);
";

const RECORD: &str = "\
WITH latest AS (
    INSERT INTO axum_watch_latest AS l (service, replica, probe, recorded_at, body)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (service, replica, probe) DO UPDATE
        SET recorded_at = EXCLUDED.recorded_at, body = EXCLUDED.body
        WHERE l.recorded_at <= EXCLUDED.recorded_at
), expired AS (
    DELETE FROM axum_watch_latest
    WHERE service = $1 AND recorded_at < $6 AND NOT (replica = $2 AND probe = $3)
), pruned AS (
    DELETE FROM axum_watch_results
    WHERE service = $1 AND probe = $3 AND (recorded_at < $6 OR id IN (
        SELECT id FROM axum_watch_results WHERE service = $1 AND probe = $3
        ORDER BY recorded_at DESC, id DESC OFFSET $7))
)
INSERT INTO axum_watch_results (service, probe, replica, recorded_at, body)
SELECT $1::text, $3::text, $2::text, $4::bigint, $5::text
WHERE NOT EXISTS (
    SELECT 1 FROM axum_watch_results
    WHERE service = $1 AND probe = $3 AND recorded_at = $4 AND replica = $2 AND body = $5)";

const ALERT: &str = "\
WITH pruned AS (
    DELETE FROM axum_watch_alerts
    WHERE service = $1 AND (recorded_at < $5 OR id IN (
        SELECT id FROM axum_watch_alerts WHERE service = $1
        ORDER BY recorded_at DESC, id DESC OFFSET $6))
)
INSERT INTO axum_watch_alerts (service, replica, recorded_at, body)
SELECT $1::text, $2::text, $3::bigint, $4::text
WHERE NOT EXISTS (
    SELECT 1 FROM axum_watch_alerts
    WHERE service = $1 AND recorded_at = $3 AND replica = $2 AND body = $4)";

const LATEST: &str = "\
SELECT recorded_at, body FROM axum_watch_latest WHERE service = $1 AND recorded_at >= $2";

const HISTORY: &str = "\
SELECT probe, body FROM (
    SELECT probe, body, recorded_at, id,
           row_number() OVER (PARTITION BY probe ORDER BY recorded_at DESC, id DESC) AS n
    FROM axum_watch_results WHERE service = $1 AND recorded_at >= $2
) t WHERE n <= $3 ORDER BY probe, recorded_at, id";

const ALERTS: &str = "\
SELECT body FROM (
    SELECT body, recorded_at, id FROM axum_watch_alerts
    WHERE service = $1 AND recorded_at >= $2
    ORDER BY recorded_at DESC, id DESC LIMIT $3
) t ORDER BY recorded_at, id";

const CLAIM: &str = "\
INSERT INTO axum_watch_alert_claims AS c (service, claim, replica, expires_at)
VALUES ($1, $2, $3, clock_timestamp() + $4::bigint * interval '1 millisecond')
ON CONFLICT (service, claim) DO UPDATE
    SET replica = EXCLUDED.replica, expires_at = EXCLUDED.expires_at
    WHERE c.expires_at <= clock_timestamp()
RETURNING replica";

/// An arbitrary constant: the advisory lock that serialises the DDL.
const SCHEMA_LOCK: i64 = 0x6178_7761_7463_6801;

/// Storage in PostgreSQL shared by the replicas of one service (feature
/// `postgres-storage`).
///
/// Every entry carries the id of the replica that wrote it; `/history` and
/// `/alerts` show every replica's entries, `status?scope=fleet` each
/// replica's latest results, and a transition's alerts are sent by one
/// replica only. Writes go to the database in the background, in order,
/// and reads give up after the read timeout: probe runs and endpoints never
/// wait for it. While the database is unreachable, or frozen (it accepts
/// connections and never answers), the registry answers from its own entries
/// and buffers its writes until it is back (see the [storage
/// module](crate::storage)).
/// TLS follows libpq's `sslmode` (`disable`, `prefer` — the default —,
/// `require`, `verify-ca`, `verify-full`) and `sslrootcert` / `sslcert` /
/// `sslkey` in the URL, over rustls, as for
/// [`PostgresProbe`](crate::probes::PostgresProbe);
/// [`tls_options`](PostgresStorageBuilder::tls_options) sets whom to trust
/// in code.
///
/// ```no_run
/// use std::time::Duration;
/// use axum_watch::{HealthRegistry, storage::PostgresStorage};
///
/// let storage = PostgresStorage::builder("postgres://app@127.0.0.1:5432/app", "checkout")
///     .replica("pod-a")
///     .alert_ttl(Duration::from_secs(24 * 3600))
///     .build()
///     .unwrap();
/// let registry = HealthRegistry::builder().storage(storage).build().unwrap();
/// # drop(registry);
/// ```
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Replicated<PostgresBackend>,
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("url", &self.inner.backend().url)
            .field("service", &self.inner.options().service)
            .field("replica", &self.inner.options().replica)
            .finish_non_exhaustive()
    }
}

/// Builds a [`PostgresStorage`]; see [`PostgresStorage::builder`].
#[must_use]
pub struct PostgresStorageBuilder {
    url: String,
    options: Options,
    tls: Option<TlsOptions>,
}

impl fmt::Debug for PostgresStorageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorageBuilder")
            .field("url", &crate::redact(&self.url))
            .field("options", &self.options)
            .field("tls", &self.tls)
            .finish()
    }
}

impl PostgresStorage {
    /// The DDL of the tables, which the storage runs itself (idempotently)
    /// on first use.
    pub const SCHEMA: &'static str = SCHEMA;

    /// A builder for the database at `url` (`postgres://user[:password]@host:port/db`
    /// or `host=… user=… dbname=…`) keeping the entries of `service`
    /// (`[A-Za-z0-9_.-]+`; services sharing one database never see each
    /// other's entries).
    pub fn builder(url: impl Into<String>, service: impl Into<String>) -> PostgresStorageBuilder {
        PostgresStorageBuilder {
            url: url.into(),
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

impl PostgresStorageBuilder {
    shared::shared_setters!();

    /// Whom to trust and who the store is over TLS (extra roots, client
    /// certificate, server name, or no verification for a test server);
    /// replaces what the URL's `sslrootcert`, `sslcert` and `sslkey` said.
    /// Whether TLS is used stays the `sslmode`'s choice.
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// The storage. It connects (and creates its tables) on first use, so
    /// building needs no server.
    ///
    /// # Errors
    ///
    /// A malformed URL or TLS key (an `sslrootcert` that cannot be read), a
    /// service name outside `[A-Za-z0-9_.-]`, a replica id with spaces, or a
    /// zero TTL or timeout.
    pub fn build(self) -> Result<PostgresStorage, StorageError> {
        self.options.validate()?;
        let (mut config, mut tls) = crate::tls::postgres::parse(&self.url).map_err(|e| match e {
            PgUrlError::Driver(e) => StorageError::new(format!("invalid PostgreSQL URL: {e}")),
            PgUrlError::Tls(why) => StorageError::new(format!("invalid PostgreSQL URL: {why}")),
        })?;
        if let Some(options) = self.tls {
            tls.set_options(options);
        }
        config.connect_timeout(self.options.timeout);
        if config.get_application_name().is_none() {
            config.application_name("axum-watch");
        }
        let backend = PostgresBackend {
            url: crate::redact(&self.url).into_owned(),
            config,
            tls,
            session: std::sync::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        };
        Ok(PostgresStorage {
            inner: Replicated::new(backend, self.options),
        })
    }
}

struct PostgresBackend {
    /// Redacted, for `Debug`.
    url: String,
    config: tokio_postgres::Config,
    tls: PgTls,
    /// The open session; locked for bookkeeping only.
    session: std::sync::Mutex<Option<Arc<Session>>>,
    /// Held while a session is being made, so that one connects at a time.
    connecting: tokio::sync::Mutex<()>,
}

/// One connection with its prepared statements.
struct Session {
    /// Ends the connection's task with the last user of the session: a
    /// session forgotten after a timeout does not linger on a frozen peer.
    _task: AbortOnDrop,
    client: Client,
    record: Statement,
    alert: Statement,
    latest: Statement,
    history: Statement,
    alerts: Statement,
    claim: Statement,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn pg_error(what: &str, e: &tokio_postgres::Error) -> StorageError {
    let detail = match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    };
    StorageError::new(format!("postgres: {what}: {detail}"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresBackend {
    /// The open session, or a new one: connect, create the tables, prepare.
    ///
    /// Nothing here has a limit of its own beyond the TCP connect timeout:
    /// every caller bounds the whole (see `Replicated`), and dropping the
    /// future drops the half-made connection.
    async fn session(&self) -> Result<Arc<Session>, StorageError> {
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let (tls, _peer) = self.tls.connector();
        let (client, connection) = self
            .config
            .connect(tls)
            .await
            .map_err(|e| pg_error("could not connect", &e))?;
        let task = AbortOnDrop(
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "shared storage connection closed");
                }
            })
            .abort_handle(),
        );
        client
            .batch_execute(&format!("SELECT pg_advisory_xact_lock({SCHEMA_LOCK});\n{SCHEMA}"))
            .await
            .map_err(|e| pg_error("could not create the tables", &e))?;
        // Health history is not worth a disk flush per write: a crash of the
        // database may lose its last few entries, never corrupt them.
        client
            .batch_execute("SET synchronous_commit TO off")
            .await
            .map_err(|e| pg_error("could not configure the session", &e))?;
        let prepare = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .prepare(sql)
                    .await
                    .map_err(|e| pg_error("could not prepare a statement", &e))
            }
        };
        let (record, alert, latest, history, alerts, claim) = tokio::try_join!(
            prepare(RECORD),
            prepare(ALERT),
            prepare(LATEST),
            prepare(HISTORY),
            prepare(ALERTS),
            prepare(CLAIM)
        )?;
        let session = Arc::new(Session {
            _task: task,
            client,
            record,
            alert,
            latest,
            history,
            alerts,
            claim,
        });
        *self.slot() = Some(Arc::clone(&session));
        Ok(session)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Session>>> {
        self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open session, unless its connection closed.
    fn current(&self) -> Option<Arc<Session>> {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|s| s.client.is_closed()) {
            *slot = None;
        }
        slot.clone()
    }
}

impl Backend for PostgresBackend {
    async fn write(&self, _seq: u64, op: &Op, options: &Options, now: i64) -> Result<(), StorageError> {
        let session = self.session().await?;
        match op {
            Op::Record { at, result } => {
                let body = shared::encode(result)?;
                let cutoff = now.saturating_sub(millis(options.result_ttl));
                let keep_old = count(options.history_size.saturating_sub(1));
                session
                    .client
                    .execute(
                        &session.record,
                        &[
                            &options.service,
                            &options.replica,
                            &result.name,
                            at,
                            &body,
                            &cutoff,
                            &keep_old,
                        ],
                    )
                    .await
                    .map_err(|e| pg_error("write a result", &e))?;
            }
            Op::Alert { at, alert } => {
                let body = shared::encode(alert)?;
                let cutoff = now.saturating_sub(millis(options.alert_ttl));
                let keep_old = count(options.max_alerts.saturating_sub(1));
                session
                    .client
                    .execute(
                        &session.alert,
                        &[&options.service, &options.replica, at, &body, &cutoff, &keep_old],
                    )
                    .await
                    .map_err(|e| pg_error("write an alert", &e))?;
            }
        }
        Ok(())
    }

    async fn latest(&self, options: &Options, since: i64) -> Result<Latest, StorageError> {
        let session = self.session().await?;
        let rows = session
            .client
            .query(&session.latest, &[&options.service, &since])
            .await
            .map_err(|e| pg_error("read latest results", &e))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let at: i64 = row.get(0);
                let body: &str = row.get(1);
                shared::decode::<ProbeResult>(body).map(|r| (at, r))
            })
            .collect())
    }

    async fn history(&self, options: &Options, since: i64) -> Result<History, StorageError> {
        let session = self.session().await?;
        let rows = session
            .client
            .query(
                &session.history,
                &[&options.service, &since, &count(options.history_size)],
            )
            .await
            .map_err(|e| pg_error("read history", &e))?;
        let mut out: History = Vec::new();
        for row in &rows {
            let probe: &str = row.get(0);
            let body: &str = row.get(1);
            let Some(result) = shared::decode::<ProbeResult>(body) else {
                continue;
            };
            match out.last_mut() {
                Some((name, results)) if name == probe => results.push(result),
                _ => out.push((probe.to_owned(), vec![result])),
            }
        }
        Ok(out)
    }

    async fn alerts(&self, options: &Options, since: i64) -> Result<Vec<AlertRecord>, StorageError> {
        let session = self.session().await?;
        let rows = session
            .client
            .query(&session.alerts, &[&options.service, &since, &count(options.max_alerts)])
            .await
            .map_err(|e| pg_error("read alerts", &e))?;
        Ok(rows
            .iter()
            .filter_map(|row| shared::decode(row.get::<_, &str>(0)))
            .collect())
    }

    async fn claim(&self, options: &Options, key: &str, window: Duration) -> Result<bool, StorageError> {
        let session = self.session().await?;
        let rows = session
            .client
            .query(
                &session.claim,
                &[&options.service, &key, &options.replica, &millis(window).max(1)],
            )
            .await
            .map_err(|e| pg_error("claim an alert", &e))?;
        Ok(!rows.is_empty())
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let session = self.session().await?;
        session
            .client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| pg_error("ping", &e))
    }

    fn reset(&self) {
        *self.slot() = None;
    }
}

shared::delegate_storage!(PostgresStorage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let url = "postgres://app:hunter2@127.0.0.1:5432/app";
        let s = PostgresStorage::builder(url, "svc").build().unwrap();
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");
        assert!(!format!("{:?}", PostgresStorage::builder(url, "svc")).contains("hunter2"));
    }

    #[test]
    fn bad_input_is_refused_with_a_clear_error() {
        let e = PostgresStorage::builder("postgres://a@b:notaport/x", "svc")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("invalid PostgreSQL URL"), "{e}");
        let e = PostgresStorage::builder("postgres://127.0.0.1/x", "svc")
            .alert_ttl(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("non-zero"), "{e}");
    }
}
