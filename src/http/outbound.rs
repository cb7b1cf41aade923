//! The provider client of the Worker: `fetch` with a timeout, no redirects followed.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::pin_mut;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use crate::providers::validation::{ProbeRequest, ProbeResponse, ProviderClient, TransportFailure, TIMEOUT_MS};
use crate::webhooks::outbox::{Attempt, Notifier};

/// At most this much of a provider's answer is read: enough for any model list. A longer
/// answer is read as empty, which validation treats as a list it cannot check.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub struct FetchClient {
    pub timeout: Duration,
}

impl Default for FetchClient {
    fn default() -> Self {
        FetchClient { timeout: Duration::from_millis(TIMEOUT_MS) }
    }
}

impl ProviderClient for FetchClient {
    async fn send(&self, probe: &ProbeRequest) -> Result<ProbeResponse, TransportFailure> {
        let headers = build_headers(&probe.headers).map_err(|_| TransportFailure::Network)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        // A redirect could point anywhere, including hosts the policy refuses: never follow one.
        init.with_redirect(RequestRedirect::Manual);
        let request = Request::new_with_init(&probe.url, &init).map_err(|_| TransportFailure::Network)?;

        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async {
            let mut response = Fetch::Request(request).send_with_signal(&signal).await.map_err(|_| TransportFailure::Network)?;
            let status = response.status_code();
            let headers = response.headers().entries().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
            let body = match response.stream() {
                Ok(stream) => match super::body::read_capped(stream, MAX_BODY_BYTES).await {
                    Ok(super::body::Capped::Whole(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    Ok(super::body::Capped::TooLarge) => String::new(),
                    Err(_) => return Err(TransportFailure::Network),
                },
                Err(_) => String::new(),
            };
            Ok(ProbeResponse { status, headers, body })
        };
        let timeout = Delay::from(self.timeout);
        pin_mut!(exchange);
        match select(exchange, timeout).await {
            Either::Left((outcome, _)) => outcome,
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
