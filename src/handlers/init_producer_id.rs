//! InitProducerId (key 22): producer ids for idempotent producers. A known
//! (id, epoch) pair asking again gets the next epoch (KIP-360).
//! Transactional ids are not served yet.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: InitProducerIdRequest = decode_body(frame)?;
    let resp = InitProducerIdResponse::default();
    if req.transactional_id.is_some() {
        let resp = resp
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        return respond(frame, &resp);
    }
    let (id, epoch) = if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        (req.producer_id.0, req.producer_epoch + 1)
    } else {
        match crate::admin::next_producer_id().await {
            Ok(id) => (id, 0),
            Err((code, e)) => {
                tracing::warn!(%e, "allocating a producer id failed");
                let resp = resp.with_error_code(code.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
                return respond(frame, &resp);
            }
        }
    };
    respond(frame, &resp.with_producer_id(ProducerId(id)).with_producer_epoch(epoch))
}
