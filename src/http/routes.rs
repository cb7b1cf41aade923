//! The route table: every path of the contract, once, with each method it takes, who may call
//! it and the handler that answers. Dispatch, 404 and 405 (with `Allow`) all come from this
//! table, so a new route is one entry here and its handler.

use std::future::Future;
use std::pin::Pin;

use super::call::Call;
use super::reply::Reply;
use super::{audit, health, inbound_webhooks, keys, leaks, me, providers, waypath, webhook_settings, workspaces};
use crate::error::ApiError;

/// A handler's answer, still to be awaited.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + 'a>>;
pub type Handler = for<'a> fn(&'a mut Call) -> Pending<'a>;

/// Who may call an operation. The shell checks it before the handler runs, in the contract's
/// order: the credential (401, 429), the capability (403 `missing_capability`), then for
/// writes the read-only flag (403 `workspace_read_only`); the handler reads the body after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials: health, the spec, the provider catalog.
    Public,
    /// The admin token.
    Operator,
    /// A live platform key holding `capability` (`None`: any live key); `writes` also needs a
    /// writable workspace.
    Key { capability: Option<&'static str>, writes: bool },
    /// The admin token, or else a key holding the capability (the audit trail).
    OperatorOrKey(&'static str),
    /// A Standard Webhooks signature, which the handler checks: it is over the raw body.
    Signed,
}

impl Access {
    const fn read(capability: &'static str) -> Access {
        Access::Key { capability: Some(capability), writes: false }
    }

    const fn write(capability: &'static str) -> Access {
        Access::Key { capability: Some(capability), writes: true }
    }
}

pub struct Operation {
    pub method: &'static str,
    pub access: Access,
    pub handler: Handler,
}

pub struct RouteSpec {
    /// The path template as API.md and the OpenAPI document write it.
    pub template: &'static str,
    pub operations: &'static [Operation],
}

impl RouteSpec {
    pub fn methods(&self) -> Vec<&'static str> {
        self.operations.iter().map(|o| o.method).collect()
    }

    pub fn operation(&self, method: &str) -> Option<&'static Operation> {
        self.operations.iter().find(|o| o.method == method)
    }
}

/// Turns `async fn(&mut Call) -> Result<Reply, ApiError>` into a [`Handler`].
macro_rules! handler {
    ($function:path) => {{
        fn run(call: &mut Call) -> Pending<'_> {
            Box::pin($function(call))
        }
        run
    }};
}

macro_rules! op {
    ($method:literal, $access:expr, $function:path) => {
        Operation { method: $method, access: $access, handler: handler!($function) }
    };
}

const ANY_KEY: Access = Access::Key { capability: None, writes: false };

