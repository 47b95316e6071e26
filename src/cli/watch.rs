//! `mpx watch`: run, then re-run what each edit changed.
//!
//! One cycle = check, plan, run the stages not in the store, render the
//! reports. The executor runs on its own thread while this one waits for
//! file events; when an edit arrives, stages that left the plan are
//! cancelled (training saves a checkpoint), the rest finish, and the next
//! cycle starts with the new plan.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

use super::load::open;
use super::run::{choose_device, executor, render_reports, RunArgs, CANCEL};
use crate::project::{absolute, cycle};
use crate::report::table::Table;
use crate::watch::{Debouncer, Watched};

/// How long the watched files must be quiet before a cycle starts.
const QUIET: Duration = Duration::from_millis(250);

pub fn watch(args: &RunArgs) -> ExitCode {
    // The device is chosen once, from the file as it is now (a broken file
    // leaves it to `--device`, else the CPU); later edits of `device` take
    // effect on the next `mpx watch`.
    let first = crate::project::check_file(&args.file, &args.sets).ok();
    let devices = match choose_device(args, first.as_ref()) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // The executor too: `--executor`, else `mpx.toml` as it is now.
    let layout = match crate::project::Layout::locate(&args.file, args.store.as_deref()) {
        Ok(layout) => layout,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.detach {
        eprintln!("error: `mpx watch` follows its jobs; --detach is for `mpx run`");
        return ExitCode::from(2);
    }
    let executor = match executor(args, &layout, devices) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let mut watcher =
        match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res {
                for p in event.paths {
                    let _ = tx.send(p);
                }
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("error: cannot watch files: {e}");
                return ExitCode::FAILURE;
            }
        };
    let mut subscribed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut watched = Watched::default();
    let mut fingerprint: std::collections::BTreeMap<PathBuf, Option<blake3::Hash>>;
    let mut tables: Vec<Table> = Vec::new();
    let mut cycle = 0usize;
    let mut debouncer = Debouncer::new(QUIET);
    loop {
        {
            cycle += 1;
            // The files' contents before they are read: an edit from here on
            // differs from this snapshot, so none is lost while we check.
            watched.files.insert(absolute(&args.file));
            let before = watched.fingerprint();
            // Check and plan; a broken file keeps the last good report.
            let Ok(loaded) = open(&args.file, &args.sets, &args.only, args.store.as_deref()) else {
                println!(
                    "cycle {cycle}: the experiment has errors (above); keeping the last report"
                );
                resubscribe(&mut watcher, &watched, &mut subscribed);
                fingerprint = before;
                if !wait(&rx, &mut debouncer, &watched, &mut fingerprint) {
                    return ExitCode::from(130);
                }
                continue;
            };
            watched = loaded.inputs();
            resubscribe(&mut watcher, &watched, &mut subscribed);
            fingerprint = watched.fingerprint();
            for (path, hash) in before {
                if let Some(slot) = fingerprint.get_mut(&path) {
                    *slot = hash;
                }
            }
            // Run this plan on a worker thread until it ends or an edit
            // replaces it.
            let mut edited = || {
                let quick = Duration::from_millis(100);
                poll(&rx, &mut debouncer, &watched, &mut fingerprint, quick)
            };
            let reopen = || {
                let next = open(&args.file, &args.sets, &args.only, args.store.as_deref()).ok();
                if next.is_none() {
                    println!("the experiment has errors (above); finishing the running stages of the last good plan");
                }
                next
            };
            let ran = cycle::run(
                &loaded,
                &*executor,
                &CANCEL,
                args.quiet,
                &mut edited,
                &reopen,
            );
            let new_tables = render_reports(&loaded, args.device.as_deref()).1;
            let summary = cycle::summarize(&ran.outcomes, &tables, &new_tables);
            if !new_tables.is_empty() {
                tables = new_tables;
            }
            println!("cycle {cycle}: {summary}");
            let replaced = ran.replaced;
            if CANCEL.everything() {
                return ExitCode::from(130);
            }
            if replaced {
                continue;
            }
            println!(
                "watching {} file{} (Ctrl-C to stop)",
                watched.files.len(),
                if watched.files.len() == 1 { "" } else { "s" }
            );
        }
        if !wait(&rx, &mut debouncer, &watched, &mut fingerprint) {
            return ExitCode::from(130);
        }
    }
}

/// Waits for an edit that changes a watched file; false on Ctrl-C.
fn wait(
    rx: &mpsc::Receiver<PathBuf>,
    debouncer: &mut Debouncer,
    watched: &Watched,
    fingerprint: &mut std::collections::BTreeMap<PathBuf, Option<blake3::Hash>>,
) -> bool {
    loop {
        if CANCEL.everything() {
            return false;
        }
        if poll(
            rx,
            debouncer,
            watched,
            fingerprint,
            Duration::from_millis(200),
        ) {
            return true;
        }
    }
}

/// Takes events for up to `timeout`; true when a burst has ended and some
/// watched file's content differs from `fingerprint` (which is updated).
fn poll(
    rx: &mpsc::Receiver<PathBuf>,
    debouncer: &mut Debouncer,
    watched: &Watched,
    fingerprint: &mut std::collections::BTreeMap<PathBuf, Option<blake3::Hash>>,
    timeout: Duration,
) -> bool {
    let until = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        let limit = debouncer.deadline().map_or(until, |d| d.min(until));
        match rx.recv_timeout(limit.saturating_duration_since(now)) {
            Ok(path) => {
                if watched.matters(&path) {
                    debouncer.push(path, Instant::now());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
        if debouncer.ready(Instant::now()).is_some() {
            let now = watched.fingerprint();
            if now != *fingerprint {
                *fingerprint = now;
                return true;
            }
        }
        if Instant::now() >= until {
            return false;
        }
    }
}

/// Subscribes to the folders of the watched files (not recursively).
fn resubscribe(
    watcher: &mut notify::RecommendedWatcher,
    watched: &Watched,
    subscribed: &mut BTreeSet<PathBuf>,
) {
    let want = watched.folders();
    for gone in subscribed.difference(&want) {
        let _ = watcher.unwatch(gone);
    }
    for new in want.difference(subscribed) {
        if let Err(e) = watcher.watch(new, RecursiveMode::NonRecursive) {
            eprintln!("warning: cannot watch {}: {e}", new.display());
        }
    }
    *subscribed = want;
}
