//! Sources to research (`sources`, indexed `by_topic`) and reading one.

use crux::prelude::*;
use serde_json::json;

/// A source and what it says. An `offline` source cannot be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub topic: String,
    pub url: String,
    pub text: String,
    pub offline: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByTopic {
    pub topic: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByUrl {
    pub url: String,
}

/// The sources of a topic.
#[crux::internal_query]
pub async fn for_topic(ctx: &QueryCtx, args: ByTopic) -> crux::Result<Vec<Source>> {
    let docs = ctx
        .db
        .query("sources")
        .with_index("by_topic", |q| q.eq("topic", &args.topic))
        .collect()
        .await?;
    docs.iter().map(Document::parse).collect()
}

/// One source by its URL.
#[crux::internal_query]
pub async fn get(ctx: &QueryCtx, args: ByUrl) -> crux::Result<Option<Source>> {
    let doc = ctx
        .db
        .query("sources")
        .with_index("by_url", |q| q.eq("url", &args.url))
        .unique()
        .await?;
    doc.map(|doc| doc.parse()).transpose()
}

/// Reads a source: the third level of the waterfall. Fails for an offline source, with
/// the URL in the error's data so the caller can say what it skipped.
#[crux::internal_action]
pub async fn read(ctx: &ActionCtx, args: ByUrl) -> crux::Result<String> {
    let source = ctx
        .crux
        .run_query(
            "load source",
            get,
            ByUrl {
                url: args.url.clone(),
            },
        )
        .await?
        .ok_or_else(|| {
            Error::application(
                format!("no source `{}`", args.url),
                json!({"url": args.url}),
            )
        })?;
    if source.offline {
        return Err(Error::application(
            format!("source `{}` is offline", source.url),
            json!({"code": "source_offline", "url": source.url}),
        ));
    }
    Ok(source.text)
}
