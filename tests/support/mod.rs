//! What the native use-case tests share: the dependency bundle over a test store, a stopped
//! clock, and clients for tests that make no outbound call.
#![allow(dead_code)] // each test file uses its own part of this

use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use keywarden::deps::{Clock, Deps};
use keywarden::outbox::{Attempt, Notifier};
use keywarden::providers::validation::{ProbeRequest, ProbeResponse, ProviderClient, TransportFailure};
use keywarden::settings::Settings;
use keywarden::vault::Keks;

/// Time stands still at each call's own `now`: a use case's clock never runs ahead of it.
pub struct Stopped;

impl Clock for Stopped {
    fn now_ms(&self) -> i64 {
        i64::MIN
    }

    fn pause(&self, _duration: Duration) -> LocalBoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A client for tests that make no outbound call: every attempt fails as unreachable.
pub struct Offline;

impl ProviderClient for Offline {
    async fn send(&self, _request: &ProbeRequest) -> Result<ProbeResponse, TransportFailure> {
        Err(TransportFailure::Network)
    }
}

impl Notifier for Offline {
    async fn post(&self, _url: &str, _headers: &[(String, String)], _body: &str) -> Attempt {
        Attempt::Failed { status: None }
    }
}

/// One client for both directions: `provider` answers validations, `receiver` deliveries.
pub struct Both<'a, P, R>(pub &'a P, pub &'a R);

impl<P: ProviderClient, R> ProviderClient for Both<'_, P, R> {
    async fn send(&self, request: &ProbeRequest) -> Result<ProbeResponse, TransportFailure> {
        self.0.send(request).await
    }
}

impl<P, R: Notifier> Notifier for Both<'_, P, R> {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Attempt {
        self.1.post(url, headers, body).await
    }
}

/// The default settings: prefix `kw_live_`, the strict host policy.
pub fn settings() -> &'static Settings {
    Box::leak(Box::new(Settings::from_vars(None, None).expect("the defaults are valid")))
}

/// The bundle over `store` (which also keeps the blobs), with no KEKs and no outbound calls.
pub fn at<S>(store: &S, now_ms: i64) -> Deps<'_, S, S, Offline> {
    Deps::new(store, store, &Offline, Err("this test has no KEKs"), settings(), now_ms, &Stopped)
}

/// The bundle with KEKs and a client.
pub fn with<'a, S, C>(store: &'a S, client: &'a C, keks: &'a Keks, now_ms: i64) -> Deps<'a, S, S, C> {
    Deps::new(store, store, client, Ok(keks), settings(), now_ms, &Stopped)
}
