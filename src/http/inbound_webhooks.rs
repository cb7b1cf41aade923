//! `POST /v1/hooks/{workspace_id}`: events signed with Standard Webhooks. The signature is over
//! the raw body, so this handler reads the headers and bytes and `webhooks::inbound::receive`
//! does the rest.

use super::call::Call;
use super::input::is_json_media_type;
use super::reply::Reply;
use crate::error::ApiError;
use crate::webhooks::inbound::{self, SignedHeaders};

pub async fn receive(call: &mut Call) -> Result<Reply, ApiError> {
    let headers = SignedHeaders::check(call.header("webhook-id"), call.header("webhook-timestamp"), call.header("webhook-signature"))?;
    if call.header("content-type").is_some_and(|content_type| !is_json_media_type(&content_type)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = call.body_bytes().await?;
    let answer = inbound::receive(&call.deps(), call.param(0), &headers, &body).await?;
    call.deliver_queued_after_response(answer.queued);
    let reply = Reply { status: answer.status, body: answer.body, headers: Vec::new() };
    Ok(if answer.replayed { reply.header("webhook-replayed", "true") } else { reply })
}
