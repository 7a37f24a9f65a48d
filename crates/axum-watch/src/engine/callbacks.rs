//! State-change callbacks, isolated so that a panicking or slow one never
//! breaks a check, a request or the alert log.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::model::AlertRecord;

type SyncFn = dyn Fn(&AlertRecord) + Send + Sync;
type AsyncFn = dyn Fn(AlertRecord) -> BoxFuture<'static, ()> + Send + Sync;

/// A registered state-change callback.
#[derive(Clone)]
pub(crate) enum Callback {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sync(_) => "Callback::Sync",
            Self::Async(_) => "Callback::Async",
        })
    }
}

impl Callback {
    pub(crate) fn sync(f: impl Fn(&AlertRecord) + Send + Sync + 'static) -> Self {
        Self::Sync(Arc::new(f))
    }

    pub(crate) fn asynchronous<F, Fut>(f: F) -> Self
    where
        F: Fn(AlertRecord) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::Async(Arc::new(move |alert| f(alert).boxed()))
    }

    /// Calls the callback: a sync one inline, an async one on its own task.
    /// A panic in either is caught and logged.
    pub(crate) fn invoke(&self, alert: &AlertRecord) {
        match self {
            Self::Sync(f) => {
                if std::panic::catch_unwind(AssertUnwindSafe(|| f(alert))).is_err() {
                    tracing::error!(probe = %alert.probe, "state-change callback panicked");
                }
            }
            Self::Async(f) => {
                let f = Arc::clone(f);
                let alert = alert.clone();
                tokio::spawn(async move {
                    let probe = alert.probe.clone();
                    let run = AssertUnwindSafe(async move { f(alert).await }).catch_unwind();
                    if run.await.is_err() {
                        tracing::error!(probe = %probe, "async state-change callback panicked");
                    }
                });
            }
        }
    }
}
