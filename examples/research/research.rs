//! Researching one topic: the middle of the waterfall.

use crux::attributes::Attributes;
use crux::prelude::*;

use crate::findings::{self, Finding, NewFindings};
use crate::sources::{self, ByTopic, ByUrl};

/// What a topic's research produced.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicReport {
    pub topic: String,
    pub saved: usize,
    pub skipped: Vec<String>,
}

/// Reads every source of a topic and saves what it found. A source that cannot be read is
/// HANDLED here: noted as skipped (an event on this topic's span), not a failed topic.
#[crux::internal_action]
pub async fn topic(ctx: &ActionCtx, args: ByTopic) -> crux::Result<TopicReport> {
    let sources = ctx
        .crux
        .run_query(
            "find sources",
            sources::for_topic,
            ByTopic {
                topic: args.topic.clone(),
            },
        )
        .await?;
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for source in sources {
        let url = source.url.clone();
        match ctx
            .crux
            .run_action("read source", sources::read, ByUrl { url: url.clone() })
            .await
        {
            Ok(text) => found.push(Finding {
                topic: args.topic.clone(),
                url,
                text,
            }),
            Err(err) => {
                crux::observe::event(
                    "research.source_skipped",
                    Attributes::new()
                        .with("url", url.clone())
                        .with("reason", err.message().to_owned()),
                );
                skipped.push(format!("{url}: {err}"));
            }
        }
    }
    let saved = ctx
        .crux
        .run_mutation(
            "save findings",
            findings::save,
            NewFindings { findings: found },
        )
        .await?;
    Ok(TopicReport {
        topic: args.topic,
        saved,
        skipped,
    })
}
