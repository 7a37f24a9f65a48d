//! [`SqlxProbe`]: an active check over the application's own sqlx pool, for
//! any driver sqlx supports.

use std::fmt;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Database, Pool};

use super::sql::{DEFAULT_CONNECT_TIMEOUT, failed, step};
use crate::{Outcome, Probe, ProbeError};

/// Checks a database through an existing [`sqlx::Pool`] of any driver:
/// acquires a connection and pings it.
///
/// The probe shares the application's pool, so it fails when the
/// application cannot get a working connection either (database down, pool
/// exhausted for longer than [`acquire_timeout`](Self::acquire_timeout), pool
/// closed). The `sqlx` feature enables sqlx without drivers: the application
/// enables the drivers it uses (`postgres`, `mysql`, `sqlite`). The default
/// name is `sqlx`; rename it with [`ProbeExt::with_name`](crate::ProbeExt::with_name).
///
/// Details: `backend` (the driver's name, such as `PostgreSQL`), and the
/// pool's state as the check found it, before taking its own connection:
/// `pool_size` (open connections), `idle_connections`, `max_connections`
/// and `min_connections`. The pool's connect options, which may hold a
/// password, are never shown.
///
/// sqlx retries a failing connect until its wait is over and then only says
/// it timed out; so when the wait ends with no connection open at all, the
/// probe makes one direct attempt with the pool's options (bounded by half the
/// acquire timeout) and adds its error, such as `Connection refused`.
///
/// ```no_run
/// use std::time::Duration;
/// use axum_watch::{HealthRegistry, ProbeExt, probes::SqlxProbe};
///
/// // Any driver: `PgPool`, `MySqlPool`, `SqlitePool`…
/// fn register<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> HealthRegistry {
///     let db = SqlxProbe::new(pool.clone()).acquire_timeout(Duration::from_secs(2));
///     HealthRegistry::builder().add(db.with_name("orders-db")).build().unwrap()
/// }
/// # let _ = register::<sqlx::Postgres>;
/// ```
pub struct SqlxProbe<DB: Database> {
    pool: Pool<DB>,
    acquire_timeout: Duration,
}

impl<DB: Database> SqlxProbe<DB> {
    /// A probe over `pool` (a clone of the application's pool shares its
    /// connections).
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            acquire_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// How long to wait for a connection from the pool, and for the ping
    /// after it (default 5 s). The registry's timeout still bounds the whole
    /// check.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

impl<DB: Database> SqlxProbe<DB> {
    /// sqlx keeps retrying a failing connect until the wait is over and then
    /// only says it timed out. When the pool has no connection open at all,
    /// one direct attempt with the pool's options tells why.
    async fn diagnose(&self, error: ProbeError) -> ProbeError {
        if self.pool.size() > 0 || error.kind() != Some("Timeout") {
            return error;
        }
        let options = self.pool.connect_options();
        let attempt = tokio::time::timeout(self.acquire_timeout / 2, options.connect()).await;
        match attempt {
            Ok(Err(cause)) => {
                let cause = failed("a direct connection attempt failed", cause);
                ProbeError::with_kind("Timeout", format!("{}; {}", error.message(), cause.message()))
            }
            Ok(Ok(conn)) => {
                // The database answers now: the timeout stands on its own.
                let _ = tokio::time::timeout(self.acquire_timeout / 2, conn.close()).await;
                error
            }
            Err(_) => error,
        }
    }
}

impl<DB: Database> Probe for SqlxProbe<DB> {
    fn name(&self) -> &str {
        "sqlx"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        if self.pool.is_closed() {
            return Err(ProbeError::msg(format!("the {} pool is closed", DB::NAME)));
        }
        let size = self.pool.size();
        let idle = self.pool.num_idle();
        let doing = format!("acquiring a {} connection from the pool", DB::NAME);
        let mut conn = match step(self.acquire_timeout, &doing, self.pool.acquire()).await {
            Ok(conn) => conn,
            Err(error) => return Err(self.diagnose(error).await),
        };
        step(self.acquire_timeout, "pinging the database", conn.ping()).await?;
        let options = self.pool.options();
        Ok(Outcome::healthy()
            .detail("backend", DB::NAME)
            .detail("pool_size", size)
            .detail("idle_connections", idle)
            .detail("max_connections", options.get_max_connections())
            .detail("min_connections", options.get_min_connections()))
    }
}

impl<DB: Database> fmt::Debug for SqlxProbe<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pool itself: its connect options may carry a password.
        f.debug_struct("SqlxProbe")
            .field("backend", &DB::NAME)
            .field("pool_size", &self.pool.size())
            .field("idle_connections", &self.pool.num_idle())
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}
