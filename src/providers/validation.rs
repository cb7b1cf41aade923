//! Live validation: the cheapest requests that prove a key, per provider family, and what they
//! add up to. What one answer means is `classify`'s; the HTTP adapter only performs requests.

use serde_json::{Map, Value};

use super::catalog::{Family, ProviderId, AZURE_API_VERSION};
pub use super::classify::{classify, Outcome, ProbeResponse};
use super::funds::{self, Funds};
use super::host::ApiHost;
use super::model_list::{self, Listing};
use crate::crypto::sigv4;
use crate::error::ApiError;

/// How long a provider may take to answer a validation request.
pub const TIMEOUT_MS: u64 = 10_000;
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const USER_AGENT: &str = concat!("keywarden/", env!("CARGO_PKG_VERSION"));

/// A request to a provider: a GET, or a POST of `body` as JSON. It carries the key, so it never
/// prints its headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl ProbeRequest {
    pub fn get(url: String, headers: Vec<(String, String)>) -> Self {
        ProbeRequest { url, headers, body: None }
    }

    pub fn method(&self) -> &'static str {
        if self.body.is_some() {
            "POST"
        } else {
            "GET"
        }
    }
}

impl std::fmt::Debug for ProbeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "{} {} (headers: {names:?})", self.method(), self.url)
    }
}

/// What is validated: the key with everything it will be used with.
#[derive(Clone)]
pub struct Candidate<'a> {
    pub provider: ProviderId,
    pub api_key: &'a str,
    pub host: &'a ApiHost,
    pub config: &'a Map<String, Value>,
    pub model: Option<&'a str>,
    pub fallback_model: Option<&'a str>,
}

impl Candidate<'_> {
    fn config_str(&self, name: &str) -> Option<&str> {
        self.config.get(name).and_then(Value::as_str)
    }
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

/// The one request that proves the key for its provider.
pub fn probe_request(candidate: &Candidate, now_ms: i64) -> ProbeRequest {
    let agent = header("user-agent", USER_AGENT);
    let bearer = || header("authorization", format!("Bearer {}", candidate.api_key));
    match candidate.provider.family() {
        Family::OpenAiStyle | Family::Gemini => ProbeRequest::get(candidate.host.join("/models"), vec![bearer(), agent]),
        Family::Anthropic => ProbeRequest::get(
            // The first page holds 20 models by default: ask for all, so no offered model is missed.
            candidate.host.join("/v1/models?limit=1000"),
            vec![header("x-api-key", candidate.api_key), header("anthropic-version", ANTHROPIC_VERSION), agent],
        ),
        Family::OpenRouter => ProbeRequest::get(candidate.host.join("/key"), vec![bearer(), agent]),
        Family::Azure => {
            let url = format!("{}?api-version={}", candidate.host.join("/openai/models"), azure_version(candidate));
            ProbeRequest::get(url, vec![header("api-key", candidate.api_key), agent])
        }
        Family::Bedrock => bedrock_request(candidate, now_ms, agent),
    }
}