/// In matching order: `/v1/keys/verify` comes before `/v1/keys/{id}`, and
/// `/v1/providers/catalog` before `/v1/providers/{id}`.
pub static ROUTES: &[RouteSpec] = &[
    RouteSpec { template: "/healthz", operations: &[op!("GET", Access::Public, health::healthz)] },
    RouteSpec { template: "/openapi.json", operations: &[op!("GET", Access::Public, health::openapi)] },
    RouteSpec {
        template: "/v1/workspaces",
        operations: &[op!("GET", Access::Operator, workspaces::list), op!("POST", Access::Operator, workspaces::create)],
    },
    RouteSpec {
        template: "/v1/workspaces/{id}",
        operations: &[op!("GET", Access::Operator, workspaces::get), op!("PATCH", Access::Operator, workspaces::update)],
    },
    RouteSpec { template: "/v1/me", operations: &[op!("GET", ANY_KEY, me::me)] },
    RouteSpec { template: "/v1/workspace", operations: &[op!("GET", ANY_KEY, me::workspace)] },
    RouteSpec {
        template: "/v1/keys",
        operations: &[op!("GET", Access::read("keys:read"), keys::list), op!("POST", Access::write("keys:write"), keys::create)],
    },
    RouteSpec { template: "/v1/keys/verify", operations: &[op!("POST", Access::read("keys:verify"), keys::verify)] },
    RouteSpec { template: "/v1/keys/usage", operations: &[op!("GET", Access::read("keys:read"), keys::usage)] },
    RouteSpec {
        template: "/v1/keys/{id}",
        operations: &[op!("GET", Access::read("keys:read"), keys::get), op!("DELETE", Access::write("keys:write"), keys::revoke)],
    },
    RouteSpec { template: "/v1/keys/{id}/reroll", operations: &[op!("POST", Access::write("keys:write"), keys::reroll)] },
    RouteSpec { template: "/v1/keys/{id}/credits", operations: &[op!("POST", Access::write("keys:write"), keys::credits)] },
    RouteSpec { template: "/v1/keys/{id}/usage", operations: &[op!("GET", Access::read("keys:read"), keys::key_usage)] },
    RouteSpec { template: "/v1/leaks", operations: &[op!("POST", Access::Operator, leaks::report)] },
    RouteSpec { template: "/v1/leaks/github", operations: &[op!("POST", Access::Signed, leaks::github)] },
    RouteSpec { template: "/api/auth/api-keys", operations: &[op!("GET", Access::read("keys:read"), keys::list)] },
    RouteSpec { template: "/api/auth/api-keys/{id}", operations: &[op!("DELETE", Access::write("keys:write"), keys::revoke)] },
    RouteSpec { template: "/v1/providers/catalog", operations: &[op!("GET", Access::Public, providers::catalog)] },
    RouteSpec { template: "/v1/providers", operations: &[op!("GET", Access::read("providers:read"), providers::list)] },
    RouteSpec {
        template: "/v1/providers/{id}",
        operations: &[
            op!("GET", Access::read("providers:read"), providers::get),
            op!("PUT", Access::write("providers:write"), providers::put),
            op!("DELETE", Access::write("providers:write"), providers::remove),
        ],
    },
    // Re-validation changes no key, only what is known of it: allowed in a read-only workspace.
    RouteSpec { template: "/v1/providers/{id}/validate", operations: &[op!("POST", Access::read("providers:write"), providers::validate)] },
    RouteSpec { template: "/v1/providers/{id}/models", operations: &[op!("GET", Access::read("providers:read"), providers::models)] },
    RouteSpec { template: "/v1/agents", operations: &[op!("GET", Access::read("providers:read"), providers::list_routes)] },
    RouteSpec {
        template: "/v1/agents/{id}/routing",
        operations: &[
            op!("GET", Access::read("providers:read"), providers::get_route),
            op!("PUT", Access::write("providers:write"), providers::put_route),
            op!("DELETE", Access::write("providers:write"), providers::delete_route),
        ],
    },
    RouteSpec { template: "/v1/resolve", operations: &[op!("POST", Access::read("secrets:resolve"), providers::resolve)] },
    RouteSpec {
        template: "/api/integrations/{id}/configure",
        operations: &[op!("POST", Access::write("providers:write"), waypath::configure)],
    },
    RouteSpec { template: "/api/integrations/{id}", operations: &[op!("DELETE", Access::write("providers:write"), waypath::remove)] },
    RouteSpec {
        template: "/v1/webhooks/secret",
        operations: &[op!("POST", Access::write("webhooks:manage"), webhook_settings::rotate_secret)],
    },
    RouteSpec {
        template: "/v1/webhooks/endpoint",
        operations: &[
            op!("GET", Access::read("webhooks:manage"), webhook_settings::get_endpoint),
            op!("PUT", Access::write("webhooks:manage"), webhook_settings::put_endpoint),
            op!("DELETE", Access::write("webhooks:manage"), webhook_settings::delete_endpoint),
        ],
    },
    RouteSpec { template: "/v1/hooks/{id}", operations: &[op!("POST", Access::Signed, inbound_webhooks::receive)] },
    RouteSpec { template: "/v1/audit", operations: &[op!("GET", Access::OperatorOrKey("audit:read"), audit::list)] },
];

