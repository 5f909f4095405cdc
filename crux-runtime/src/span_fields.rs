//! The typed identity fields of `span:start` (`model`, `provider`, `toolName`, ...).

use std::borrow::Cow;

/// One of the optional typed fields of `span:start` (and of the combined `span` record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanField {
    /// `model`: the model a generation asked for.
    Model,
    /// `provider`: who serves the model.
    Provider,
    /// `promptId`.
    PromptId,
    /// `contextId`.
    ContextId,
    /// `agentId`.
    AgentId,
    /// `toolName`.
    ToolName,
    /// `flowId`.
    FlowId,
    /// `stepId`.
    StepId,
    /// `memoryId`.
    MemoryId,
    /// `retrieverId`.
    RetrieverId,
}

impl SpanField {
    /// Every field, in the order records write them.
    pub const ALL: [SpanField; 10] = [
        SpanField::Model,
        SpanField::Provider,
        SpanField::PromptId,
        SpanField::ContextId,
        SpanField::AgentId,
        SpanField::ToolName,
        SpanField::FlowId,
        SpanField::StepId,
        SpanField::MemoryId,
        SpanField::RetrieverId,
    ];

    /// The wire key.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanField::Model => "model",
            SpanField::Provider => "provider",
            SpanField::PromptId => "promptId",
            SpanField::ContextId => "contextId",
            SpanField::AgentId => "agentId",
            SpanField::ToolName => "toolName",
            SpanField::FlowId => "flowId",
            SpanField::StepId => "stepId",
            SpanField::MemoryId => "memoryId",
            SpanField::RetrieverId => "retrieverId",
        }
    }
}

/// The typed fields set on a span (none by default: the record then has none of the keys).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanFields {
    entries: Vec<(SpanField, Cow<'static, str>)>,
}

impl SpanFields {
    /// No fields.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Sets `field` (a later value wins); an empty value removes it, since the schema
    /// has no empty identities.
    pub fn set(&mut self, field: SpanField, value: impl Into<Cow<'static, str>>) {
        let value = value.into();
        let at = self.entries.iter().position(|(f, _)| *f == field);
        match (at, value.is_empty()) {
            (Some(i), false) => self.entries[i].1 = value,
            (Some(i), true) => {
                self.entries.remove(i);
            }
            (None, false) => self.entries.push((field, value)),
            (None, true) => {}
        }
    }

    /// The value of `field`, if set.
    pub fn get(&self, field: SpanField) -> Option<&str> {
        self.entries
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.as_ref())
    }

    /// The fields set, in [`SpanField::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (SpanField, &str)> {
        SpanField::ALL
            .into_iter()
            .filter_map(|f| self.get(f).map(|v| (f, v)))
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_win_empty_values_remove_and_iteration_follows_the_schema_order() {
        let mut f = SpanFields::new();
        f.set(SpanField::ToolName, "search");
        f.set(SpanField::Model, "m1");
        f.set(SpanField::Model, "m2");
        f.set(SpanField::Provider, "p");
        f.set(SpanField::Provider, "");
        f.set(SpanField::AgentId, "");
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            vec![(SpanField::Model, "m2"), (SpanField::ToolName, "search")]
        );
        assert_eq!(SpanField::RetrieverId.as_str(), "retrieverId");
    }
}
