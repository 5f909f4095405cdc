//! `tracing` integration for crux (the `crux` facade's feature `tracing`): [`CruxLayer`], a `tracing_subscriber`
//! layer that records `tracing` events as `span:event` records on the current Crux span,
//! so logs written inside a handler land in the run's tree (and, through
//! the `otel` feature's sink, as OpenTelemetry span events).
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! let subscriber = tracing_subscriber::registry().with(crux_tracing::CruxLayer::new());
//! # let _ = subscriber;
//! ```
//!
//! Outside a Crux span the layer does nothing but one thread-local read. Inside one, an
//! event becomes a Crux event named after its message (or its callsite name), with the
//! attributes `level`, `target` and every field.

use std::borrow::Cow;
use std::fmt;

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crux_runtime::attributes::{AttrValue, Attributes};
use crux_runtime::observe;

/// A `tracing_subscriber` layer that ties `tracing` events to the current Crux span.
#[derive(Clone, Debug)]
pub struct CruxLayer {
    max_level: Level,
}

impl Default for CruxLayer {
    fn default() -> Self {
        Self {
            max_level: Level::TRACE,
        }
    }
}

impl CruxLayer {
    /// Records events of every level.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records only events at `level` or more severe (`Level::INFO` keeps `INFO`, `WARN`
    /// and `ERROR`).
    pub fn with_max_level(mut self, level: Level) -> Self {
        self.max_level = level;
        self
    }
}

impl<S: Subscriber> Layer<S> for CruxLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > self.max_level {
            return;
        }
        // Cheap exit outside a Crux span: no field is visited.
        if !observe::in_span() {
            return;
        }
        let mut fields = Fields {
            message: None,
            attributes: Attributes::new()
                .with("level", meta.level().as_str())
                .with("target", meta.target()),
        };
        event.record(&mut fields);
        let name = match fields.message {
            Some(m) if !m.is_empty() => Cow::Owned(m),
            _ => Cow::Borrowed(meta.name()),
        };
        observe::event(name, fields.attributes);
    }
}

struct Fields {
    message: Option<String>,
    attributes: Attributes,
}

impl Fields {
    fn put(&mut self, field: &Field, value: AttrValue) {
        self.attributes.set(field.name(), value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.put(field, AttrValue::from(value.to_owned()));
        }
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
        self.put(field, AttrValue::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.put(field, AttrValue::from(format!("{value:?}")));
        }
    }
}
