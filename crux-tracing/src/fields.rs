//! The field visitor: a `tracing` span's or event's fields as Crux attributes (typed), plus
//! the ones the layer reads itself (`message`, `crux.primitive`, `error`).

use std::cell::RefCell;
use std::fmt;

use tracing_core::Metadata;
use tracing_core::field::{Field, Visit};

use crux_runtime::attributes::{AttrValue, Attributes};
use crux_runtime::taxonomy;

use crate::PRIMITIVE_FIELD;
use crate::table::MIX;

/// How many callsites' frozen lists a thread keeps at once (a power of two, at least two:
/// a callsite may sit in its slot or in that slot's pair).
const BASE_SLOTS: usize = 64;
const _: () = assert!(BASE_SLOTS.is_power_of_two() && BASE_SLOTS > 1);

/// A thread's cached lists: slot `i` holds a callsite (its metadata's address) and its
/// frozen list.
type Bases = [Option<(usize, Attributes)>; BASE_SLOTS];

thread_local! {
    /// The frozen `level` and `target` list of every callsite (span or event, by its
    /// metadata's address) this thread recorded: a span without field values shares it
    /// as is, a span with values and every event add theirs on it. Two-way
    /// set-associative: a lookup is one multiply and at most two compares (a hash map's
    /// took ≈ 90 instructions a span). Two callsites that hash to one slot both keep a
    /// place (the slot and its pair); a third evicts the first and builds its list again
    /// (the same entries), so event callsites compete with span callsites for the 64
    /// slots. A fixed array, so an index needs no bounds check; boxed on a thread's first
    /// span or event, so threads that never record one carry nothing.
    static BASES: RefCell<Option<Box<Bases>>> = const { RefCell::new(None) };
}

/// What visiting a span's or event's fields found.
pub(crate) struct Fields {
    pub(crate) message: Option<String>,
    pub(crate) primitive: Option<&'static str>,
    pub(crate) error: Option<String>,
    pub(crate) attributes: Attributes,
}

impl Fields {
    /// For a span's or event's values: `level` and `target` shared with the callsite's
    /// frozen list (one reference count), room for every field of the callsite of its
    /// own (one small allocation, the fields only).
    pub(crate) fn new(meta: &'static Metadata<'static>) -> Self {
        let fields = meta.fields().len();
        Self::with(Self::on_base(meta, |base| {
            Attributes::shared_with_capacity(base, fields)
        }))
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

    /// The attributes of a span opened with no field values: `level` and `target` only,
    /// shared with the callsite's earlier spans on this thread (a frozen list: one
    /// reference count, no allocation per span, while the callsite keeps its place in the
    /// cache; one that lost it builds its list again). Visiting would find nothing, so
    /// there is no message, primitive or error to return beside them.
    #[inline(always)]
    pub(crate) fn without_values(meta: &'static Metadata<'static>) -> Attributes {
        Self::on_base(meta, Attributes::clone)
    }

    /// `make` applied to the callsite's frozen `level` and `target` list, from this
    /// thread's cache (built and kept there on a miss; built afresh, unfrozen, while the
    /// thread's locals are being destroyed).
    #[inline(always)]
    fn on_base(
        meta: &'static Metadata<'static>,
        make: impl FnOnce(&Attributes) -> Attributes,
    ) -> Attributes {
        let key = std::ptr::from_ref(meta) as usize;
        // The top bits of the multiplied address (every bit of it moves them), as many as
        // index a slot.
        let slot = ((key as u64).wrapping_mul(MIX) >> (u64::BITS - BASE_SLOTS.ilog2())) as usize;
        let mut make = Some(make);
        BASES
            .try_with(|bases| {
                let make = make.take().expect("called once");
                let mut bases = bases.borrow_mut();
                let bases = bases.get_or_insert_with(|| Box::new([const { None }; BASE_SLOTS]));
                let pair = slot ^ 1;
                for at in [slot, pair] {
                    if let Some((k, base)) = &bases[at]
                        && *k == key
                    {
                        return make(base);
                    }
                }
                let at = if bases[slot].is_some() && bases[pair].is_none() {
                    pair
                } else {
                    slot
                };
                make(&bases[at].insert((key, Self::base(meta).freeze())).1)
            })
            // `try_with` fails (the thread's cache torn down) without running the
            // closure, so `make` is still there.
            .unwrap_or_else(|_| make.take().expect("not run")(&Self::base(meta)))
    }

    /// `level` and `target`, the entries every span and event of the callsite starts with.
    fn base(meta: &'static Metadata<'static>) -> Attributes {
        let mut attributes = Attributes::with_capacity(2);
        attributes.set("level", meta.level().as_str());
        attributes.set("target", meta.target());
        attributes
    }

    /// For values recorded after a span started.
    pub(crate) fn later() -> Self {
        Self::with(Attributes::new())
    }

    // Inlined into each visit method: one call (registers saved and restored around
    // `Attributes::set`) per field value less.
    #[inline(always)]
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
            assert_eq!(serde_json::to_string(&shared).unwrap(), visited);
        }
    }

    /// One callsite per target, more callsites than slots: some share a slot.
    macro_rules! callsites {
        ($($target:literal)*) => {
            vec![$((
                $target,
                tracing::info_span!(target: $target, "q")
                    .metadata()
                    .expect("a span under a subscriber has its metadata"),
            )),*]
        };
    }

    #[test]
    fn callsites_sharing_a_slot_each_get_their_own_list() {
        let _sub = tracing::subscriber::set_default(tracing_subscriber::registry());
        let metas = callsites!("t0" "t1" "t2" "t3" "t4" "t5" "t6" "t7" "t8" "t9" "t10" "t11" "t12" "t13" "t14" "t15" "t16" "t17" "t18" "t19" "t20" "t21" "t22" "t23" "t24" "t25" "t26" "t27" "t28" "t29" "t30" "t31" "t32" "t33" "t34" "t35" "t36" "t37" "t38" "t39" "t40" "t41" "t42" "t43" "t44" "t45" "t46" "t47" "t48" "t49" "t50" "t51" "t52" "t53" "t54" "t55" "t56" "t57" "t58" "t59" "t60" "t61" "t62" "t63" "t64");
        assert!(metas.len() > BASE_SLOTS);
        // Twice around: the second pass finds lists kept, and lists rebuilt where another
        // callsite took the slot since; each is its own callsite's.
        for _ in 0..2 {
            for (target, meta) in &metas {
                let shared = Fields::without_values(meta);
                assert_eq!(
                    serde_json::to_string(&shared).unwrap(),
                    format!(r#"{{"level":"INFO","target":"{target}"}}"#)
                );
            }
        }
    }
}
