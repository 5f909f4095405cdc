//! The field visitor: a `tracing` span's or event's fields as Crux attributes (typed), plus
//! the ones the layer reads itself (`message`, `crux.primitive`, `error`).

use std::cell::RefCell;
use std::fmt;

use tracing_core::Metadata;
use tracing_core::field::{Field, Visit};

use crux_runtime::attributes::{AttrValue, Attributes};
use crux_runtime::taxonomy;

use crate::PRIMITIVE_FIELD;
use crate::table::IdMap;

thread_local! {
    /// The frozen `level` and `target` list of each callsite (by its metadata's address)
    /// whose spans this thread opened without field values: at most one entry a callsite.
    static BASES: RefCell<IdMap<Attributes>> = RefCell::new(IdMap::default());
}

/// What visiting a span's or event's fields found.
pub(crate) struct Fields {
    pub(crate) message: Option<String>,
    pub(crate) primitive: Option<&'static str>,
    pub(crate) error: Option<String>,
    pub(crate) attributes: Attributes,
}

impl Fields {
    pub(crate) fn new(meta: &'static Metadata<'static>) -> Self {
        Self::with(Self::base(meta))
    }

    /// Nothing found yet, `attributes` to add to.
    fn with(attributes: Attributes) -> Self {
        Self {
            message: None,
            primitive: None,
            error: None,
            attributes,
        }
    }

    /// For a span opened with no field values: `level` and `target` only, shared with the
    /// callsite's earlier spans on this thread (a frozen list: one reference count, no
    /// allocation per span). Visiting would find nothing, so nothing else is set.
    pub(crate) fn without_values(meta: &'static Metadata<'static>) -> Self {
        let attributes = BASES
            .try_with(|bases| {
                bases
                    .borrow_mut()
                    .entry(std::ptr::from_ref(meta) as usize as u64)
                    .or_insert_with(|| Self::base(meta).freeze())
                    .clone()
            })
            .unwrap_or_else(|_| Self::base(meta));
        Self::with(attributes)
    }

    /// `level` and `target`, in one allocation sized for every field of the callsite too
    /// (`set` into an empty list: one key comparison in all).
    fn base(meta: &'static Metadata<'static>) -> Attributes {
        let mut attributes = Attributes::with_capacity(2 + meta.fields().len());
        attributes.set("level", meta.level().as_str());
        attributes.set("target", meta.target());
        attributes
    }

    /// For values recorded after a span started.
    pub(crate) fn later() -> Self {
        Self::with(Attributes::new())
    }

    fn put(&mut self, field: &Field, value: AttrValue) {
        self.attributes.set(field.name(), value);
    }

    fn text(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = Some(value),
            PRIMITIVE_FIELD if taxonomy::canonical_primitive(&value).is_some() => {
                self.primitive = taxonomy::canonical_primitive(&value);
            }
            "error" => {
                self.error.get_or_insert_with(|| value.clone());
                self.put(field, AttrValue::from(value));
            }
            _ => self.put(field, AttrValue::from(value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_owned());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AttrValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, AttrValue::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AttrValue::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if value && field.name() == "error" {
            self.error.get_or_insert_with(|| "error".to_owned());
        }
        self.put(field, AttrValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_without_values_serializes_as_the_visited_list_does() {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        let meta = tracing::warn_span!(target: "db", "query")
            .metadata()
            .expect("a span under a subscriber has its metadata");
        let visited = serde_json::to_string(&Fields::new(meta).attributes).unwrap();
        assert_eq!(visited, r#"{"level":"WARN","target":"db"}"#);
        for _ in 0..2 {
            let shared = Fields::without_values(meta);
            assert_eq!(serde_json::to_string(&shared.attributes).unwrap(), visited);
            assert!(shared.message.is_none() && shared.primitive.is_none());
        }
    }
}
