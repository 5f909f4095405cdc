//! Span metrics: the `metrics` object of `span:end` and `span` records (token counts,
//! cost, latency), with the schema's key rules.

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The metric keys the schema names; any other key must start with `gen.` or `custom.`.
pub const KNOWN_METRICS: [&str; 9] = [
    "inputTokens",
    "outputTokens",
    "totalTokens",
    "cacheReadTokens",
    "cacheWriteTokens",
    "reasoningTokens",
    "costUsd",
    "ttftMs",
    "tokensPerSecond",
];

/// A metric key the schema does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// Neither a known key nor `gen.*`/`custom.*`.
    #[error(
        "unknown metric key `{0}`: use one of {known}, or a `gen.`/`custom.` prefixed key",
        known = KNOWN_METRICS.join(", ")
    )]
    UnknownKey(String),
}

/// Checks `key` against the schema: a [`KNOWN_METRICS`] key, or `gen.`/`custom.` followed
/// by a non-empty name.
pub fn check_metric_key(key: &str) -> Result<(), MetricError> {
    let prefixed = ["gen.", "custom."]
        .iter()
        .any(|p| key.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
    if prefixed || KNOWN_METRICS.contains(&key) {
        Ok(())
    } else {
        Err(MetricError::UnknownKey(key.to_owned()))
    }
}

/// The `metrics` of a span's end: numeric values by key, written in the order first set
/// (setting a key again replaces its value).
///
/// Keys are checked when set ([`MetricError`] names a refused one); non-finite values
/// (`NaN`, infinities) are stripped, as the schema requires, so they never reach a record.
///
/// ```
/// use crux_runtime::observe::Metrics;
///
/// let mut metrics = Metrics::tokens(812, 96);
/// metrics.set("costUsd", 0.0031).unwrap();
/// metrics.set("custom.retries", 1.0).unwrap();
/// assert_eq!(metrics.get("totalTokens"), Some(908.0));
/// assert!(metrics.set("tokens", 1.0).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    entries: Vec<(Cow<'static, str>, f64)>,
}

impl Metrics {
    /// The one whole-number rule for metric values: a value that is a whole number within
    /// JSON's exact integer range (a token count) is written as an integer, in the JSON
    /// records and by exporters alike.
    pub fn whole(value: f64) -> Option<i64> {
        whole(value)
    }

    /// No metrics.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// `inputTokens`, `outputTokens` and their sum as `totalTokens`.
    pub fn tokens(input: u64, output: u64) -> Self {
        let mut m = Self::new();
        m.put(Cow::Borrowed("inputTokens"), input as f64);
        m.put(Cow::Borrowed("outputTokens"), output as f64);
        m.put(
            Cow::Borrowed("totalTokens"),
            input.saturating_add(output) as f64,
        );
        m
    }

    /// Sets `key` to `value`; a non-finite value is stripped (and removes an earlier one).
    pub fn set(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: f64,
    ) -> Result<(), MetricError> {
        let key = key.into();
        check_metric_key(&key)?;
        self.put(key, value);
        Ok(())
    }

    /// [`set`](Metrics::set), by value.
    pub fn with(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: f64,
    ) -> Result<Self, MetricError> {
        self.set(key, value)?;
        Ok(self)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Keys and values, in the order first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// The number of metrics.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (then records carry no `metrics` key).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds every metric of `other` (its values win).
    pub fn extend(&mut self, other: Metrics) {
        for (k, v) in other.entries {
            self.put(k, v);
        }
    }

    /// Stores a checked key.
    fn put(&mut self, key: Cow<'static, str>, value: f64) {
        let at = self.entries.iter().position(|(k, _)| *k == key);
        match (at, value.is_finite()) {
            (Some(i), true) => self.entries[i].1 = value,
            (Some(i), false) => {
                self.entries.remove(i);
            }
            (None, true) => self.entries.push((key, value)),
            (None, false) => {}
        }
    }
}

/// A metric that is a whole number within JSON's exact integer range (a token count), as
/// an integer.
fn whole(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0).then_some(v as i64)
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            // Whole numbers (token counts) are written as integers, as the TypeScript
            // writer's JSON does.
            match whole(*v) {
                Some(i) => m.serialize_entry(k, &i)?,
                None => m.serialize_entry(k, v)?,
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_gen_and_custom_keys_are_accepted_others_refused_by_name() {
        let mut m = Metrics::new();
        for key in KNOWN_METRICS {
            m.set(key, 1.0).unwrap();
        }
        m.set("gen.firstChunkMs", 2.0).unwrap();
        m.set("custom.retries", 3.0).unwrap();
        assert_eq!(m.len(), 11);
        for bad in ["tokens", "gen.", "custom.", "Custom.x", "", "input_tokens"] {
            let err = m.set(bad, 1.0).unwrap_err();
            assert_eq!(err, MetricError::UnknownKey(bad.to_owned()));
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
            assert!(err.to_string().contains("inputTokens"), "{err}");
        }
        assert_eq!(m.len(), 11, "refused keys are not stored");
    }

    #[test]
    fn non_finite_values_are_stripped_and_later_values_win() {
        let mut m = Metrics::tokens(10, 5);
        m.set("costUsd", f64::NAN).unwrap();
        m.set("ttftMs", f64::INFINITY).unwrap();
        assert_eq!(m.get("costUsd"), None);
        assert_eq!(m.get("ttftMs"), None);
        m.set("inputTokens", 11.0).unwrap();
        m.set("outputTokens", f64::NEG_INFINITY).unwrap();
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![("inputTokens", 11.0), ("totalTokens", 15.0)]
        );
    }

    #[test]
    fn serializes_whole_numbers_as_integers_and_fractions_as_floats() {
        let m = Metrics::tokens(812, 96)
            .with("costUsd", 0.0031)
            .unwrap()
            .with("custom.x", -2.0)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"inputTokens":812,"outputTokens":96,"totalTokens":908,"costUsd":0.0031,"custom.x":-2}"#
        );
    }
}