pub struct Matched {
    pub route: &'static RouteSpec,
    /// The `{...}` segments of the template, in order.
    pub params: Vec<String>,
}

/// The route whose template matches `path`; one trailing slash is forgiven.
pub fn match_path(path: &str) -> Option<Matched> {
    let path = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    ROUTES.iter().find_map(|route| {
        let template: Vec<&str> = route.template.split('/').skip(1).collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (pattern, segment) in template.iter().zip(&segments) {
            if pattern.starts_with('{') {
                if segment.is_empty() {
                    return None;
                }
                params.push(percent_decoded(segment));
            } else if pattern != segment {
                return None;
            }
        }
        Some(Matched { route, params })
    })
}

/// A path parameter as the client meant it: clients percent-encode what is not a plain URL
/// character (`support%3Abot` is the agent id `support:bot`). A segment that does not decode
/// to UTF-8 is kept as sent, and the handler refuses it like any other invalid id.
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, ..) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn template_of(path: &str) -> Option<&'static str> {
        match_path(path).map(|m| m.route.template)
    }

    #[test]
    fn matches_static_and_parameterised_paths() {
        assert_eq!(template_of("/healthz"), Some("/healthz"));
        let matched = match_path("/v1/workspaces/ws_123").unwrap();
        assert_eq!(matched.route.template, "/v1/workspaces/{id}");
        assert_eq!(matched.params, vec!["ws_123"]);
    }

    #[test]
    fn parameters_are_percent_decoded() {
        assert_eq!(match_path("/v1/agents/support%3Abot/routing").unwrap().params, vec!["support:bot"]);
        assert_eq!(match_path("/v1/workspaces/%C3%A9%2F").unwrap().params, vec!["é/"]);
        assert_eq!(match_path("/v1/workspaces/100%").unwrap().params, vec!["100%"]);
        assert_eq!(match_path("/v1/workspaces/%ff").unwrap().params, vec!["%ff"]);
    }

    #[test]
    fn verify_is_not_taken_for_a_key_id() {
        assert_eq!(template_of("/v1/keys/verify"), Some("/v1/keys/verify"));
        assert_eq!(template_of("/v1/keys/key_abc"), Some("/v1/keys/{id}"));
        let reroll = match_path("/v1/keys/key_abc/reroll").unwrap();
        assert_eq!((reroll.route.template, reroll.params), ("/v1/keys/{id}/reroll", vec!["key_abc".to_string()]));
    }

    #[test]
    fn forgives_one_trailing_slash_only() {
        assert_eq!(template_of("/v1/workspaces/"), Some("/v1/workspaces"));
        assert!(match_path("/v1/workspaces//").is_none());
    }

    #[test]
    fn unknown_paths_and_empty_parameters_do_not_match() {
        for path in ["/", "/v2/workspaces", "/v1/workspaces/ws_1/extra", "/v1/workspaces//x"] {
            assert!(match_path(path).is_none(), "{path}");
        }
    }

    #[test]
    fn every_route_is_reachable_by_its_own_template() {
        for route in ROUTES {
            let path = route.template.replace("{id}", "x");
            assert_eq!(template_of(&path), Some(route.template), "{path}");
        }
    }

    #[test]
    fn each_route_and_each_of_its_methods_is_declared_once() {
        let templates: BTreeSet<&str> = ROUTES.iter().map(|r| r.template).collect();
        assert_eq!(templates.len(), ROUTES.len(), "a template is declared twice");
        for route in ROUTES {
            let methods: BTreeSet<&str> = route.methods().into_iter().collect();
            assert_eq!(methods.len(), route.operations.len(), "{} declares a method twice", route.template);
        }
    }

    #[test]
    fn every_write_names_the_capability_it_needs() {
        for route in ROUTES {
            for operation in route.operations {
                if let Access::Key { capability, writes: true } = operation.access {
                    assert!(capability.is_some(), "{} {} writes without a capability", operation.method, route.template);
                }
            }
        }
    }
}