fn bedrock_request(candidate: &Candidate, now_ms: i64, agent: (String, String)) -> ProbeRequest {
    let url = candidate.host.join("/foundation-models");
    let parsed = url::Url::parse(&url).ok();
    let host = parsed
        .as_ref()
        .map(|u| match u.port() {
            Some(port) => format!("{}:{port}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        })
        .unwrap_or_default();
    let path = parsed.as_ref().map_or("/foundation-models".to_string(), |u| u.path().to_string());
    let request = sigv4::SigningRequest { method: "GET", host: &host, path: &path, query: &[], headers: &[], payload: b"" };
    let credentials = sigv4::Credentials {
        access_key_id: candidate.config_str("access_key_id").unwrap_or_default(),
        secret_access_key: candidate.api_key,
        session_token: None,
    };
    let region = candidate.config_str("region").unwrap_or_default();
    let mut headers = sigv4::sign(&request, &credentials, region, "bedrock", &sigv4::amz_date(now_ms));
    headers.push(agent);
    ProbeRequest::get(url, headers)
}

fn azure_version(candidate: &Candidate) -> String {
    url_encode(candidate.config_str("api_version").unwrap_or(AZURE_API_VERSION))
}

/// OpenRouter proves a key with `/key`, which lists no models; its public model list is asked
/// separately, without the key, for the models a key may use.
pub fn models_request(candidate: &Candidate) -> Option<ProbeRequest> {
    (candidate.provider.family() == Family::OpenRouter)
        .then(|| ProbeRequest::get(candidate.host.join("/models"), vec![header("user-agent", USER_AGENT)]))
}

/// DeepSeek tells an account's balance at `/user/balance`.
pub fn balance_request(candidate: &Candidate) -> Option<ProbeRequest> {
    (candidate.provider == ProviderId::DeepSeek).then(|| {
        let headers = vec![header("authorization", format!("Bearer {}", candidate.api_key)), header("user-agent", USER_AGENT)];
        ProbeRequest::get(candidate.host.join("/user/balance"), headers)
    })
}

/// Azure's model list proves the key but not the deployment. A chat request without messages
/// proves it at no cost: a deployment that exists refuses the body (400), one that does not
/// answers 404 `DeploymentNotFound`.
pub fn deployment_request(candidate: &Candidate) -> Option<ProbeRequest> {
    if candidate.provider.family() != Family::Azure {
        return None;
    }
    let deployment = candidate.config_str("deployment")?;
    let path = format!("/openai/deployments/{}/chat/completions", url_encode_segment(deployment));
    let url = format!("{}?api-version={}", candidate.host.join(&path), azure_version(candidate));
    let headers = vec![header("api-key", candidate.api_key), header("content-type", "application/json"), header("user-agent", USER_AGENT)];
    Some(ProbeRequest { url, headers, body: Some("{}".to_string()) })
}

fn url_encode_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn candidate<'a>(provider: ProviderId, host: &'a ApiHost, config: &'a Map<String, Value>) -> Candidate<'a> {
        Candidate { provider, api_key: "sk-test-key", host, config, model: None, fallback_model: None }
    }

    #[test]
    fn openai_style_providers_are_probed_with_a_bearer_get_of_models() {
        let host = ApiHost::parse("https://api.deepseek.com/", false).unwrap();
        let config = Map::new();
        let request = probe_request(&candidate(ProviderId::DeepSeek, &host, &config), 0);
        assert_eq!(request.url, "https://api.deepseek.com/models");
        assert!(request.headers.contains(&header("authorization", "Bearer sk-test-key")));
    }

    #[test]
    fn anthropic_is_probed_with_x_api_key_and_its_version_header() {
        let host = ApiHost::parse("https://api.anthropic.com/", false).unwrap();
        let config = Map::new();
        let request = probe_request(&candidate(ProviderId::Anthropic, &host, &config), 0);
        assert_eq!(request.url, "https://api.anthropic.com/v1/models?limit=1000");
        assert!(request.headers.contains(&header("x-api-key", "sk-test-key")));
        assert!(request.headers.contains(&header("anthropic-version", "2023-06-01")));
        assert!(!request.headers.iter().any(|(n, _)| n == "authorization"));
    }

    #[test]
    fn openrouter_is_probed_at_key_not_its_public_model_list() {
        let host = ApiHost::parse("https://openrouter.ai/api/v1", false).unwrap();
        let config = Map::new();
        let probe = candidate(ProviderId::OpenRouter, &host, &config);
        assert_eq!(probe_request(&probe, 0).url, "https://openrouter.ai/api/v1/key");
        let models = models_request(&probe).unwrap();
        assert_eq!(models.url, "https://openrouter.ai/api/v1/models");
        assert!(!models.headers.iter().any(|(n, _)| n == "authorization"), "the public list is asked without the key");
        let openai = ApiHost::parse("https://api.openai.com/v1", false).unwrap();
        assert_eq!(models_request(&candidate(ProviderId::OpenAi, &openai, &config)), None, "others list models in the probe");
    }

    #[test]
    fn deepseek_alone_is_asked_its_balance_with_the_key() {
        let host = ApiHost::parse("https://api.deepseek.com", false).unwrap();
        let config = Map::new();
        let request = balance_request(&candidate(ProviderId::DeepSeek, &host, &config)).unwrap();
        assert_eq!(request.url, "https://api.deepseek.com/user/balance");
        assert!(request.headers.contains(&header("authorization", "Bearer sk-test-key")));
        assert_eq!(balance_request(&candidate(ProviderId::Qwen, &host, &config)), None);
    }

    #[test]
    fn azure_proves_its_deployment_with_a_chat_request_that_costs_nothing() {
        let host = ApiHost::parse("https://res.openai.azure.com/", false).unwrap();
        let mut config = Map::new();
        config.insert("deployment".into(), json!("gpt 4o/prod"));
        config.insert("api_version".into(), json!("2024-10-21"));
        let request = deployment_request(&candidate(ProviderId::Azure, &host, &config)).unwrap();
        assert_eq!(request.url, "https://res.openai.azure.com/openai/deployments/gpt%204o%2Fprod/chat/completions?api-version=2024-10-21");
        assert_eq!((request.method(), request.body.as_deref()), ("POST", Some("{}")), "no messages: nothing to bill");
        assert!(request.headers.contains(&header("api-key", "sk-test-key")));
        assert_eq!(deployment_request(&candidate(ProviderId::OpenAi, &host, &config)), None);
    }

    #[test]
    fn azure_is_probed_with_api_key_and_the_api_version() {
        let host = ApiHost::parse("https://res.openai.azure.com/", false).unwrap();
        let mut config = Map::new();
        let request = probe_request(&candidate(ProviderId::Azure, &host, &config), 0);
        assert_eq!(request.url, "https://res.openai.azure.com/openai/models?api-version=2024-10-21");
        assert_eq!(request.method(), "GET");
        assert!(request.headers.contains(&header("api-key", "sk-test-key")));
        config.insert("api_version".into(), json!("2024-02-15-preview"));
        let request = probe_request(&candidate(ProviderId::Azure, &host, &config), 0);
        assert!(request.url.ends_with("api-version=2024-02-15-preview"));
    }

    #[test]
    fn bedrock_is_probed_with_a_sigv4_signed_get() {
        let host = ApiHost::parse("https://bedrock.us-east-1.amazonaws.com", false).unwrap();
        let mut config = Map::new();
        config.insert("region".into(), json!("us-east-1"));
        config.insert("access_key_id".into(), json!("AKIDEXAMPLE"));
        let request = probe_request(&candidate(ProviderId::Bedrock, &host, &config), 1_440_938_160_000);
        assert_eq!(request.url, "https://bedrock.us-east-1.amazonaws.com/foundation-models");
        let authorization = &request.headers.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature="
        ));
        assert!(request.headers.contains(&header("x-amz-date", "20150830T123600Z")));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let host = ApiHost::parse("https://api.openai.com/v1", false).unwrap();
        let config = Map::new();
        let shown = format!("{:?}", probe_request(&candidate(ProviderId::OpenAi, &host, &config), 0));
        assert!(!shown.contains("sk-test-key"), "{shown}");
    }
}

