//! A collector's reply to an ingest request, read in one pass: the members the sink's
//! receipt rules read (`dispositions` with each one's `index`, `recordId`, `outcome`,
//! `code`, `retryable`; the `{accepted, rejected}` of older collectors), each as a
//! `serde_json::Value` of the reply would hold it (the last of a repeated key), the rest
//! checked and dropped. A reply carries one disposition per record, so building it as a
//! `Value` (a map per disposition) cost the sender about as much as serializing the record.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::json::{ArrayOrNone, Checked, KeyIn};

/// The members of a reply the receipt rules read.
#[derive(Debug, Default)]
pub(crate) struct CollectorReply {
    /// `dispositions`, when it is an array.
    pub(crate) dispositions: Option<Vec<Disposition>>,
    /// `accepted` (older collectors' count).
    pub(crate) accepted: Option<Value>,
    /// `rejected` (older collectors' list).
    pub(crate) rejected: Option<Value>,
}

/// One disposition's members (all `None` for an element that is not an object).
#[derive(Debug, Default)]
pub(crate) struct Disposition {
    members: [Option<Value>; 5],
}

const DISPOSITION_KEYS: [&str; 5] = ["index", "recordId", "outcome", "code", "retryable"];

impl Disposition {
    /// The member `key` (one of `index`, `recordId`, `outcome`, `code`, `retryable`).
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        let i = DISPOSITION_KEYS
            .iter()
            .position(|k| *k == key)
            .expect("a disposition key");
        self.members[i].as_ref()
    }
}

impl CollectorReply {
    /// Reads a reply body; `None` when it is not JSON (or not what a `Value` can hold).
    pub(crate) fn parse(body: &[u8]) -> Option<CollectorReply> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let reply = de.deserialize_any(ReplyVisitor).ok()?;
        de.end().ok()?;
        Some(reply)
    }
}

fn reply_key(key: &str) -> Option<usize> {
    ["dispositions", "accepted", "rejected"]
        .iter()
        .position(|k| *k == key)
}

fn disposition_key(key: &str) -> Option<usize> {
    DISPOSITION_KEYS.iter().position(|k| *k == key)
}

/// Any JSON value read by `visit_map` alone; every other kind is checked and read as
/// `T::default()` (what a `Value` that is not an object gives for every member).
macro_rules! non_objects_are_default {
    ($t:ty) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<$t, A::Error> {
            Checked.visit_seq(seq).map(|_| <$t>::default())
        }
        crate::json::scalars_read_as!($t, <$t>::default());
    };
}

struct ReplyVisitor;

impl<'de> Visitor<'de> for ReplyVisitor {
    type Value = CollectorReply;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CollectorReply, A::Error> {
        let mut reply = CollectorReply::default();
        while let Some(key) = map.next_key_seed(KeyIn(reply_key))? {
            match key {
                Some(0) => reply.dispositions = map.next_value::<ArrayOrNone<Disposition>>()?.0,
                Some(1) => reply.accepted = Some(map.next_value()?),
                Some(_) => reply.rejected = Some(map.next_value()?),
                None => map.next_value::<Checked>().map(|_| ())?,
            }
        }
        Ok(reply)
    }

    non_objects_are_default!(CollectorReply);
}

impl<'de> de::Deserialize<'de> for Disposition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DispositionVisitor)
    }
}

struct DispositionVisitor;

impl<'de> Visitor<'de> for DispositionVisitor {
    type Value = Disposition;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Disposition, A::Error> {
        let mut d = Disposition::default();
        while let Some(key) = map.next_key_seed(KeyIn(disposition_key))? {
            match key {
                // The last occurrence wins, as in a `Value`.
                Some(i) => d.members[i] = Some(map.next_value()?),
                None => map.next_value::<Checked>().map(|_| ())?,
            }
        }
        Ok(d)
    }

    non_objects_are_default!(Disposition);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each member the rules read is what a `Value` of the reply holds there.
    #[test]
    fn members_are_what_a_value_holds() {
        let replies = [
            r#"{"dispositions":[{"index":0,"recordId":"a","outcome":"accepted","code":"accepted","retryable":false,"x":[1]},
               {"index":1,"index":2,"recordId":7},5,[1],"s",null,{}],"accepted":3,"rejected":[],"extra":{"a":1}}"#,
            r#"{"accepted":2,"accepted":{"n":1}}"#,
            r#"{"dispositions":{"index":0}}"#,
            r#"[{"dispositions":[]}]"#,
            r#""text""#,
        ];
        for text in replies {
            let value: Value = serde_json::from_str(text).unwrap();
            let reply = CollectorReply::parse(text.as_bytes()).unwrap();
            assert_eq!(reply.accepted.as_ref(), value.get("accepted"), "{text}");
            assert_eq!(reply.rejected.as_ref(), value.get("rejected"), "{text}");
            let list = value.get("dispositions").and_then(Value::as_array);
            assert_eq!(
                reply.dispositions.as_ref().map(Vec::len),
                list.map(Vec::len),
                "{text}"
            );
            for (d, v) in reply
                .dispositions
                .iter()
                .flatten()
                .zip(list.into_iter().flatten())
            {
                for key in DISPOSITION_KEYS {
                    assert_eq!(d.get(key), v.get(key), "{key} in {text}");
                }
            }
        }
    }

    #[test]
    fn what_a_value_refuses_is_none() {
        for bad in [
            r#"{"dispositions":[{"index":1e999}]}"#,
            r#"{"a":1e999}"#,
            "{",
            "{} x",
            "",
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert!(CollectorReply::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
