//! Maintenance mode: while active, `/ready` answers 200 `maintenance` and
//! alerters stay quiet; transitions are still recorded.
//!
//! The end is kept twice: as the wall-clock instant callers gave (shown in
//! responses) and as a monotonic deadline (used to expire it), so that a
//! wall-clock jump cannot stretch or cut a window and paused-time tests can
//! move it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::model::{MaintenanceStatus, Timestamp};

#[derive(Debug, Clone, Copy)]
struct Window {
    until: Option<(Timestamp, Instant)>,
}

/// The current window, if any.
#[derive(Debug)]
pub(crate) struct Maintenance {
    window: Mutex<Option<Window>>,
    /// `false` only when no window is set, so the request path can skip the lock.
    maybe_active: AtomicBool,
    /// Told of every window set or cleared, for watchers of readiness.
    changes: tokio::sync::watch::Sender<()>,
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            window: Mutex::default(),
            maybe_active: AtomicBool::default(),
            changes: tokio::sync::watch::Sender::new(()),
        }
    }
}

impl Maintenance {
    fn window(&self) -> MutexGuard<'_, Option<Window>> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts (or replaces) a window ending at `until`, or with no end.
    pub(crate) fn set(&self, until: Option<Timestamp>) {
        let until = until.map(|end| {
            let left = end.instant().duration_since(jiff::Timestamp::now());
            let left = std::time::Duration::try_from(left).unwrap_or_default();
            (end, Instant::now() + left)
        });
        // The hint changes under the lock, in step with the window.
        let mut window = self.window();
        *window = Some(Window { until });
        self.maybe_active.store(true, Ordering::Release);
        drop(window);
        self.changes.send_replace(());
    }

    pub(crate) fn clear(&self) {
        let mut window = self.window();
        *window = None;
        self.maybe_active.store(false, Ordering::Release);
        drop(window);
        self.changes.send_replace(());
    }

    /// Marks every window set or cleared from now on.
    // Read by the watching faces only (gRPC `Watch`).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn changes(&self) -> tokio::sync::watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// When the active window ends by itself, if it has an end.
    // Read by the watching faces only (gRPC `Watch`).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if !self.maybe_active.load(Ordering::Acquire) {
            return None;
        }
        self.window().and_then(|w| w.until).map(|(_, deadline)| deadline)
    }

    /// The state now; a window whose end has passed is closed on the way.
    pub(crate) fn status(&self) -> MaintenanceStatus {
        let mut window = self.window();
        match *window {
            Some(Window {
                until: Some((_, deadline)),
            }) if Instant::now() >= deadline => {
                *window = None;
                self.maybe_active.store(false, Ordering::Release);
                MaintenanceStatus {
                    active: false,
                    until: None,
                }
            }
            Some(Window { until }) => MaintenanceStatus {
                active: true,
                until: until.map(|(end, _)| end),
            },
            None => MaintenanceStatus {
                active: false,
                until: None,
            },
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.maybe_active.load(Ordering::Acquire) && self.status().active
    }
}
