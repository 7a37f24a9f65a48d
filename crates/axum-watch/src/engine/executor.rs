//! Where checks run: by default on a small runtime of the registry's own,
//! so that a probe which blocks its thread (a synchronous driver call, a
//! `std::thread::sleep`) stalls only other checks, never the application's
//! request handlers.
//!
//! With that runtime comes a one-thread runtime for the runs themselves (the
//! poll loop, starting every check, waiting for it under its timeout,
//! recording and publishing), which never runs a check: a run over
//! thousands of probes costs the application's workers nothing but the
//! wait for its report, and checks that block every check thread still time
//! out on time.

use std::cell::Cell;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// Where the registry runs its checks; see
/// [`HealthRegistryBuilder::check_runtime`](crate::HealthRegistryBuilder::check_runtime).
///
/// ```
/// # extern crate axum_watch as watch;
/// use watch::{HealthRegistry, options::CheckRuntime};
///
/// // Checks on two threads of their own, whatever runtime asks.
/// let isolated = HealthRegistry::builder().check_runtime(CheckRuntime::dedicated(2)).build().unwrap();
/// // Checks on the application's runtime, as tests with paused time need.
/// let shared = HealthRegistry::builder().check_runtime(CheckRuntime::Caller).build().unwrap();
/// # drop((isolated, shared));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckRuntime {
    /// The default: [`Dedicated`](Self::Dedicated) with two threads when the
    /// caller runs on a multi-threaded runtime (a server), the caller's own
    /// runtime when it is a current-thread one — which is what tests use,
    /// and the only kind whose clock can be paused, a clock a runtime of the
    /// registry's own would not share.
    #[default]
    Auto,
    /// A multi-threaded tokio runtime of the registry's own with this many
    /// worker threads, started on the first check. A probe that blocks its
    /// thread holds one of them: other checks go on on the rest, and the
    /// application's runtime is untouched.
    Dedicated {
        /// Worker threads (at least 1).
        threads: usize,
    },
    /// The runtime of whoever asks for the check (the application's). A
    /// blocking probe then blocks one of the application's workers; choose
    /// this for paused-time tests, whose clock only the caller's runtime
    /// shares, or when every probe is known not to block.
    Caller,
}

impl CheckRuntime {
    /// A dedicated runtime with `threads` worker threads.
    #[must_use]
    pub const fn dedicated(threads: usize) -> Self {
        Self::Dedicated { threads }
    }
}

/// A runtime shut down without waiting for its tasks when the application
/// lets go of the registry (or the last task of the runtime does): a stuck
/// check must not hold up the application's exit, and a runtime may not be
/// dropped by blocking inside another one.
#[derive(Debug)]
struct Owned(Mutex<Option<Runtime>>);

impl Owned {
    fn shutdown(&self) {
        let runtime = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.shutdown();
    }
}

thread_local! {
    /// Whether this thread is one of a registry's own (a check or run thread).
    static OWN_THREAD: Cell<bool> = const { Cell::new(false) };
}

type Started = OnceLock<Option<(Handle, Arc<Owned>)>>;

/// Spawns checks and runs where the configuration says.
#[derive(Debug)]
pub(crate) struct Executor {
    choice: CheckRuntime,
    runtime: Started,
    /// The runs' own thread, beside the check runtime.
    driver: Started,
    /// The application's runtime: the last one that asked for a run, where
    /// probes marked to run on the caller's runtime go.
    caller: Mutex<Option<Handle>>,
}

/// Starts a runtime of the registry's own with `threads` workers named `name`.
fn start<'a>(slot: &'a Started, threads: usize, name: &'static str) -> Option<&'a Handle> {
    let started = slot.get_or_init(|| {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .on_thread_start(|| OWN_THREAD.with(|own| own.set(true)))
            .enable_all()
            .build();
        match built {
            Ok(runtime) => Some((runtime.handle().clone(), Arc::new(Owned(Mutex::new(Some(runtime)))))),
            Err(e) => {
                tracing::error!(error = %e, runtime = name, "could not start a runtime of the registry's own: using the caller's");
                None
            }
        }
    });
    started.as_ref().map(|(handle, _)| handle)
}

impl Executor {
    pub(crate) fn new(choice: CheckRuntime) -> Self {
        Self {
            choice,
            runtime: OnceLock::new(),
            driver: OnceLock::new(),
            caller: Mutex::new(None),
        }
    }

    /// Stops the registry's own runtimes, if started, dropping every run and
    /// check still on them; later spawns there are cancelled at once.
    pub(crate) fn shutdown(&self) {
        for slot in [&self.runtime, &self.driver] {
            if let Some(Some((_, owned))) = slot.get() {
                owned.shutdown();
            }
        }
    }

    /// The dedicated runtime's handle, started on first use; `None` on the
    /// caller's runtime (chosen, or because threads could not be started).
    fn dedicated(&self) -> Option<&Handle> {
        let threads = match self.choice {
            CheckRuntime::Dedicated { threads } => threads,
            CheckRuntime::Auto
                if Handle::try_current()
                    .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread) =>
            {
                2
            }
            CheckRuntime::Auto | CheckRuntime::Caller => return None,
        };
        start(&self.runtime, threads, "axum-watch-check")
    }

    /// Spawns `check` on the check runtime, or on the caller's when
    /// `on_caller` or configured so.
    pub(crate) fn spawn<F>(&self, on_caller: bool, check: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if on_caller {
            let caller = self.caller.lock().unwrap_or_else(PoisonError::into_inner).clone();
            return match caller {
                Some(handle) if OWN_THREAD.with(Cell::get) => handle.spawn(check),
                _ => tokio::spawn(check),
            };
        }
        match self.dedicated() {
            Some(handle) => handle.spawn(check),
            None => tokio::spawn(check),
        }
    }

    /// Remembers the runtime of whoever asks, unless it is one of the
    /// registry's own: the probes that must run on the application's
    /// runtime go there.
    pub(crate) fn remember_caller(&self) {
        if !OWN_THREAD.with(Cell::get)
            && let Ok(current) = Handle::try_current()
        {
            *self.caller.lock().unwrap_or_else(PoisonError::into_inner) = Some(current);
        }
    }

    /// Spawns a run, or the poll loop, on the runs' own thread when checks
    /// have a runtime of their own, else on the caller's runtime. Remembers
    /// the caller's runtime for the probes that must run there.
    pub(crate) fn spawn_run<F>(&self, run: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.dedicated().is_none() {
            return tokio::spawn(run);
        }
        self.remember_caller();
        match start(&self.driver, 1, "axum-watch-run") {
            Some(handle) => handle.spawn(run),
            None => tokio::spawn(run),
        }
    }
}
