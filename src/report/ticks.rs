//! Chart axes: round tick values (steps of 1, 2 or 5 times a power of
//! ten) and the plot frame with its labelled ticks.

use std::fmt::Write as _;

use super::svg::escape;

/// An axis: its range, widened to whole steps, and the round values
/// (steps of 1, 2 or 5 times a power of ten) labelled on it.
pub(super) struct Ticks {
    pub lo: f64,
    pub hi: f64,
    pub values: Vec<f64>,
    /// Decimals every label needs.
    pub digits: usize,
}

impl Ticks {
    /// About five ticks over `lo..hi`.
    pub fn new(lo: f64, hi: f64) -> Self {
        let span = if hi - lo > 1e-12 {
            hi - lo
        } else {
            lo.abs().max(1.0)
        };
        let raw = span / 5.0;
        let power = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * power)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * power);
        let first = (lo / step).floor();
        let mut last = (hi / step).ceil();
        if last <= first {
            last = first + 1.0;
        }
        let values: Vec<f64> = (0..=(last - first) as usize)
            .map(|i| (first + i as f64) * step)
            .collect();
        let digits = (-step.log10().floor()).max(0.0) as usize;
        Self {
            lo: first * step,
            hi: last * step,
            values,
            digits,
        }
    }

    pub fn label(&self, v: f64) -> String {
        // No "-0".
        let v = if v.abs() < 1e-12 { 0.0 } else { v };
        format!("{v:.*}", self.digits)
    }
}

/// The plot frame `(left, top, width, height)` with the ticks of x (and of
/// y when given).
pub(super) fn axes(
    svg: &mut String,
    (left, top, pw, ph): (f64, f64, f64, f64),
    xs: &Ticks,
    ys: Option<&Ticks>,
    x_label: &str,
) {
    let _ = write!(
        svg,
        r##"<rect x="{left:.0}" y="{top:.0}" width="{pw:.0}" height="{ph:.0}" fill="none" stroke="#444"/>"##
    );
    for &v in &xs.values {
        let x = left + (v - xs.lo) / (xs.hi - xs.lo) * pw;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.0}" x2="{x:.1}" y2="{:.0}" stroke="#444"/><text x="{x:.1}" y="{:.0}" font-size="10" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 4.0,
            top + ph + 16.0,
            xs.label(v)
        );
    }
    if let Some(ys) = ys {
        for &v in &ys.values {
            let y = top + (1.0 - (v - ys.lo) / (ys.hi - ys.lo)) * ph;
            let _ = write!(
                svg,
                r##"<line x1="{:.0}" y1="{y:.1}" x2="{left:.0}" y2="{y:.1}" stroke="#444"/><text x="{:.0}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
                left - 4.0,
                left - 6.0,
                y + 3.0,
                ys.label(v)
            );
        }
    }
    if !x_label.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{:.0}" y="{:.0}" font-size="11" text-anchor="middle">{}</text>"#,
            left + pw / 2.0,
            top + ph + 32.0,
            escape(x_label)
        );
    }
}
