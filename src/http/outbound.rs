//! The provider client of the Worker: `fetch` with a timeout, no redirects followed.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::{pin_mut, StreamExt};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use crate::outbox::{Attempt, Notifier};
use crate::providers::model_list::{AnswerBuffer, OverCap, MAX_ANSWER_BYTES};
use crate::providers::validation::{ProbeRequest, ProbeResponse, ProviderClient, TransportFailure, TIMEOUT_MS};

pub struct FetchClient {
    pub timeout: Duration,
    /// Joins this client's log lines to the request's own, when there is a request.
    pub request_id: Option<String>,
}

impl Default for FetchClient {
    fn default() -> Self {
        FetchClient { timeout: Duration::from_millis(TIMEOUT_MS), request_id: None }
    }
}

impl FetchClient {
    /// A provider answer refused for its size is a 502 for the caller; the log says why.
    fn log_over_cap(&self, url: &str, declared: Option<usize>) {
        let origin = url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        worker::console_warn!(
            "{}",
            serde_json::json!({
                "level": "warn",
                "request_id": self.request_id,
                "msg": format!("provider answer refused: larger than the {} MiB model-list cap", MAX_ANSWER_BYTES / (1024 * 1024)),
                "cap_bytes": MAX_ANSWER_BYTES,
                "declared_bytes": declared,
                "provider_origin": origin,
            })
        );
    }
}

/// Reads the answer into one buffer of at most the cap; past it, nothing more is read.
async fn read_answer(response: &mut worker::Response, declared: Option<usize>) -> Result<String, TransportFailure> {
    let mut buffer = AnswerBuffer::new(MAX_ANSWER_BYTES, declared).map_err(|OverCap| TransportFailure::TooLarge)?;
    let Ok(mut stream) = response.stream() else { return Ok(String::new()) };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| TransportFailure::Network)?;
        buffer.push(&chunk).map_err(|OverCap| TransportFailure::TooLarge)?;
    }
    Ok(buffer.into_text())
}

impl ProviderClient for FetchClient {
    async fn send(&self, probe: &ProbeRequest) -> Result<ProbeResponse, TransportFailure> {
        let headers = build_headers(&probe.headers).map_err(|_| TransportFailure::Network)?;
        let mut init = RequestInit::new();
        match &probe.body {
            Some(body) => init.with_method(Method::Post).with_body(Some(worker::wasm_bindgen::JsValue::from_str(body))),
            None => init.with_method(Method::Get),
        };
        init.with_headers(headers);
        // A redirect could point anywhere, including hosts the policy refuses: never follow one.
        init.with_redirect(RequestRedirect::Manual);
        let request = Request::new_with_init(&probe.url, &init).map_err(|_| TransportFailure::Network)?;

        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async {
            let mut response = Fetch::Request(request).send_with_signal(&signal).await.map_err(|_| TransportFailure::Network)?;
            let status = response.status_code();
            let headers: Vec<(String, String)> = response.headers().entries().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
            let declared = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.trim().parse::<usize>().ok());
            match read_answer(&mut response, declared).await {
                Ok(body) => Ok(ProbeResponse { status, headers, body }),
                Err(TransportFailure::TooLarge) => {
                    self.log_over_cap(&probe.url, declared);
                    Err(TransportFailure::TooLarge)
                }
                Err(failure) => Err(failure),
            }
        };
        let timeout = Delay::from(self.timeout);
        pin_mut!(exchange);
        match select(exchange, timeout).await {
            Either::Left((outcome, _)) => {
                if outcome == Err(TransportFailure::TooLarge) {
                    // Stop the download of the rest of the answer.
                    controller.abort();
                }
                outcome
            }
            Either::Right(_) => {
                controller.abort();
                Err(TransportFailure::Timeout)
            }
        }
    }
}

impl Notifier for FetchClient {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Attempt {
        let Ok(request_headers) = build_headers(headers) else { return Attempt::Failed { status: None } };
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(request_headers).with_body(Some(body.into()));
        init.with_redirect(RequestRedirect::Manual);
        let Ok(request) = Request::new_with_init(url, &init) else { return Attempt::Failed { status: None } };
        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async { Fetch::Request(request).send_with_signal(&signal).await.map(|r| r.status_code()) };
        let timeout = Delay::from(self.timeout);
        pin_mut!(exchange);
        match select(exchange, timeout).await {
            Either::Left((Ok(status), _)) if (200..300).contains(&status) => Attempt::Delivered { status },
            Either::Left((Ok(status), _)) => Attempt::Failed { status: Some(status) },
            Either::Left((Err(_), _)) => Attempt::Failed { status: None },
            Either::Right(_) => {
                controller.abort();
                Attempt::Failed { status: None }
            }
        }
    }
}

fn build_headers(headers: &[(String, String)]) -> worker::Result<Headers> {
    let built = Headers::new();
    for (name, value) in headers {
        built.set(name, value)?;
    }
    Ok(built)
}
