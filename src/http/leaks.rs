//! `POST /v1/leaks` (operator): a secret scanner's report of tokens found in public.

use serde_json::Value;

use super::call::Call;
use super::reply::Reply;
use crate::error::ApiError;
use crate::keys::leaks::{self, LeakReport};

pub async fn report(call: &mut Call) -> Result<Reply, ApiError> {
    let reports = LeakReport::read_all(call.json().await?)?;
    let (labels, revoked) = leaks::report(&call.deps(), &reports, None).await?;
    // The revocations' notifications were queued with them.
    call.deliver_queued_after_response(revoked.len());
    Ok(Reply::ok(Value::Array(labels.iter().map(|l| l.to_json()).collect())))
}
