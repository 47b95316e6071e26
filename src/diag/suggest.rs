//! "Did you mean" for near misses.

/// The candidate closest to `name`, when it is close enough to be a typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let score = strsim::jaro_winkler(name, candidate);
        let close = strsim::levenshtein(name, candidate) <= (name.len().max(3) / 3).max(1);
        if (score >= 0.85 || close) && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `x`?` for the closest candidate, if any.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_and_not_strangers() {
        let names = ["dpo", "ipo", "bco_pair", "sft", "hinge"];
        assert_eq!(suggest("bco_par", names), Some("bco_pair"));
        assert_eq!(suggest("hnge", names), Some("hinge"));
        assert_eq!(suggest("transformer", names), None);
        assert_eq!(suggest("w_pp", ["w_p", "w_q", "w_g"]), Some("w_p"));
    }
}
