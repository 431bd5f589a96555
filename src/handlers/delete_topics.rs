//! DeleteTopics (key 20): by name, or by topic id from v6.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::{self, invoke_on};

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DeleteTopicsRequest = decode_body(frame)?;
    let table = shard::current().topics();
    // (name if known, id asked for)
    let asked: Vec<(Option<String>, uuid::Uuid)> = if frame.version >= 6 {
        req.topics
            .iter()
            .map(|t| match &t.name {
                Some(n) => (Some(n.0.to_string()), t.topic_id),
                None => (table.by_id(&t.topic_id).map(|m| m.name.clone()), t.topic_id),
            })
            .collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    let names: Vec<String> = asked.iter().filter_map(|(n, _)| n.clone()).collect();
    let mut deleted = invoke_on(0, move || async move {
        crate::admin::delete_topics(names).await.into_iter().map(|r| r.map(|m| m.id)).collect::<Vec<_>>()
    })
    .await
    .into_iter();
    let v = frame.version;
    let responses = asked
        .into_iter()
        .map(|(name, id)| {
            let r =
                DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))));
            let msg_ok = v >= 5;
            let id_ok = v >= 6;
            match name {
                None => r
                    .with_topic_id(id)
                    .with_error_code(ResponseError::UnknownTopicId.code())
                    .with_error_message(Some(StrBytes::from_static_str("This server does not host this topic ID."))),
                Some(_) => match deleted.next().expect("a result per name") {
                    Ok(tid) => r.with_topic_id(if id_ok { tid } else { uuid::Uuid::nil() }),
                    Err((code, msg)) => r
                        .with_topic_id(if id_ok { id } else { uuid::Uuid::nil() })
                        .with_error_code(code.code())
                        .with_error_message(msg_ok.then(|| StrBytes::from_string(msg))),
                },
            }
        })
        .collect();
    respond(frame, &DeleteTopicsResponse::default().with_responses(responses))
}