/// Why a provider could not be asked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    Timeout,
    Network,
    /// The answer declared or sent more than `model_list::MAX_ANSWER_BYTES`; it was not read.
    TooLarge,
}

/// Performs a probe request; the Worker's adapter uses `fetch` with the timeout above.
#[allow(async_fn_in_trait)]
pub trait ProviderClient {
    async fn send(&self, request: &ProbeRequest) -> Result<ProbeResponse, TransportFailure>;
}

/// What a live validation learned, whatever it concluded: funds and the model list are kept
/// when the provider told them, even for a key that is refused (a key that ran dry shows 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub verdict: Result<(), ApiError>,
    pub funds: Option<Funds>,
    pub listing: Option<Listing>,
}

impl Checked {
    fn refused(verdict: ApiError, funds: Option<Funds>) -> Self {
        Checked { verdict: Err(verdict), funds, listing: None }
    }
}

/// The contract's error for a conclusive refusal, or for a provider that could not answer.
pub fn refusal(outcome: Outcome) -> Option<ApiError> {
    Some(match outcome {
        Outcome::Accepted => return None,
        Outcome::InvalidKey { provider_status } => ApiError::InvalidKey { provider_status },
        Outcome::Restricted { provider_status, reason } => ApiError::KeyRestricted { provider_status, provider_reason: reason },
        Outcome::RegionUnsupported { provider_status, reason } => ApiError::RegionUnsupported { provider_status, provider_reason: reason },
        Outcome::QuotaExceeded { provider_status } => ApiError::QuotaExceeded { provider_status },
        Outcome::RateLimited { retry_after, .. } => ApiError::ProviderRateLimited { retry_after },
        Outcome::Unavailable { provider_status } => ApiError::ProviderUnavailable { provider_status },
    })
}

