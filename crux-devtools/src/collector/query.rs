//! A request's query string: `name=value` pairs, percent-decoded, each read with a typed
//! error naming the parameter.

use percent_encoding::percent_decode_str;

/// A query parameter that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("query parameter `{name}`: {reason}")]
pub struct QueryError {
    /// The parameter.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The decoded pairs of a query string, in order.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=x%20y` (`+` is a space, as forms send it).
    pub fn parse(query: &str) -> Result<Query, QueryError> {
        let mut pairs = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let decode = |text: &str, what: &str| {
                percent_decode_str(&text.replace('+', " "))
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| QueryError {
                        name: what.to_owned(),
                        reason: "is not UTF-8 once percent-decoded".to_owned(),
                    })
            };
            let name = decode(name, name)?;
            let value = decode(value, &name)?;
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    /// The last non-empty value of `name`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a whole number in `1..=max`, or `default` when absent.
    pub fn count(&self, name: &str, default: usize, max: usize) -> Result<usize, QueryError> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(QueryError {
                    name: name.to_owned(),
                    reason: format!("needs a whole number from 1 to {max}, got {v:?}"),
                }),
            },
        }
    }

    /// `name` as a time: ISO-8601 (`2026-11-25T13:52:38Z`, offsets allowed) or
    /// milliseconds since the epoch; in milliseconds.
    pub fn time_ms(&self, name: &str) -> Result<Option<i64>, QueryError> {
        let Some(v) = self.text(name) else {
            return Ok(None);
        };
        if let Ok(ms) = v.parse::<i64>() {
            return Ok(Some(ms));
        }
        crux_view::time::parse_iso8601(v)
            .map(|ns| Some(ns.div_euclid(1_000_000)))
            .ok_or_else(|| QueryError {
                name: name.to_owned(),
                reason: format!(
                    "needs an ISO-8601 time (2026-11-25T13:52:38Z) or milliseconds since the epoch, got {v:?}"
                ),
            })
    }

    /// `name` as a flag: present as `1`/`true`/empty.
    pub fn flag(&self, name: &str) -> bool {
        self.pairs
            .iter()
            .any(|(n, v)| n == name && matches!(v.as_str(), "" | "1" | "true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_and_names_bad_ones() {
        let q = Query::parse("q=plan%20research&status=ok&name=a+b&limit=5&all=1").unwrap();
        assert_eq!(q.text("q"), Some("plan research"));
        assert_eq!(q.text("name"), Some("a b"));
        assert_eq!(q.count("limit", 200, 10_000), Ok(5));
        assert_eq!(q.count("missing", 200, 10_000), Ok(200));
        assert!(q.flag("all"));
        let err = Query::parse("limit=0")
            .unwrap()
            .count("limit", 1, 9)
            .unwrap_err();
        assert_eq!(err.name, "limit");
        let err = Query::parse("since=yesterday")
            .unwrap()
            .time_ms("since")
            .unwrap_err();
        assert!(err.to_string().contains("`since`"), "{err}");
        assert_eq!(
            Query::parse("since=2026-11-25T00:00:01Z")
                .unwrap()
                .time_ms("since"),
            Ok(Some(1_795_564_801_000))
        );
        assert!(Query::parse("q=%FF").is_err());
    }
}
