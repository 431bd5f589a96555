//! ApiVersions (key 18): the versions of every API this broker serves.
//! An unknown version is answered in v0 with UNSUPPORTED_VERSION and the
//! list, so the client can retry with one it shares (KIP-511).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use super::{encode_err, respond, supported, API_VERSIONS};
use crate::server::connection::{Close, RequestFrame};
use crate::server::response::{encode_v0, Response};

pub fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let api_keys: Vec<ApiVersion> = API_VERSIONS
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max)
        })
        .collect();
    let mut resp = ApiVersionsResponse::default().with_api_keys(api_keys);
    if !supported(ApiKey::ApiVersions, frame.version) {
        resp.error_code = ResponseError::UnsupportedVersion.code();
        return encode_v0(frame.correlation_id, &resp, 0).map_err(encode_err);
    }
    respond(frame, &resp)
}
