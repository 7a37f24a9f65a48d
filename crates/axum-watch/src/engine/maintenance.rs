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
#[derive(Debug, Default)]
pub(crate) struct Maintenance {
    window: Mutex<Option<Window>>,
    /// `false` only when no window is set, so the request path can skip the lock.
    maybe_active: AtomicBool,
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
    }

    pub(crate) fn clear(&self) {
        let mut window = self.window();
        *window = None;
        self.maybe_active.store(false, Ordering::Release);
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
