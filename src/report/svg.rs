//! Inline SVG charts for the HTML report: training curves and each metric
//! per row with 95% interval whiskers. Self-contained (no scripts, no
//! fonts, no network); every label is escaped.

use std::fmt::Write as _;

use super::ticks::{axes, Ticks};

/// A row's colour in every chart of a report: row `i` (the baseline,
/// first, is `PALETTE[0]`, a neutral grey).
pub const PALETTE: [&str; 9] = [
    "#555555", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
    "#17becf",
];

/// The colour of table row `i`.
pub fn color(i: usize) -> &'static str {
    if i < PALETTE.len() {
        PALETTE[i]
    } else {
        PALETTE[1 + (i - 1) % (PALETTE.len() - 1)]
    }
}

/// A chart title's width (bold, 13 px).
fn title_width(title: &str) -> f64 {
    1.12 * text_width(title, 13.0) + 20.0
}

/// A generous width of `text` at `size` px in a sans-serif face (no font
/// is measured: the SVG has none of its own), so labels are never cut.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 0.32,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.92,
            c if c.is_ascii_uppercase() => 0.72,
            c if c.is_ascii() => 0.58,
            _ => 1.0,
        })
        .sum::<f64>()
        * size
}

/// Escapes text for SVG/HTML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A line per series: `(label, [(x, y)])`, e.g. training loss per step.
pub fn lines(title: &str, x_label: &str, series: &[Series]) -> String {
    let legend = series
        .iter()
        .map(|s| text_width(&s.label, 11.0))
        .fold(0.0, f64::max);
    let (left, top, bottom) = (60.0, 30.0, 40.0);
    let right = legend + 48.0;
    let w = (left + 440.0 + right).max(title_width(title));
    let h = (top + bottom + 14.0 * series.len() as f64 + 10.0).max(300.0);
    let points = series.iter().flat_map(|s| {
        s.points
            .iter()
            .copied()
            .chain(s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
    });
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points.filter(|p| p.1.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return String::new();
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let (xt, yt) = (Ticks::new(x0, x1), Ticks::new(y0, y1));
    let ((x0, x1), (y0, y1)) = ((xt.lo, xt.hi), (yt.lo, yt.hi));
    let pw = w - left - right;
    let ph = h - top - bottom;
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| top + (1.0 - (y - y0) / (y1 - y0)) * ph;
    let mut svg = header(w, h, title);
    axes(&mut svg, (left, top, pw, ph), &xt, Some(&yt), x_label);
    for (
        i,
        Series {
            label,
            points: pts,
            band,
            color,
        },
    ) in series.iter().enumerate()
    {
        // The seeds' range, lowest to highest at each step, under the mean.
        let edge: Vec<String> = band
            .iter()
            .filter(|b| b.1.is_finite() && b.2.is_finite())
            .map(|&(x, lo, _)| format!("{:.1},{:.1}", sx(x), sy(lo)))
            .chain(
                band.iter()
                    .rev()
                    .filter(|b| b.1.is_finite() && b.2.is_finite())
                    .map(|&(x, _, hi)| format!("{:.1},{:.1}", sx(x), sy(hi))),
            )
            .collect();
        if edge.len() > 2 {
            let _ = write!(
                svg,
                r#"<polygon fill="{color}" fill-opacity="0.18" stroke="none" points="{}"/>"#,
                edge.join(" ")
            );
        }
        let path: Vec<String> = pts
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            path.join(" ")
        );
        let ly = top + 14.0 * i as f64 + 8.0;
        let _ = write!(
            svg,
            r#"<line x1="{:.0}" y1="{ly:.0}" x2="{:.0}" y2="{ly:.0}" stroke="{color}" stroke-width="3"/><text x="{:.0}" y="{:.0}" font-size="11">{}</text>"#,
            w - right + 10.0,
            w - right + 28.0,
            w - right + 32.0,
            ly + 4.0,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One line of [`lines`]: its legend label, `(x, y)` points, and where
/// there are several seeds, their range `(x, lowest, highest)` drawn as a
/// band.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    /// Its row's colour ([`color`]).
    pub color: &'static str,
}

/// One row of [`dots`]: its label, value, interval half-width, colour,
/// and whether its dot is filled (a hollow one: not marked significant).
pub struct Dot {
    pub label: String,
    pub value: f64,
    pub ci: Option<f64>,
    pub color: &'static str,
    pub filled: bool,
}

/// One dot per row with a whisker for its interval. `reference` draws a
/// vertical line (the baseline's value, dashed, or zero for changes,
/// solid). Whiskers stop at `bounds`, the values the metric can take (0 to
/// 100 for a percentage), where given, with an arrowhead where one is cut.
pub fn dots(
    title: &str,
    rows: &[Dot],
    reference: Option<Reference>,
    bounds: Option<(f64, f64)>,
) -> String {
    let (right, top, step) = (30.0, 30.0, 24.0);
    let left = rows
        .iter()
        .map(|r| text_width(&r.label, 11.0))
        .fold(40.0, f64::max)
        + 20.0;
    let clip = |v: f64| bounds.map_or(v, |(lo, hi)| v.clamp(lo, hi));
    let cut = |v: f64| bounds.is_some_and(|(lo, hi)| v < lo || v > hi);
    let clipped = rows
        .iter()
        .any(|r| r.ci.is_some_and(|c| cut(r.value - c) || cut(r.value + c)));
    let bottom = if clipped { 54.0 } else { 40.0 };
    let w = (left + 420.0 + right)
        .max(title_width(title))
        .max(if clipped {
            left + text_width(CLIPPED, 10.0) + 10.0
        } else {
            0.0
        });
    let h = top + bottom + step * rows.len() as f64;
    let mut lo = f64::MAX;
    let mut hi = f64::MIN;
    for r in rows {
        let c = r.ci.unwrap_or(0.0);
        lo = lo.min(clip(r.value - c));
        hi = hi.max(clip(r.value + c));
    }
    if lo > hi {
        return String::new();
    }
    if let Some(Reference::Zero) = reference {
        // Zero inside the frame, never on its edge.
        let span = hi.max(0.0) - lo.min(0.0);
        let pad = if span > 1e-12 { 0.05 * span } else { 1.0 };
        lo = lo.min(-pad);
        hi = hi.max(pad);
    }
    let xt = Ticks::new(lo, hi);
    let (x0, x1) = (xt.lo, xt.hi);
    let pw = w - left - right;
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let mut svg = header(w, h, title);
    let ph = step * rows.len() as f64;
    axes(&mut svg, (left, top, pw, ph), &xt, None, "");
    match reference {
        Some(Reference::Baseline(b)) if b >= x0 && b <= x1 => {
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{top:.0}" x2="{x:.1}" y2="{:.0}" stroke="#999" stroke-dasharray="4 3"/>"##,
                top + ph,
                x = sx(b)
            );
        }
        Some(Reference::Zero) => {
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{top:.0}" x2="{x:.1}" y2="{:.0}" stroke="#222" stroke-width="1.2"/>"##,
                top + ph,
                x = sx(0.0)
            );
        }
        _ => {}
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + step * (i as f64 + 0.5);
        let color = r.color;
        if let Some(c) = r.ci {
            let (a, b) = (clip(r.value - c), clip(r.value + c));
            let ends = [(sx(a), cut(r.value - c)), (sx(b), cut(r.value + c))];
            whisker(&mut svg, y, ends, color);
        }
        let fill = if r.filled { color } else { "white" };
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{color}" stroke-width="1.5"/><text x="{:.0}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
            sx(r.value),
            left - 8.0,
            y + 4.0,
            escape(&r.label)
        );
    }
    if clipped {
        let _ = write!(
            svg,
            r##"<text x="{left:.0}" y="{:.0}" font-size="10" fill="#555">{CLIPPED}</text>"##,
            h - 6.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A whisker at height `y` between two ends `(x, cut)`, with an arrowhead
/// at an end cut at the metric's bound.
fn whisker(svg: &mut String, y: f64, [(a, cut_a), (b, cut_b)]: [(f64, bool); 2], color: &str) {
    let _ = write!(
        svg,
        r#"<line x1="{a:.1}" y1="{y:.1}" x2="{b:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"/>"#
    );
    for (x, cut, dir) in [(a, cut_a, -1.0), (b, cut_b, 1.0)] {
        if cut {
            let _ = write!(
                svg,
                r#"<polygon class="clipped" points="{:.1},{y:.1} {:.1},{:.1} {:.1},{:.1}" fill="{color}"/>"#,
                x + dir * 2.0,
                x - dir * 6.0,
                y - 5.0,
                x - dir * 6.0,
                y + 5.0
            );
        }
    }
}

/// The note under a chart with a cut whisker.
const CLIPPED: &str = "arrowhead: the interval runs past the metric's range and is cut there";

/// The vertical line of a [`dots`] chart.
#[derive(Debug, Clone, Copy)]
pub enum Reference {
    /// The baseline's value (dashed).
    Baseline(f64),
    /// No change (solid), on a chart of changes.
    Zero,
}

fn header(w: f64, h: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="{t}" font-family="sans-serif"><text x="10" y="18" font-size="13" font-weight="bold">{t}</text>"#,
        t = escape(title)
    )
}

#[cfg(test)]
#[path = "svg_tests.rs"]
mod tests;
