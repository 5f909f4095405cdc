//! Semantic conventions: OpenInference span kinds from Crux primitives, and GenAI
//! (`gen_ai.*`) plus OpenInference `llm.*` attributes for generation and embedding spans.

use opentelemetry::KeyValue;

use crux_runtime::attributes::{AttrValue, Attributes};
use crux_runtime::record::{Metrics, SpanFields};

/// The OpenInference span kind (`openinference.span.kind`) of a Crux primitive.
///
/// | Crux primitives | kind |
/// |---|---|
/// | `agent.run`, `delegate.invoke`, `handoff.prepare` | `AGENT` |
/// | `generation.*`, `media.*` | `LLM` |
/// | `embedding.call` | `EMBEDDING` |
/// | `retrieval.*`, `memory.read`, `context.resolve` | `RETRIEVER` |
/// | `tool.*`, `mcp.*`, `skill.load` | `TOOL` |
/// | `guardrail.run`, `constraint.*`, `security.warning` | `GUARDRAIL` |
/// | `eval.*`, `scoring.judge`, `citation.check` | `EVALUATOR` |
/// | `prompt.*` | `PROMPT` |
/// | everything else (runs, flows, composition, routing, runtime boundaries ...) | `CHAIN` |
///
/// ```
/// use crux_otel::openinference_kind;
/// assert_eq!(openinference_kind("agent.run"), "AGENT");
/// assert_eq!(openinference_kind("generation.stream"), "LLM");
/// assert_eq!(openinference_kind("runtime.convex.action"), "CHAIN");
/// ```
pub fn openinference_kind(primitive: &str) -> &'static str {
    let family = primitive.split('.').next().unwrap_or(primitive);
    match (family, primitive) {
        (_, "agent.run" | "delegate.invoke" | "handoff.prepare") => "AGENT",
        ("generation" | "media", _) => "LLM",
        ("embedding", _) => "EMBEDDING",
        ("retrieval", _) | (_, "memory.read" | "context.resolve") => "RETRIEVER",
        ("tool" | "mcp", _) | (_, "skill.load") => "TOOL",
        ("guardrail" | "constraint", _) | (_, "security.warning") => "GUARDRAIL",
        ("eval" | "scoring", _) | (_, "citation.check") => "EVALUATOR",
        ("prompt", _) => "PROMPT",
        _ => "CHAIN",
    }
}

/// The GenAI operation (`gen_ai.operation.name`) of a primitive, for the spans that get
/// GenAI attributes.
fn genai_operation(primitive: &str) -> Option<&'static str> {
    match primitive {
        "generation.call" | "generation.stream" | "generation.stream.attempt" => Some("chat"),
        "embedding.call" => Some("embeddings"),
        "media.generate_image"
        | "media.generate_speech"
        | "media.transcribe"
        | "media.describe" => Some("generate_content"),
        _ => None,
    }
}

/// Crux attribute keys (the TypeScript span fields and metric names) and the GenAI and
/// OpenInference keys they also appear under.
const GENAI_ALIASES: &[(&str, &[&str])] = &[
    ("model", &["gen_ai.request.model", "llm.model_name"]),
    ("responseModel", &["gen_ai.response.model"]),
    (
        "provider",
        &["gen_ai.provider.name", "gen_ai.system", "llm.provider"],
    ),
    (
        "inputTokens",
        &["gen_ai.usage.input_tokens", "llm.token_count.prompt"],
    ),
    (
        "outputTokens",
        &["gen_ai.usage.output_tokens", "llm.token_count.completion"],
    ),
    ("totalTokens", &["llm.token_count.total"]),
    (
        "cacheReadTokens",
        &["llm.token_count.prompt_details.cache_read"],
    ),
    (
        "reasoningTokens",
        &["llm.token_count.completion_details.reasoning"],
    ),
    ("temperature", &["gen_ai.request.temperature"]),
    ("maxTokens", &["gen_ai.request.max_tokens"]),
    ("finishReason", &["gen_ai.response.finish_reasons"]),
    ("costUsd", &["llm.cost.total"]),
];

/// The typed values a span carries beside its attributes: the `span:start` fields and
/// the `metrics` of its end.
#[derive(Clone, Copy)]
pub(crate) struct Typed<'a> {
    pub fields: Option<&'a SpanFields>,
    pub metrics: Option<&'a Metrics>,
}

