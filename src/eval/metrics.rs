//! What an eval suite's metrics mean, computed from what a model produced:
//! verdicts on generated answers, log-probs of pairs and of reference
//! completions. The executor runs the model; these turn its outputs into
//! numbers.

use super::judge::Verdict;

/// Share of correct and of unparsable answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub accuracy: f64,
    pub unparsable: f64,
    pub n: usize,
}

pub fn accuracy(verdicts: &[Verdict]) -> Accuracy {
    let share = |v: Verdict| {
        verdicts.iter().filter(|x| **x == v).count() as f64 / verdicts.len().max(1) as f64
    };
    Accuracy {
        accuracy: share(Verdict::Correct),
        unparsable: share(Verdict::Unparsable),
        n: verdicts.len(),
    }
}

/// How often the model prefers the chosen answer, by summed log-probs, and
/// the mean β-scaled log-prob margin β·(log p(chosen) − log p(rejected)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preference {
    pub accuracy: f64,
    pub margin: f64,
    pub n: usize,
}

/// `logps`: (chosen, rejected) summed log-probs per pair. Ties count as
/// wrong. The margin is the model's own, β·(chosen − rejected), with no
/// reference model: the same metric of the reference on the same pairs,
/// subtracted (a report's change against it), gives TRL's
/// `rewards/margins`.
pub fn preference(logps: &[(f64, f64)], beta: f64) -> Preference {
    let n = logps.len().max(1) as f64;
    Preference {
        accuracy: logps.iter().filter(|(c, r)| c > r).count() as f64 / n,
        margin: logps.iter().map(|(c, r)| beta * (c - r)).sum::<f64>() / n,
        n: logps.len(),
    }
}

/// Per-token negative log-likelihood and perplexity of reference
/// completions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Likelihood {
    pub nll: f64,
    pub perplexity: f64,
    pub n: usize,
}

/// `logps`: each completion's summed log-prob; `tokens`: the tokens they
/// cover together.
pub fn likelihood(logps: &[f64], tokens: usize) -> Likelihood {
    let nll = -logps.iter().sum::<f64>() / tokens.max(1) as f64;
    Likelihood {
        nll,
        perplexity: nll.exp(),
        n: logps.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_each_verdict() {
        let v = [
            Verdict::Correct,
            Verdict::Wrong,
            Verdict::Unparsable,
            Verdict::Correct,
        ];
        let a = accuracy(&v);
        assert_eq!((a.accuracy, a.unparsable, a.n), (0.5, 0.25, 4));
        assert_eq!(accuracy(&[]).accuracy, 0.0);
    }

    #[test]
    fn preference_ties_are_wrong_and_margin_is_scaled() {
        let p = preference(&[(-1.0, -3.0), (-2.0, -2.0), (-5.0, -4.0)], 0.1);
        assert!((p.accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert!((p.margin - 0.1 * (2.0 + 0.0 - 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn likelihood_is_per_token() {
        let l = likelihood(&[-6.0, -4.0], 5);
        assert_eq!(l.nll, 2.0);
        assert!((l.perplexity - 2f64.exp()).abs() < 1e-12);
    }
}
