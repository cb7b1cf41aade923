//! A key may only give another key what it holds itself: no capability it lacks, no later
//! expiry, no looser rate limit, and no other subject. Products trust `subject` from verify,
//! so a child with a subject of its own choosing would be a forged identity.

use serde_json::Value;

use super::{Capabilities, KeyRecord, RateLimit};
use crate::error::ApiError;

/// The terms a new key would be issued with, before they are checked against its maker.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub expires_at: Option<i64>,
    pub rate_limit: Option<RateLimit>,
    pub subject: Option<Value>,
}

impl Terms {
    /// The terms of a key created by `parent`: what the request leaves out is inherited
    /// (a bounded parent's expiry, rate limit and subject), then all of it is checked.
    pub fn inherit(parent: &KeyRecord, requested: Terms) -> Result<Terms, ApiError> {
        let terms = Terms {
            expires_at: requested.expires_at.or(working_until(parent)),
            rate_limit: requested.rate_limit.or(parent.rate_limit),
            subject: requested.subject.or_else(|| parent.subject.clone()),
        };
        terms.check_within(parent)?;
        Ok(terms)
    }

    /// The terms a successor of `target` carries (its own, unchanged).
    pub fn of(target: &KeyRecord) -> Terms {
        Terms { expires_at: target.expires_at, rate_limit: target.rate_limit, subject: target.subject.clone() }
    }

    /// 403 `capability_escalation` naming the first field in which these terms are wider
    /// than `parent`'s own. A parent without a bound leaves that field free.
    pub fn check_within(&self, parent: &KeyRecord) -> Result<(), ApiError> {
        let escalation = |field: &str| Err(ApiError::BoundEscalation { field: field.to_string() });
        if let Some(parent_expiry) = working_until(parent) {
            if self.expires_at.is_none_or(|at| at > parent_expiry) {
                return escalation("expires_at");
            }
        }
        if let Some(parent_limit) = parent.rate_limit {
            let no_looser = |own: RateLimit| own.limit <= parent_limit.limit && own.window_seconds >= parent_limit.window_seconds;
            if !self.rate_limit.is_some_and(no_looser) {
                return escalation("rate_limit");
            }
        }
        if let Some(parent_subject) = &parent.subject {
            if self.subject.as_ref() != Some(parent_subject) {
                return escalation("subject");
            }
        }
        Ok(())
    }
}

/// When a key stops working: its expiry, or the end of a reroll's grace period if that comes
/// first. A key being rotated out may not hand out keys that outlive it.
fn working_until(key: &KeyRecord) -> Option<i64> {
    key.expires_at.into_iter().chain(key.revoked_at).min()
}

/// 403 `capability_escalation`, naming the first capability at fault, unless `holder` holds
/// every one of `wanted` (wildcards count).
pub fn check_holds(holder: &KeyRecord, wanted: &Capabilities) -> Result<(), ApiError> {
    match holder.capabilities.first_not_covered(wanted) {
        Some(capability) => Err(ApiError::CapabilityEscalation { capability: capability.to_string() }),
        None => Ok(()),
    }
}