impl Typed<'_> {
    /// Nothing typed.
    pub const NONE: Typed<'static> = Typed {
        fields: None,
        metrics: None,
    };

    /// The typed value under the Crux key `key` (a field's wire name or a metric key).
    fn get(&self, key: &str) -> Option<opentelemetry::Value> {
        let field = self.fields.and_then(|f| {
            f.iter()
                .find(|(field, _)| field.as_str() == key)
                .map(|(_, v)| opentelemetry::Value::from(v.to_owned()))
        });
        field.or_else(|| self.metrics.and_then(|m| m.get(key)).map(metric_value))
    }

    /// The typed values as OpenTelemetry attributes under their Crux keys (`model`,
    /// `inputTokens`, ...), so they read like the attributes they replace.
    pub fn push_all(&self, out: &mut Vec<KeyValue>) {
        if let Some(fields) = self.fields {
            for (field, value) in fields.iter() {
                out.push(KeyValue::new(field.as_str(), value.to_owned()));
            }
        }
        if let Some(metrics) = self.metrics {
            for (key, value) in metrics.iter() {
                out.push(KeyValue::new(key.to_owned(), metric_value(value)));
            }
        }
    }
}

/// A metric as an OpenTelemetry value: whole numbers (token counts) as integers.
fn metric_value(v: f64) -> opentelemetry::Value {
    crux_runtime::record::Metrics::whole(v)
        .map_or(opentelemetry::Value::F64(v), opentelemetry::Value::I64)
}

/// The GenAI attributes a span of `primitive` gets from its typed fields and its Crux
/// `attributes` (empty for primitives that are not model calls). Keys the user already
/// wrote in `gen_ai.*` form are left alone.
pub(crate) fn genai_attributes(
    primitive: &str,
    typed: Typed<'_>,
    attributes: &Attributes,
    out: &mut Vec<KeyValue>,
) {
    let Some(operation) = genai_operation(primitive) else {
        return;
    };
    if attributes.get("gen_ai.operation.name").is_none() {
        out.push(KeyValue::new("gen_ai.operation.name", operation));
    }
    genai_aliases(primitive, typed, attributes, out);
}

/// The GenAI and OpenInference aliases of the Crux keys, read from the typed fields and
/// metrics first and from `attributes` after (for values set after the start: token
/// counts, the response model).
pub(crate) fn genai_aliases(
    primitive: &str,
    typed: Typed<'_>,
    attributes: &Attributes,
    out: &mut Vec<KeyValue>,
) {
    if genai_operation(primitive).is_none() {
        return;
    }
    for (crux_key, otel_keys) in GENAI_ALIASES {
        let Some(value) = typed
            .get(crux_key)
            .or_else(|| attributes.get(crux_key).map(otel_value))
        else {
            continue;
        };
        for key in *otel_keys {
            if attributes.get(key).is_none() {
                out.push(KeyValue::new(*key, value.clone()));
            }
        }
    }
}

