//! Tests of the SVG charts: escaping, bands, whiskers, margins, ticks.

use super::super::ticks::Ticks;
use super::*;

#[test]
fn labels_are_escaped_and_charts_are_well_formed() {
    let s = lines(
        "loss <b>",
        "step",
        &[Series {
            label: "<script>alert(1)</script>".into(),
            points: vec![(0.0, 2.0), (1.0, 1.0)],
            band: Vec::new(),
            color: color(1),
        }],
    );
    assert!(!s.contains("<script>") && s.contains("&lt;script&gt;"));
    assert!(s.starts_with("<svg") && s.ends_with("</svg>") && s.contains("<polyline"));
    assert!(!s.contains("<polygon"));
    // Two seeds: their range is a band around the mean, inside the axes.
    let banded = lines(
        "loss",
        "step",
        &[Series {
            label: "mpo".into(),
            points: vec![(0.0, 2.0), (1.0, 1.0)],
            band: vec![(0.0, 1.5, 2.5), (1.0, 0.5, 1.5)],
            color: color(1),
        }],
    );
    assert_eq!(banded.matches("<polygon").count(), 1);
    assert!(
        banded.contains(">0.5<") || banded.contains(">0<"),
        "the y axis reaches the band"
    );
    let d = dots(
        "acc",
        &[dot("a&b", 0.5, Some(0.1)), dot("c", 0.3, None)],
        Some(Reference::Baseline(0.4)),
        None,
    );
    assert!(d.contains("a&amp;b") && d.matches("<circle").count() == 2);
    assert!(dots("x", &[], None, None).is_empty());
}

#[test]
fn ticks_are_round_and_cover_the_range() {
    let t = Ticks::new(-45.3, 164.2);
    assert_eq!(t.values, [-50.0, 0.0, 50.0, 100.0, 150.0, 200.0]);
    assert_eq!(
        (t.lo, t.hi, t.label(-50.0)),
        (-50.0, 200.0, "-50".to_owned())
    );
    let t = Ticks::new(0.013, 0.087);
    assert_eq!(t.digits, 2);
    assert_eq!(t.label(t.values[1]), "0.02");
    assert!(t.lo <= 0.013 && t.hi >= 0.087 && t.values.len() <= 11);
    // A flat series still gets an axis.
    let t = Ticks::new(3.0, 3.0);
    assert!(t.lo <= 3.0 && t.hi > 3.0);
}

#[test]
fn whiskers_stop_at_the_metric_bounds() {
    let d = dots(
        "acc",
        &[dot("a", 25.0, Some(80.0))],
        None,
        Some((0.0, 100.0)),
    );
    // The axis ends at 100, not at 100 plus padding or below 0.
    assert!(d.contains(">0</text>") && d.contains(">100</text>"), "{d}");
    assert!(!d.contains(">-"), "{d}");
    // Cut below 0 and above 100: an arrowhead at each end, and a note.
    assert_eq!(d.matches("class=\"clipped\"").count(), 2, "{d}");
    assert!(d.contains(CLIPPED));
    let d = dots(
        "acc",
        &[dot("a", 50.0, Some(10.0))],
        None,
        Some((0.0, 100.0)),
    );
    assert!(!d.contains("clipped") && !d.contains(CLIPPED));
}

#[test]
fn changes_keep_zero_inside_the_frame_even_when_all_are_zero() {
    let d = dots(
        "change",
        &[dot("a", 0.0, None)],
        Some(Reference::Zero),
        None,
    );
    assert!(
        d.contains(">-1.0</text>") && d.contains(">1.0</text>"),
        "{d}"
    );
    let d = dots(
        "change",
        &[dot("a", 2.0, Some(1.0))],
        Some(Reference::Zero),
        None,
    );
    assert!(
        d.contains(">0</text>") && !d.contains("x1=\"60.0\" y1=\"30\""),
        "{d}"
    );
}

#[test]
fn a_long_label_widens_the_margin_instead_of_running_off_the_edge() {
    let long = "variant=SFT-on-chosen w_p=0.8 w_q=0.2 w_g=1";
    let d = dots("acc", &[dot(long, 1.0, None)], None, None);
    let left = text_width(long, 11.0);
    let x: f64 = d
        .split("text-anchor=\"end\"")
        .next()
        .unwrap()
        .rsplit("x=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(x - left >= 0.0, "{x} {left}");
}

fn dot(label: &str, value: f64, ci: Option<f64>) -> Dot {
    Dot {
        label: label.into(),
        value,
        ci,
        color: color(1),
        filled: true,
    }
}
