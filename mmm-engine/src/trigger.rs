//! Trigger patterns: `pr.opened` (one kind), `pr.*` (every kind under `pr.`), `*` (every
//! kind). Playbook triggers and the `recent_count` helper of conditions match kinds the
//! same way; this module depends on nothing else in the crate so that both can use it.

/// Whether a trigger pattern (`pr.opened`, `pr.*`, `*`) matches a kind.
pub(crate) fn kind_matches(pattern: &str, kind: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => kind
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_patterns() {
        assert!(kind_matches("*", "anything.at.all"));
        assert!(kind_matches("pr.*", "pr.opened"));
        assert!(kind_matches("pr.*", "pr.review.requested"));
        assert!(!kind_matches("pr.*", "pr"));
        assert!(!kind_matches("pr.*", "prx.opened"));
        assert!(kind_matches("pr.opened", "pr.opened"));
        assert!(!kind_matches("pr.opened", "pr.opened.x"));
    }
}