/// Managing a key (reroll, revoke) is as strong as holding it: the manager must hold every
/// capability of the target.
pub fn check_may_manage(manager: &KeyRecord, target: &KeyRecord) -> Result<(), ApiError> {
    check_holds(manager, &target.capabilities)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::Capabilities;

    fn key(capabilities: &[&str], expires_at: Option<i64>, rate_limit: Option<(u32, u32)>, subject: Option<Value>) -> KeyRecord {
        KeyRecord {
            id: "key_parent".into(),
            workspace_id: "ws_1".into(),
            name: "parent".into(),
            key_hash: "h".into(),
            prefix: "kw_live_".into(),
            last4: "abcd".into(),
            capabilities: Capabilities::parse(capabilities).unwrap(),
            subject,
            rate_limit: rate_limit.map(|(limit, window_seconds)| RateLimit { limit, window_seconds }),
            created_at: 0,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            rerolled_from: None,
            old_key_grace_ms: None,
            allowed_ips: None,
            credits: None,
        }
    }

    fn unbounded_request() -> Terms {
        Terms { expires_at: None, rate_limit: None, subject: None }
    }

    fn refused_field(result: Result<Terms, ApiError>) -> String {
        match result {
            Err(ApiError::BoundEscalation { field }) => field,
            other => panic!("expected a capability_escalation naming a field, got {other:?}"),
        }
    }

    #[test]
    fn an_unbounded_parent_leaves_every_term_free() {
        let parent = key(&["*"], None, None, None);
        let wide = Terms { expires_at: Some(9_000), rate_limit: Some(RateLimit { limit: 5, window_seconds: 1 }), subject: Some(json!({})) };
        assert_eq!(Terms::inherit(&parent, wide.clone()).unwrap(), wide);
        assert_eq!(Terms::inherit(&parent, unbounded_request()).unwrap(), unbounded_request());
    }

    #[test]
    fn omitted_terms_are_inherited_from_a_bounded_parent() {
        let subject = json!({"role": "user"});
        let parent = key(&["*"], Some(3_600_000), Some((20, 3600)), Some(subject.clone()));
        let terms = Terms::inherit(&parent, unbounded_request()).unwrap();
        assert_eq!(terms.expires_at, Some(3_600_000));
        assert_eq!(terms.rate_limit, Some(RateLimit { limit: 20, window_seconds: 3600 }));
        assert_eq!(terms.subject, Some(subject));
    }

    #[test]
    fn a_child_may_not_outlive_its_parent() {
        let parent = key(&["*"], Some(3_600_000), None, None);
        let later = Terms { expires_at: Some(3_600_001), ..unbounded_request() };
        assert_eq!(refused_field(Terms::inherit(&parent, later)), "expires_at");
        let same = Terms { expires_at: Some(3_600_000), ..unbounded_request() };
        assert!(Terms::inherit(&parent, same).is_ok(), "the parent's own expiry is allowed");
    }

    #[test]
    fn a_key_in_its_reroll_grace_period_may_not_make_keys_that_outlive_it() {
        let mut parent = key(&["*"], None, None, None);
        parent.revoked_at = Some(600_000);
        assert_eq!(Terms::inherit(&parent, unbounded_request()).unwrap().expires_at, Some(600_000), "inherits the grace end");
        let later = Terms { expires_at: Some(600_001), ..unbounded_request() };
        assert_eq!(refused_field(Terms::inherit(&parent, later)), "expires_at");
        let successor = key(&["*"], None, None, None);
        assert!(Terms::of(&successor).check_within(&parent).is_err(), "nor reroll a key into one that outlives it");
    }

    #[test]
    fn a_child_rate_limit_may_be_no_looser_in_limit_or_window() {
        let parent = key(&["*"], None, Some((20, 3600)), None);
        let with = |limit, window_seconds| Terms { rate_limit: Some(RateLimit { limit, window_seconds }), ..unbounded_request() };
        assert_eq!(refused_field(Terms::inherit(&parent, with(21, 3600))), "rate_limit", "a higher limit");
        assert_eq!(refused_field(Terms::inherit(&parent, with(20, 60))), "rate_limit", "a shorter window");
        assert!(Terms::inherit(&parent, with(10, 3600)).is_ok(), "a tighter limit is allowed");
        assert!(Terms::inherit(&parent, with(20, 3600)).is_ok(), "the parent's own limit is allowed");
    }

    #[test]
    fn a_child_of_a_key_with_a_subject_carries_the_same_subject() {
        let parent = key(&["*"], None, None, Some(json!({"role": "user"})));
        let admin = Terms { subject: Some(json!({"role": "admin"})), ..unbounded_request() };
        assert_eq!(refused_field(Terms::inherit(&parent, admin)), "subject");
        let same = Terms { subject: Some(json!({"role": "user"})), ..unbounded_request() };
        assert!(Terms::inherit(&parent, same).is_ok());
    }

    #[test]
    fn a_successor_is_checked_with_the_target_keys_own_terms() {
        let manager = key(&["*"], Some(1_000), None, None);
        let unbounded_target = key(&["*"], None, None, None);
        assert_eq!(refused_field(Terms::of(&unbounded_target).check_within(&manager).map(|_| unbounded_request())), "expires_at");
        let bounded_target = key(&["*"], Some(500), None, None);
        assert!(Terms::of(&bounded_target).check_within(&manager).is_ok());
    }

    #[test]
    fn managing_a_key_needs_every_capability_it_holds() {
        let writer = key(&["keys:read", "keys:write"], None, None, None);
        let owner = key(&["*"], None, None, None);
        assert_eq!(check_may_manage(&writer, &owner), Err(ApiError::CapabilityEscalation { capability: "*".into() }));
        let reader = key(&["keys:read"], None, None, None);
        assert!(check_may_manage(&writer, &reader).is_ok());
        assert!(check_may_manage(&owner, &writer).is_ok(), "a wildcard covers everything");
        let namespaced = key(&["desktop:*"], None, None, None);
        assert!(check_may_manage(&namespaced, &key(&["desktop:chat"], None, None, None)).is_ok());
    }
}