/// A Crux attribute value as an OpenTelemetry one (JSON values as their JSON text).
pub(crate) fn otel_value(value: &AttrValue) -> opentelemetry::Value {
    match value {
        AttrValue::Str(s) => opentelemetry::Value::from(s.clone()),
        AttrValue::Int(i) => opentelemetry::Value::I64(*i),
        AttrValue::Float(f) => opentelemetry::Value::F64(*f),
        AttrValue::Bool(b) => opentelemetry::Value::Bool(*b),
        AttrValue::Json(v) => opentelemetry::Value::from(v.to_string()),
        AttrValue::SharedJson(v) => opentelemetry::Value::from(v.to_string()),
        // As their JSON text, like the `Json` value a span stack used to be.
        AttrValue::SpanId(id) => opentelemetry::Value::from(id.to_string()),
        // As its ISO-8601 text, like the string a lease used to be.
        AttrValue::Timestamp(t) => opentelemetry::Value::from(t.to_string()),
        AttrValue::SpanIds(ids) => {
            let items: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
            opentelemetry::Value::from(format!("[{}]", items.join(",")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crux_runtime::taxonomy::PRIMITIVES;

    #[test]
    fn span_ids_map_to_the_json_text_a_span_stack_had() {
        use crux_runtime::ids::{SpanId, SpanStack};
        let stack = vec![SpanId(0x00f0_67aa_0ba9_02b7), SpanId(1)];
        assert_eq!(
            otel_value(&AttrValue::SpanIds(stack.into())).as_str(),
            r#"["00f067aa0ba902b7","0000000000000001"]"#
        );
        assert_eq!(
            otel_value(&AttrValue::SpanId(SpanId(1))).as_str(),
            "0000000000000001"
        );
        assert_eq!(
            otel_value(&AttrValue::SpanIds(SpanStack::new())).as_str(),
            "[]"
        );
    }

    #[test]
    fn every_canonical_primitive_has_a_known_openinference_kind() {
        let kinds = [
            "AGENT",
            "LLM",
            "EMBEDDING",
            "RETRIEVER",
            "TOOL",
            "GUARDRAIL",
            "EVALUATOR",
            "PROMPT",
            "CHAIN",
        ];
        for (primitive, _) in PRIMITIVES {
            assert!(
                kinds.contains(&openinference_kind(primitive)),
                "{primitive}"
            );
        }
        assert_eq!(openinference_kind("tool.call"), "TOOL");
        assert_eq!(openinference_kind("retrieval.retrieve"), "RETRIEVER");
        assert_eq!(openinference_kind("embedding.call"), "EMBEDDING");
        assert_eq!(openinference_kind("guardrail.run"), "GUARDRAIL");
        assert_eq!(openinference_kind("scoring.judge"), "EVALUATOR");
        assert_eq!(openinference_kind("flow.run"), "CHAIN");
    }

    #[test]
    fn generation_attributes_gain_genai_and_openinference_keys_without_overriding_users() {
        let attrs = Attributes::new()
            .with("model", "gpt-5-mini")
            .with("provider", "openai")
            .with("inputTokens", 120)
            .with("outputTokens", 30)
            .with("gen_ai.system", "azure");
        let mut out = Vec::new();
        genai_attributes("generation.call", Typed::NONE, &attrs, &mut out);
        let get = |k: &str| {
            out.iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(get("gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(get("gen_ai.request.model").as_deref(), Some("gpt-5-mini"));
        assert_eq!(get("llm.model_name").as_deref(), Some("gpt-5-mini"));
        assert_eq!(get("gen_ai.provider.name").as_deref(), Some("openai"));
        assert_eq!(get("gen_ai.usage.input_tokens").as_deref(), Some("120"));
        assert_eq!(get("llm.token_count.completion").as_deref(), Some("30"));
        assert_eq!(get("gen_ai.system"), None, "the user's own key wins");

        let mut none = Vec::new();
        genai_attributes("tool.call", Typed::NONE, &attrs, &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn typed_fields_and_metrics_are_read_before_attributes() {
        use crux_runtime::record::SpanField;
        let mut fields = SpanFields::new();
        fields.set(SpanField::Model, "typed-model");
        let metrics = Metrics::tokens(7, 3).with("costUsd", 0.25).unwrap();
        let typed = Typed {
            fields: Some(&fields),
            metrics: Some(&metrics),
        };
        let attrs = Attributes::new()
            .with("model", "attribute-model")
            .with("provider", "attribute-provider")
            .with("inputTokens", 999);
        let mut out = Vec::new();
        genai_attributes("generation.stream", typed, &attrs, &mut out);
        let get = |k: &str| {
            out.iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        use opentelemetry::Value;
        assert_eq!(
            get("gen_ai.request.model"),
            Some(Value::from("typed-model"))
        );
        assert_eq!(get("llm.model_name"), Some(Value::from("typed-model")));
        assert_eq!(
            get("gen_ai.provider.name"),
            Some(Value::from("attribute-provider")),
            "an untyped key falls back to the attribute"
        );
        assert_eq!(get("gen_ai.usage.input_tokens"), Some(Value::I64(7)));
        assert_eq!(get("llm.token_count.total"), Some(Value::I64(10)));
        assert_eq!(get("llm.cost.total"), Some(Value::F64(0.25)));

        let mut plain = Vec::new();
        typed.push_all(&mut plain);
        let keys: Vec<_> = plain.iter().map(|kv| kv.key.as_str().to_owned()).collect();
        assert_eq!(
            keys,
            [
                "model",
                "inputTokens",
                "outputTokens",
                "totalTokens",
                "costUsd"
            ]
        );
    }
}
