//! What every use case works with, bundled once per request (or per scheduled run) and passed
//! as one value: the stores, the outbound client, the encryption keys, the deployment's
//! settings and the clock. The HTTP shell builds it from the Worker's bindings; native tests
//! build it over SQLite, a KV fake and a scripted client.

use std::time::Duration;

use futures_util::future::LocalBoxFuture;

use crate::error::ApiError;
use crate::settings::{KeyPrefix, Settings};
use crate::vault::Keks;

/// Time as a use case sees it: the Worker's clock and timers, or a test's.
pub trait Clock {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
    /// Waits `duration` (a second delivery of a webhook waiting for the first one's answer).
    fn pause(&self, duration: Duration) -> LocalBoxFuture<'_, ()>;
}

pub struct Deps<'a, S, B, C> {
    /// D1 in the Worker: keys, workspaces, providers, webhooks, audit.
    pub store: &'a S,
    /// KV in the Worker: the encrypted provider keys.
    pub blobs: &'a B,
    /// Outbound HTTP: provider validation and notification delivery.
    pub client: &'a C,
    /// The key-encryption keys, or why the deployment has none usable: only the use cases
    /// that seal or open a secret need them, so a missing `VAULT_KEKS` fails only those.
    keks: Result<&'a Keks, &'a str>,
    pub settings: &'a Settings,
    /// When the request arrived (or the scheduled run began): what records and audit entries
    /// are stamped with.
    pub now_ms: i64,
    clock: &'a dyn Clock,
}

// By hand: a derive would ask the store, blob and client types to be `Copy` themselves.
impl<S, B, C> Clone for Deps<'_, S, B, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S, B, C> Copy for Deps<'_, S, B, C> {}

impl<'a, S, B, C> Deps<'a, S, B, C> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: &'a S,
        blobs: &'a B,
        client: &'a C,
        keks: Result<&'a Keks, &'a str>,
        settings: &'a Settings,
        now_ms: i64,
        clock: &'a dyn Clock,
    ) -> Self {
        Deps { store, blobs, client, keks, settings, now_ms, clock }
    }

    pub fn keks(&self) -> Result<&'a Keks, ApiError> {
        self.keks.map_err(ApiError::internal)
    }

    /// The time now, never before the request arrived: a body may have taken a while to come,
    /// and a scheduled run reads it afresh for each item.
    pub fn clock_ms(&self) -> i64 {
        self.now_ms.max(self.clock.now_ms())
    }

    pub async fn pause(&self, duration: Duration) {
        self.clock.pause(duration).await
    }

    pub fn key_prefix(&self) -> &'a KeyPrefix {
        &self.settings.key_prefix
    }

    /// Whether the host policy admits `http` and loopback hosts (local development only).
    pub fn allow_insecure_hosts(&self) -> bool {
        self.settings.allow_insecure_provider_hosts
    }

    /// How long a day of credit refills lasts (`CREDIT_DAY_MS` in tests).
    pub fn credit_day_ms(&self) -> i64 {
        self.settings.credit_day_ms
    }

    /// The same dependencies at a later moment: what a step that runs after a wait is stamped with.
    pub fn at(&self, now_ms: i64) -> Self {
        Deps { now_ms, ..*self }
    }
}

/// A clock standing still at each call's own `now`, for the crate's unit tests.
#[cfg(test)]
pub(crate) struct Stopped;

#[cfg(test)]
impl Clock for Stopped {
    fn now_ms(&self) -> i64 {
        i64::MIN
    }

    fn pause(&self, _duration: Duration) -> LocalBoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
impl<'a, S, B> Deps<'a, S, B, ()> {
    /// The bundle of a unit test: no outbound client, the default settings.
    pub(crate) fn for_tests(store: &'a S, blobs: &'a B, keks: &'a Keks, now_ms: i64) -> Self {
        let settings = Box::leak(Box::new(Settings::from_vars(None, None).expect("the defaults are valid")));
        Deps::new(store, blobs, &(), Ok(keks), settings, now_ms, &Stopped)
    }
}
