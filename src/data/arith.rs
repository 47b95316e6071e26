//! The built-in `arith` task: multi-step integer arithmetic with
//! step-by-step solutions, e.g. `Q: 7+5*3-4=?` →
//! `5*3=15. 7+15=22. 22-4=18. Answer: 18` (`*` before `+`/`-`, then left to
//! right; negative results allowed). Sized per `../shared/MINIATURE.md`.
//!
//! Deterministic from its parameters: the held-out `test` split depends only
//! on the seed, and `train` never yields a test question.

use std::collections::BTreeSet;

use crate::rng::Rng;

/// `task(name = "arith", ...)`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArithSpec {
    pub max_operand: i64,
    /// Operations per problem, inclusive range.
    pub ops: (usize, usize),
    pub test: usize,
    pub seed: u64,
}

/// How a question is asked: reasoning first (CoT) or the answer alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Style {
    Cot,
    Direct,
}

/// One problem with its worked solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArithProblem {
    /// `7+5*3-4`
    pub expr: String,
    /// `5*3=15. 7+15=22. 22-4=18.`
    pub steps: String,
    pub answer: i64,
}

impl ArithProblem {
    /// The prompt for `style`; the style is visible to the model so one
    /// SFT run teaches both. Short: a whole CoT example must fit a 64-token
    /// context.
    pub fn prompt(&self, style: Style) -> String {
        match style {
            Style::Cot => format!("Q: {}=?\n", self.expr),
            Style::Direct => format!("Q: {}=? Direct.\n", self.expr),
        }
    }

    /// The reference response for `style`.
    pub fn response(&self, style: Style) -> String {
        match style {
            Style::Cot => format!("{} Answer: {}", self.steps, self.answer),
            Style::Direct => format!("Answer: {}", self.answer),
        }
    }

    /// The question as records show it (`question` field).
    pub fn question(&self) -> String {
        format!("Q: {}=?", self.expr)
    }
}

impl ArithSpec {
    /// Draws one problem from `rng`.
    pub fn draw(&self, rng: &mut Rng) -> ArithProblem {
        let span = self.ops.1 - self.ops.0 + 1;
        let n_ops = self.ops.0 + rng.below(span);
        let operand = |rng: &mut Rng| 1 + rng.below(self.max_operand as usize) as i64;
        let mut nums = vec![operand(rng)];
        let mut ops = Vec::with_capacity(n_ops);
        for _ in 0..n_ops {
            ops.push(['+', '-', '*'][rng.below(3)]);
            nums.push(operand(rng));
        }
        let mut expr = nums[0].to_string();
        for (op, n) in ops.iter().zip(&nums[1..]) {
            expr.push(*op);
            expr.push_str(&n.to_string());
        }
        let (steps, answer) = solve(nums, ops);
        ArithProblem {
            expr,
            steps,
            answer,
        }
    }

    /// The held-out split: `test` distinct problems, fixed by the seed.
    pub fn test_split(&self) -> Vec<ArithProblem> {
        let mut rng = Rng::new(self.seed, "arith-test");
        // A small operand range can hold fewer distinct problems than asked.
        super::distinct(self.test, || self.draw(&mut rng), |p| p.expr.clone())
    }

    /// An endless stream of training problems from `stream_seed` (e.g. the
    /// stage seed), never a test question.
    pub fn train_stream(&self, stream_seed: u64) -> TrainStream {
        TrainStream {
            spec: self.clone(),
            rng: Rng::new(self.seed ^ stream_seed.rotate_left(17), "arith-train"),
            test: self.test_split().into_iter().map(|p| p.expr).collect(),
        }
    }
}

/// Training problems, excluding the test split.
pub struct TrainStream {
    spec: ArithSpec,
    rng: Rng,
    test: BTreeSet<String>,
}

impl Iterator for TrainStream {
    type Item = ArithProblem;

