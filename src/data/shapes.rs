//! The built-in `shapes` task: visual counting on small rendered images.
//! Each image shows red and blue squares and discs on a white 4 × 4 grid;
//! the question asks for the red count, the blue count, the total or the
//! difference, e.g. `Q: How many shapes in all?` →
//! `red 2, blue 3. 2+3=5. Answer: 5` (CoT: read the counts off the image,
//! then compute) or `Answer: 5` (Direct). Only the image tells the counts.
//!
//! Deterministic from its parameters: the `test` split depends only on the
//! seed, and no `train` image repeats a test scene.

use std::collections::BTreeSet;

use image::{Rgb, RgbImage};

use super::arith::Style;
use crate::rng::Rng;

/// Cells along each side of the image; each holds at most one shape.
pub const GRID: usize = 4;

/// `shapes(...)`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShapesSpec {
    /// Training problems (a fixed set, each with its own image).
    pub train: usize,
    /// Held-out problems.
    pub test: usize,
    /// Most shapes of one colour.
    pub max_count: usize,
    /// Side of the square image in pixels (a multiple of [`GRID`]).
    pub image_size: usize,
    pub seed: u64,
}

/// What a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Red,
    Blue,
    Total,
    Difference,
}

/// One shape: its cell, colour and how it is drawn inside the cell.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    cell: usize,
    red: bool,
    disc: bool,
    /// Side (or diameter) and offset within the cell, in pixels.
    size: usize,
    dx: usize,
    dy: usize,
    /// Colour jitter per channel.
    tint: [i16; 3],
}

/// One problem: a scene and a question about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapesProblem {
    shapes: Vec<Shape>,
    pub red: i64,
    pub blue: i64,
    pub ask: Ask,
}

impl ShapesProblem {
    pub fn answer(&self) -> i64 {
        match self.ask {
            Ask::Red => self.red,
            Ask::Blue => self.blue,
            Ask::Total => self.red + self.blue,
            Ask::Difference => self.red - self.blue,
        }
    }

    /// The question as records show it.
    pub fn question(&self) -> String {
        let text = match self.ask {
            Ask::Red => "How many red shapes?",
            Ask::Blue => "How many blue shapes?",
            Ask::Total => "How many shapes in all?",
            Ask::Difference => "How many more red than blue?",
        };
        format!("Q: {text}")
    }

    /// The prompt for `style` (the image placeholder is added by the model
    /// that reads the image).
    pub fn prompt(&self, style: Style) -> String {
        match style {
            Style::Cot => format!("{}\n", self.question()),
            Style::Direct => format!("{} Direct.\n", self.question()),
        }
    }

    /// The reference response for `style`: CoT reads both counts off the
    /// image, then computes.
    pub fn response(&self, style: Style) -> String {
        let answer = self.answer();
        if style == Style::Direct {
            return format!("Answer: {answer}");
        }
        let (r, b) = (self.red, self.blue);
        let work = match self.ask {
            Ask::Red | Ask::Blue => String::new(),
            Ask::Total => format!(" {r}+{b}={answer}."),
            Ask::Difference => format!(" {r}-{b}={answer}."),
        };
        format!("red {r}, blue {b}.{work} Answer: {answer}")
    }

    /// The scene, without the question (test scenes are kept out of train).
    fn scene(&self) -> Vec<(usize, bool, bool)> {
        self.shapes
            .iter()
            .map(|s| (s.cell, s.red, s.disc))
            .collect()
    }

    /// The image: shapes on white.
    pub fn render(&self, size: usize) -> RgbImage {
        let cell = size / GRID;
        let mut image = RgbImage::from_pixel(size as u32, size as u32, Rgb([255, 255, 255]));
        for s in &self.shapes {
            let base: [i16; 3] = if s.red { [215, 40, 40] } else { [40, 70, 215] };
            let mut colour = [0u8; 3];
            for (c, (b, t)) in colour.iter_mut().zip(base.iter().zip(s.tint)) {
                *c = (b + t).clamp(0, 255) as u8;
            }
            let (x0, y0) = ((s.cell % GRID) * cell + s.dx, (s.cell / GRID) * cell + s.dy);
            let r = s.size as f64 / 2.0;
            for y in 0..s.size {
                for x in 0..s.size {
                    let (fx, fy) = (x as f64 + 0.5 - r, y as f64 + 0.5 - r);
                    if !s.disc || fx * fx + fy * fy <= r * r {
                        image.put_pixel((x0 + x) as u32, (y0 + y) as u32, Rgb(colour));
                    }
                }
            }
        }
        image
    }
}

