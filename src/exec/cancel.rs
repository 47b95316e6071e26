//! Stopping stages from outside the executor: Ctrl-C, or `watch` when an
//! edit took stages out of the plan.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Stops stages: every one (Ctrl-C), or some by hash (`mpx watch`, when an
/// edit took them out of the plan). `drain` only stops new ones starting.
/// A stopped training stage saves a checkpoint first.
#[derive(Debug)]
pub struct Cancel {
    all: AtomicBool,
    drain: AtomicBool,
    stages: Mutex<BTreeSet<String>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    pub const fn new() -> Self {
        Self {
            all: AtomicBool::new(false),
            drain: AtomicBool::new(false),
            stages: Mutex::new(BTreeSet::new()),
        }
    }

    /// Stops everything; returns whether it was already stopping.
    pub fn all(&self) -> bool {
        self.all.swap(true, Ordering::SeqCst)
    }

    pub fn drain(&self) {
        self.drain.store(true, Ordering::SeqCst);
    }

    pub fn stage(&self, hash: &str) {
        self.stages
            .lock()
            .expect("not poisoned")
            .insert(hash.to_owned());
    }

    /// Clears stage cancellations and draining (not a Ctrl-C).
    pub fn reset(&self) {
        self.drain.store(false, Ordering::SeqCst);
        self.stages.lock().expect("not poisoned").clear();
    }

    pub fn everything(&self) -> bool {
        self.all.load(Ordering::SeqCst)
    }

    /// Whether a running stage should stop.
    pub fn is_cancelled(&self, hash: &str) -> bool {
        self.everything() || self.stages.lock().expect("not poisoned").contains(hash)
    }

    /// Whether new stages should not start.
    pub fn stopping(&self) -> bool {
        self.everything() || self.drain.load(Ordering::SeqCst)
    }
}
