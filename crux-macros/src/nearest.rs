//! "Did you mean" suggestions: the candidates closest to a misspelt word.

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Up to `limit` candidates nearest to `word`, nearest first, leaving out those so far away
/// that suggesting them would mislead. A candidate that extends `word` (`tool` →
/// `tool.call`) counts as near.
pub fn nearest<'a>(word: &str, candidates: &[&'a str], limit: usize) -> Vec<&'a str> {
    let len = word.chars().count();
    let cutoff = (len / 3).max(2);
    let mut scored: Vec<(usize, &'a str)> = candidates
        .iter()
        .map(|candidate| {
            let d = if len >= 3 && candidate.starts_with(word) {
                1
            } else {
                distance(word, candidate)
            };
            (d, *candidate)
        })
        .filter(|(d, _)| *d <= cutoff)
        .collect();
    scored.sort_by_key(|(d, candidate)| (*d, *candidate));
    scored
        .into_iter()
        .take(limit)
        .map(|(_, candidate)| candidate)
        .collect()
}

/// `` `a`, `b` or `c` `` for a message.
pub fn one_of(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("name", "name"), 0);
        assert_eq!(distance("nmae", "name"), 2);
        assert_eq!(distance("flsh", "flush"), 1);
        assert_eq!(distance("", "root"), 4);
    }

    #[test]
    fn nearest_orders_by_distance_and_drops_far_words() {
        let options = ["name", "root", "attributes", "flush", "path", "crate"];
        assert_eq!(nearest("nme", &options, 1), ["name"]);
        assert_eq!(nearest("atributes", &options, 1), ["attributes"]);
        assert!(nearest("colour", &options, 3).is_empty());
        assert_eq!(
            nearest("tool", &["tool.call", "tool.approval", "cost.record"], 3),
            ["tool.approval", "tool.call"]
        );
    }

    #[test]
    fn one_of_joins_naturally() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
