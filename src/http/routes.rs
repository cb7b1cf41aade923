//! The route table: every path of the contract, the methods it takes, and its parameters.
//! Matching is pure so that 404 and 405 (with `Allow`) are decided in one place.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    Workspaces,
    Workspace,
    Me,
    Keys,
    KeysVerify,
    Key,
    KeyReroll,
    Leaks,
    LegacyKeys,
    LegacyKey,
    ProvidersCatalog,
    Providers,
    Provider,
    ProviderValidate,
    AgentRouting,
    Resolve,
    WaypathConfigure,
    WaypathIntegration,
    WebhookSecret,
    WebhookEndpoint,
    Hook,
    Audit,
}

impl Route {
    /// In matching order: `/v1/keys/verify` comes before `/v1/keys/{id}`, and
    /// `/v1/providers/catalog` before `/v1/providers/{id}`.
    pub const ALL: [Route; 24] = [
        Route::Health,
        Route::OpenApi,
        Route::Workspaces,
        Route::Workspace,
        Route::Me,
        Route::Keys,
        Route::KeysVerify,
        Route::Key,
        Route::KeyReroll,
        Route::Leaks,
        Route::LegacyKeys,
        Route::LegacyKey,
        Route::ProvidersCatalog,
        Route::Providers,
        Route::Provider,
        Route::ProviderValidate,
        Route::AgentRouting,
        Route::Resolve,
        Route::WaypathConfigure,
        Route::WaypathIntegration,
        Route::WebhookSecret,
        Route::WebhookEndpoint,
        Route::Hook,
        Route::Audit,
    ];

    /// The path template as API.md and the OpenAPI document write it.
    pub fn template(self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::OpenApi => "/openapi.json",
            Route::Workspaces => "/v1/workspaces",
            Route::Workspace => "/v1/workspaces/{id}",
            Route::Me => "/v1/me",
            Route::Keys => "/v1/keys",
            Route::KeysVerify => "/v1/keys/verify",
            Route::Key => "/v1/keys/{id}",
            Route::KeyReroll => "/v1/keys/{id}/reroll",
            Route::Leaks => "/v1/leaks",
            Route::LegacyKeys => "/api/auth/api-keys",
            Route::LegacyKey => "/api/auth/api-keys/{id}",
            Route::ProvidersCatalog => "/v1/providers/catalog",
            Route::Providers => "/v1/providers",
            Route::Provider => "/v1/providers/{id}",
            Route::ProviderValidate => "/v1/providers/{id}/validate",
            Route::AgentRouting => "/v1/agents/{id}/routing",
            Route::Resolve => "/v1/resolve",
            Route::WaypathConfigure => "/api/integrations/{id}/configure",
            Route::WaypathIntegration => "/api/integrations/{id}",
            Route::WebhookSecret => "/v1/webhooks/secret",
            Route::WebhookEndpoint => "/v1/webhooks/endpoint",
            Route::Hook => "/v1/hooks/{id}",
            Route::Audit => "/v1/audit",
        }
    }

    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Route::Health | Route::OpenApi | Route::Me => &["GET"],
            Route::Workspaces => &["GET", "POST"],
            Route::Workspace => &["GET", "PATCH"],
            Route::Keys => &["GET", "POST"],
            Route::Key => &["GET", "DELETE"],
            Route::KeysVerify | Route::KeyReroll | Route::Leaks => &["POST"],
            Route::LegacyKeys => &["GET"],
            Route::LegacyKey | Route::WaypathIntegration => &["DELETE"],
            Route::ProvidersCatalog | Route::Providers => &["GET"],
            Route::Provider => &["GET", "PUT", "DELETE"],
            Route::ProviderValidate | Route::Resolve | Route::WaypathConfigure => &["POST"],
            Route::AgentRouting | Route::WebhookEndpoint => &["GET", "PUT", "DELETE"],
            Route::WebhookSecret | Route::Hook => &["POST"],
            Route::Audit => &["GET"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    /// The `{...}` segments of the template, in order.
    pub params: Vec<String>,
}

/// The route whose template matches `path`; one trailing slash is forgiven.
pub fn match_path(path: &str) -> Option<Matched> {
    let path = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    Route::ALL.into_iter().find_map(|route| {
        let template: Vec<&str> = route.template().split('/').skip(1).collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (pattern, segment) in template.iter().zip(&segments) {
            if pattern.starts_with('{') {
                if segment.is_empty() {
                    return None;
                }
                params.push(segment.to_string());
            } else if pattern != segment {
                return None;
            }
        }
        Some(Matched { route, params })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_static_and_parameterised_paths() {
        assert_eq!(match_path("/healthz").map(|m| m.route), Some(Route::Health));
        let matched = match_path("/v1/workspaces/ws_123").unwrap();
        assert_eq!(matched.route, Route::Workspace);
        assert_eq!(matched.params, vec!["ws_123"]);
    }

    #[test]
    fn verify_is_not_taken_for_a_key_id() {
        assert_eq!(match_path("/v1/keys/verify").map(|m| m.route), Some(Route::KeysVerify));
        assert_eq!(match_path("/v1/keys/key_abc").map(|m| m.route), Some(Route::Key));
        let reroll = match_path("/v1/keys/key_abc/reroll").unwrap();
        assert_eq!((reroll.route, reroll.params), (Route::KeyReroll, vec!["key_abc".to_string()]));
    }

    #[test]
    fn forgives_one_trailing_slash_only() {
        assert_eq!(match_path("/v1/workspaces/").map(|m| m.route), Some(Route::Workspaces));
        assert_eq!(match_path("/v1/workspaces//"), None);
    }

    #[test]
    fn unknown_paths_and_empty_parameters_do_not_match() {
        assert_eq!(match_path("/"), None);
        assert_eq!(match_path("/v2/workspaces"), None);
        assert_eq!(match_path("/v1/workspaces/ws_1/extra"), None);
        assert_eq!(match_path("/v1/workspaces//x"), None);
    }

    #[test]
    fn every_route_is_reachable_by_its_own_template() {
        for route in Route::ALL {
            let path = route.template().replace("{id}", "x");
            assert_eq!(match_path(&path).map(|m| m.route), Some(route), "{path}");
        }
    }
}
