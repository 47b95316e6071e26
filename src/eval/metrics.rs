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

/// Each pair's score for [`preference`]: won (1 or 0) and its margin; the
/// means are the metric's values.
pub fn preference_items(logps: &[(f64, f64)], beta: f64) -> (Vec<f64>, Vec<f64>) {
    logps
        .iter()
        .map(|(c, r)| (f64::from(u8::from(c > r)), beta * (c - r)))
        .unzip()
}

/// Each completion's share of [`likelihood`], linearised (the delta
/// method for a ratio of sums) so that the scores' mean is the metric's
/// value: `nll + (−logp_i − nll·t_i) / mean(t)`, and for perplexity
/// `ppl · (1 + z_i − nll)`. `tokens[i]`: the tokens completion `i` covers.
pub fn likelihood_items(logps: &[f64], tokens: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let total: usize = tokens.iter().sum();
    let l = likelihood(logps, total);
    let mean_t = total as f64 / logps.len().max(1) as f64;
    logps
        .iter()
        .zip(tokens)
        .map(|(lp, t)| {
            let z = if mean_t > 0.0 {
                l.nll + (-lp - l.nll * *t as f64) / mean_t
            } else {
                l.nll
            };
            (z, l.perplexity * (1.0 + z - l.nll))
        })
        .unzip()
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
    fn per_item_scores_average_to_the_metric() {
        let pairs = [(-1.0, -3.0), (-2.0, -2.0), (-5.0, -4.0)];
        let (wins, margins) = preference_items(&pairs, 0.1);
        let p = preference(&pairs, 0.1);
        assert_eq!(wins, [1.0, 0.0, 0.0]);
        assert!((margins.iter().sum::<f64>() / 3.0 - p.margin).abs() < 1e-12);
        let (nll, ppl) = likelihood_items(&[-6.0, -4.0, -9.0], &[2, 3, 4]);
        let l = likelihood(&[-6.0, -4.0, -9.0], 9);
        assert!((nll.iter().sum::<f64>() / 3.0 - l.nll).abs() < 1e-12);
        assert!((ppl.iter().sum::<f64>() / 3.0 - l.perplexity).abs() < 1e-9);
    }

    #[test]
    fn likelihood_is_per_token() {
        let l = likelihood(&[-6.0, -4.0], 5);
        assert_eq!(l.nll, 2.0);
        assert!((l.perplexity - 2f64.exp()).abs() < 1e-12);
    }
}