    fn next(&mut self) -> Option<ArithProblem> {
        loop {
            let p = self.spec.draw(&mut self.rng);
            if !self.test.contains(&p.expr) {
                return Some(p);
            }
        }
    }
}

/// Evaluates with `*` first, then `+`/`-`, each left to right, writing one
/// step per operation.
fn solve(mut nums: Vec<i64>, mut ops: Vec<char>) -> (String, i64) {
    let mut steps = Vec::new();
    while let Some(i) = ops.iter().position(|&o| o == '*') {
        let v = nums[i] * nums[i + 1];
        steps.push(format!("{}*{}={v}.", nums[i], nums[i + 1]));
        nums.splice(i..=i + 1, [v]);
        ops.remove(i);
    }
    while !ops.is_empty() {
        let (a, b) = (nums[0], nums[1]);
        let v = if ops[0] == '+' { a + b } else { a - b };
        steps.push(format!("{a}{}{b}={v}.", ops[0]));
        nums.splice(0..=1, [v]);
        ops.remove(0);
    }
    (steps.join(" "), nums[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ArithSpec {
        ArithSpec {
            max_operand: 20,
            ops: (2, 3),
            test: 200,
            seed: 0,
        }
    }

    #[test]
    fn solutions_follow_precedence_and_read_like_the_spec() {
        let (steps, answer) = solve(vec![7, 5, 3, 4], vec!['+', '*', '-']);
        assert_eq!(steps, "5*3=15. 7+15=22. 22-4=18.");
        assert_eq!(answer, 18);
        let (steps, answer) = solve(vec![2, 9, 4], vec!['-', '-']);
        assert_eq!((steps.as_str(), answer), ("2-9=-7. -7-4=-11.", -11));
    }

    /// An independent evaluator: fold products into terms.
    fn eval(expr: &str) -> i64 {
        let mut total = 0;
        let mut sign = 1;
        let mut term: Option<i64> = None;
        let mut num = String::new();
        let mut pending_mul = false;
        let flush = |num: &mut String, term: &mut Option<i64>, pending_mul: bool| {
            let v: i64 = num.parse().unwrap();
            num.clear();
            *term = Some(if pending_mul { term.unwrap() * v } else { v });
        };
        for c in expr.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            flush(&mut num, &mut term, pending_mul);
            pending_mul = c == '*';
            if c != '*' {
                total += sign * term.take().unwrap();
                sign = if c == '+' { 1 } else { -1 };
            }
        }
        flush(&mut num, &mut term, pending_mul);
        total + sign * term.unwrap()
    }

    #[test]
    fn problems_are_correct_deterministic_and_in_range() {
        let s = spec();
        let mut rng = Rng::new(1, "t");
        for _ in 0..500 {
            let p = s.draw(&mut rng);
            assert_eq!(p.answer, eval(&p.expr), "{}", p.expr);
            let ops = p.expr.chars().filter(|c| "+-*".contains(*c)).count();
            assert!((2..=3).contains(&ops), "{}", p.expr);
            assert!(p
                .response(Style::Cot)
                .ends_with(&format!("Answer: {}", p.answer)));
        }
        assert_eq!(s.test_split(), s.test_split());
        assert_ne!(
            s.test_split(),
            ArithSpec {
                seed: 1,
                ..s.clone()
            }
            .test_split()
        );
    }

    #[test]
    fn training_never_sees_a_test_question() {
        let s = ArithSpec {
            max_operand: 3,
            ops: (2, 2),
            test: 50,
            seed: 4,
        };
        let test: BTreeSet<String> = s.test_split().into_iter().map(|p| p.expr).collect();
        assert_eq!(test.len(), 50);
        let train: Vec<ArithProblem> = s.train_stream(7).take(2000).collect();
        assert!(train.iter().all(|p| !test.contains(&p.expr)));
        let again: Vec<ArithProblem> = s.train_stream(7).take(20).collect();
        assert_eq!(train[..20], again[..]);
    }
}