impl ShapesSpec {
    /// Draws one problem from `rng`.
    pub fn draw(&self, rng: &mut Rng) -> ShapesProblem {
        let cells = GRID * GRID;
        let max = self.max_count.min(cells);
        let (red, blue) = loop {
            let (r, b) = (rng.below(max + 1), rng.below(max + 1));
            if r + b > 0 && r + b <= cells {
                break (r, b);
            }
        };
        let mut order: Vec<usize> = (0..cells).collect();
        rng.shuffle(&mut order);
        let cell = self.image_size / GRID;
        let shapes = order[..red + blue]
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let size = (cell / 2).max(1) + rng.below((cell - cell / 2).max(1));
                let size = size.min(cell);
                let slack = cell - size + 1;
                let mut tint = [0i16; 3];
                for t in &mut tint {
                    *t = rng.below(31) as i16 - 15;
                }
                Shape {
                    cell: c,
                    red: i < red,
                    disc: rng.below(2) == 1,
                    size,
                    dx: rng.below(slack),
                    dy: rng.below(slack),
                    tint,
                }
            })
            .collect();
        let ask = [Ask::Red, Ask::Blue, Ask::Total, Ask::Difference][rng.below(4)];
        ShapesProblem {
            shapes,
            red: red as i64,
            blue: blue as i64,
            ask,
        }
    }

    /// The held-out split: `test` problems with distinct scenes.
    pub fn test_split(&self) -> Vec<ShapesProblem> {
        let mut rng = Rng::new(self.seed, "shapes-test");
        super::distinct(self.test, || self.draw(&mut rng), ShapesProblem::scene)
    }

    /// The training problems (none shows a test scene), each with the
    /// style it is asked in: Direct with probability `direct`.
    pub fn train_split(&self, direct: f64) -> Vec<(ShapesProblem, Style)> {
        let test: BTreeSet<_> = self.test_split().iter().map(ShapesProblem::scene).collect();
        let mut rng = Rng::new(self.seed, "shapes-train");
        let mut styles = Rng::new(self.seed, "shapes-style");
        let mut out = Vec::with_capacity(self.train);
        let mut draws = 0;
        while out.len() < self.train && draws < self.train * 100 + 1000 {
            draws += 1;
            let p = self.draw(&mut rng);
            if !test.contains(&p.scene()) {
                let style = if styles.uniform() < direct {
                    Style::Direct
                } else {
                    Style::Cot
                };
                out.push((p, style));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ShapesSpec {
        ShapesSpec {
            train: 300,
            test: 50,
            max_count: 4,
            image_size: 32,
            seed: 0,
        }
    }

    /// Counts shapes by colour from the pixels alone: cells with reddish
    /// or bluish pixels (a shape never leaves its cell).
    fn count(image: &RgbImage, size: usize) -> (i64, i64) {
        let cell = size / GRID;
        let (mut red, mut blue) = (0, 0);
        for c in 0..GRID * GRID {
            let (x0, y0) = ((c % GRID) * cell, (c / GRID) * cell);
            let mut seen = (false, false);
            for y in y0..y0 + cell {
                for x in x0..x0 + cell {
                    let p = image.get_pixel(x as u32, y as u32).0;
                    seen.0 |= p[0] > 150 && p[2] < 100;
                    seen.1 |= p[2] > 150 && p[0] < 100;
                }
            }
            red += i64::from(seen.0);
            blue += i64::from(seen.1);
        }
        (red, blue)
    }

    #[test]
    fn images_show_the_counts_the_answers_use() {
        let s = spec();
        for p in s.test_split() {
            assert_eq!(count(&p.render(32), 32), (p.red, p.blue));
            let cot = p.response(Style::Cot);
            assert!(
                cot.starts_with(&format!("red {}, blue {}.", p.red, p.blue)),
                "{cot}"
            );
            assert!(cot.ends_with(&format!("Answer: {}", p.answer())), "{cot}");
            assert_eq!(p.response(Style::Direct), format!("Answer: {}", p.answer()));
        }
    }

    #[test]
    fn splits_are_deterministic_and_disjoint() {
        let s = spec();
        assert_eq!(s.test_split(), s.test_split());
        assert_eq!(s.test_split().len(), 50);
        let test: BTreeSet<_> = s.test_split().iter().map(ShapesProblem::scene).collect();
        let train = s.train_split(0.25);
        assert_eq!(train.len(), 300);
        assert!(train.iter().all(|(p, _)| !test.contains(&p.scene())));
        let direct = train.iter().filter(|(_, st)| *st == Style::Direct).count();
        assert!((40..110).contains(&direct), "{direct} direct of 300");
        assert_ne!(s.test_split(), ShapesSpec { seed: 1, ..s }.test_split());
    }
}
