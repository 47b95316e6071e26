//! What a run shows while it works: one progress bar per running stage
//! (loss, tokens/s, ETA) when stderr is a terminal, plain timestamped lines
//! otherwise (logs, CI, pipes).

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::stages::Progress;

/// Where stage progress goes.
pub struct Display {
    bars: Option<MultiProgress>,
    started: Instant,
    quiet: bool,
}

impl Display {
    /// Bars on a terminal, lines elsewhere; `quiet` shows neither.
    pub fn new(quiet: bool) -> Self {
        let bars = (!quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)));
        Self {
            bars,
            started: Instant::now(),
            quiet,
        }
    }

    /// Prints a line above the bars (or to stderr).
    pub fn line(&self, text: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None if self.quiet => {}
            None => eprintln!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64()),
        }
    }

    /// A reporter for one stage.
    pub fn stage(&self, name: &str) -> StageProgress<'_> {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:<34!} {bar:24.cyan/blue} {pos:>5}/{len:<5} {msg} (ETA {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        StageProgress {
            display: self,
            name: name.to_owned(),
            bar,
            last: Mutex::new((Instant::now(), 0)),
        }
    }
}

/// One stage's bar, or its occasional log line.
pub struct StageProgress<'a> {
    display: &'a Display,
    name: String,
    bar: Option<ProgressBar>,
    /// When the last plain line was printed, and at which tenth.
    last: Mutex<(Instant, u64)>,
}

impl Progress for StageProgress<'_> {
    fn update(&self, done: u64, total: u64, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(message.to_owned());
            return;
        }
        // Plain output: a line at each tenth, at most every 5 seconds.
        let tenth = if total == 0 { 10 } else { done * 10 / total };
        let mut last = self.last.lock().expect("not poisoned");
        if tenth > last.1 && (last.0.elapsed() >= Duration::from_secs(5) || done == total) {
            *last = (Instant::now(), tenth);
            self.display
                .line(&format!("  {} {done}/{total} {message}", self.name));
        }
    }
}

impl Drop for StageProgress<'_> {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some(m) = &self.display.bars {
                m.remove(bar);
            }
        }
    }
}
