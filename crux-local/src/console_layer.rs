//! `ConsoleLayer`: `tracing` events at INFO, WARN and ERROR emitted while a call is being
//! polled become that call's log lines (`logLines`), as `ctx.console` lines do.

use std::fmt::{self, Write};

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level as TracingLevel, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::console::{Level, collecting, log_current};

/// A `tracing_subscriber::Layer` (feature `tracing`): `tracing::info!`, `warn!` and
/// `error!` inside a handler add a line `[INFO] message key=value …` to the log lines the
/// call's caller collects (an HTTP reply's `logLines`), as `ctx.console` does. DEBUG and
/// TRACE events, events outside a call, and events on tasks a handler spawns are left
/// alone; other layers see every event as before.
///
/// ```ignore
/// use tracing_subscriber::prelude::*;
/// tracing_subscriber::registry().with(crux::local::ConsoleLayer).init();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsoleLayer;

impl<S: Subscriber> Layer<S> for ConsoleLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = match *event.metadata().level() {
            TracingLevel::ERROR => Level::Error,
            TracingLevel::WARN => Level::Warn,
            TracingLevel::INFO => Level::Info,
            _ => return,
        };
        // Formatting only when a call collects.
        if !collecting() {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        log_current(level, &line.finish());
    }
}

/// The message first, then the other fields as `key=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Line {
    fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                self.message.push(' ');
            }
            self.message.push_str(&self.fields);
        }
        self.message
    }

    fn field(&mut self, field: &Field, value: &dyn fmt::Display) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value}", field.name());
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, &format_args!("{value:?}"));
    }
}