/// Proves the key live; reads its funds where the provider tells them (a key with nothing left
/// is `quota_exceeded`); proves Azure's deployment; then that `model` and `fallback_model` are
/// offered to it. Every refusal maps to one of the contract's errors.
pub async fn validate_live(client: &impl ProviderClient, candidate: &Candidate<'_>, now_ms: i64) -> Checked {
    let family = candidate.provider.family();
    let probed = match client.send(&probe_request(candidate, now_ms)).await {
        Ok(response) => response,
        Err(_) => return Checked::refused(ApiError::ProviderUnavailable { provider_status: None }, None),
    };
    let outcome = classify(family, &probed);
    let mut funds = if family == Family::OpenRouter && probed.succeeded() { funds::openrouter(&probed.body, now_ms) } else { None };
    if let Some(refused) = refusal(outcome) {
        return Checked::refused(refused, funds);
    }
    if let Some(request) = balance_request(candidate) {
        // The key is proven already: a balance that cannot be read is only unknown.
        if let Ok(answer) = client.send(&request).await {
            if let Some((available, balance)) = answer.succeeded().then(|| funds::deepseek(&answer.body, now_ms)).flatten() {
                funds = Some(balance);
                if !available {
                    return Checked::refused(ApiError::QuotaExceeded { provider_status: answer.status }, funds);
                }
            }
        }
    }
    if let Some(request) = deployment_request(candidate) {
        if let Err(refused) = deployment_exists(client, &request).await {
            return Checked::refused(refused, funds);
        }
    }
    let wanted: Vec<(&str, &str)> =
        [("model", candidate.model), ("fallback_model", candidate.fallback_model)].into_iter().filter_map(|(f, m)| Some((f, m?))).collect();
    let models: Vec<&str> = wanted.iter().map(|(_, model)| *model).collect();
    let list = match models_request(candidate) {
        Some(request) => match client.send(&request).await {
            Ok(response) if response.succeeded() => Ok(response.body),
            Ok(response) => Err(ApiError::ProviderUnavailable { provider_status: Some(response.status) }),
            Err(_) => Err(ApiError::ProviderUnavailable { provider_status: None }),
        },
        None => Ok(probed.body),
    };
    let listing = list.as_deref().ok().and_then(|body| model_list::listing(body, &models));
    if wanted.is_empty() {
        // Nothing to prove: a list that could not be read only leaves the picker empty.
        return Checked { verdict: Ok(()), funds, listing };
    }
    let list_failed = list.err();
    // A model was named but no list could be read: it cannot be proven, so nothing is stored.
    let Some(found) = listing else {
        return Checked::refused(list_failed.unwrap_or(ApiError::ProviderUnavailable { provider_status: None }), funds);
    };
    let verdict = match wanted.iter().zip(&found.offered).find(|(_, offered)| !**offered) {
        Some(((field, _), _)) => Err(ApiError::InvalidModel { field: field.to_string() }),
        None => Ok(()),
    };
    Checked { verdict, funds, listing: Some(found) }
}

/// Azure's answer to the deliberately incomplete chat request: a deployment that exists refuses
/// the body (400) or throttles it; one that does not answers 404.
async fn deployment_exists(client: &impl ProviderClient, request: &ProbeRequest) -> Result<(), ApiError> {
    let answer = client.send(request).await.map_err(|_| ApiError::ProviderUnavailable { provider_status: None })?;
    match answer.status {
        404 => Err(ApiError::InvalidModel { field: "config.deployment".into() }),
        200..=299 | 400 | 422 | 429 => Ok(()),
        _ => match refusal(classify(Family::Azure, &answer)) {
            Some(refused) => Err(refused),
            None => Ok(()),
        },
    }
}
