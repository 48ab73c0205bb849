//! Walking a chain to find its first broken link.

use super::{EventContent, event_hash, parse_details};
use crate::domain::model::BrokenLink;
use crate::storage::entities::{audit_event, audit_head};

/// Checks events one at a time in chain order, remembering only the last
/// hash, so a chain of any length verifies in bounded memory.
#[derive(Debug)]
pub(crate) struct ChainWalk {
    expected_sequence: i64,
    previous_hash: String,
    checked: i64,
}

impl ChainWalk {
    pub fn new() -> Self {
        Self {
            expected_sequence: 1,
            previous_hash: String::new(),
            checked: 0,
        }
    }

    pub fn checked(&self) -> i64 {
        self.checked
    }

    pub fn check(&mut self, event: &audit_event::Model) -> Result<(), BrokenLink> {
        let broken = |reason: String| BrokenLink {
            event_id: Some(event.id),
            sequence: event.sequence,
            reason,
        };
        if event.sequence != self.expected_sequence {
            return Err(broken(format!(
                "sequence gap: expected {}, found {}",
                self.expected_sequence, event.sequence
            )));
        }
        if event.previous_hash != self.previous_hash {
            return Err(broken(
                "previous-hash mismatch: the event does not link to the one before it".to_owned(),
            ));
        }
        let Some(details) = parse_details(&event.details) else {
            return Err(broken(
                "hash mismatch: details are not a string map".to_owned(),
            ));
        };
        let recomputed = event_hash(
            &event.previous_hash,
            &EventContent {
                id: event.id,
                workspace_id: event.workspace_id,
                sequence: event.sequence,
                actor: &event.actor,
                action: &event.action,
                target: &event.target,
                request_id: &event.request_id,
                occur_time: event.occur_time,
                details: &details,
            },
        );
        if recomputed != event.hash {
            return Err(broken(
                "hash mismatch: the event's content changed after it was written".to_owned(),
            ));
        }
        self.expected_sequence += 1;
        self.previous_hash.clone_from(&event.hash);
        self.checked += 1;
        Ok(())
    }

    /// After the last event: the chain must end where its head says, or
    /// events were cut off the end.
    pub fn finish(&self, head: &audit_head::Model) -> Result<(), BrokenLink> {
        let last_checked = self.expected_sequence - 1;
        if last_checked != head.last_sequence {
            return Err(BrokenLink {
                event_id: None,
                sequence: self.expected_sequence,
                reason: format!(
                    "missing events: the chain head records {} events, found {last_checked}",
                    head.last_sequence
                ),
            });
        }
        if self.previous_hash != head.last_hash {
            return Err(BrokenLink {
                event_id: None,
                sequence: last_checked,
                reason: "chain head mismatch: the last event is not the one the head records"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::DateTime;
    use uuid::Uuid;

    use super::*;
    use crate::storage;

    fn chain(length: i64) -> Vec<audit_event::Model> {
        let workspace_id = Uuid::now_v7();
        let mut previous_hash = String::new();
        (1..=length)
            .map(|sequence| {
                let details = BTreeMap::from([("role".to_owned(), "admin".to_owned())]);
                let id = Uuid::now_v7();
                let occur_time = storage::now();
                let hash = event_hash(
                    &previous_hash,
                    &EventContent {
                        id,
                        workspace_id,
                        sequence,
                        actor: "user:1",
                        action: "member.role_changed",
                        target: "user:2",
                        request_id: "req-1",
                        occur_time,
                        details: &details,
                    },
                );
                let event = audit_event::Model {
                    id,
                    workspace_id,
                    sequence,
                    actor: "user:1".to_owned(),
                    action: "member.role_changed".to_owned(),
                    target: "user:2".to_owned(),
                    request_id: "req-1".to_owned(),
                    occur_time,
                    details: serde_json::to_string(&details).unwrap(),
                    previous_hash: previous_hash.clone(),
                    hash: hash.clone(),
                };
                previous_hash = hash;
                event
            })
            .collect()
    }

    fn head_of(events: &[audit_event::Model]) -> audit_head::Model {
        let last = events.last().unwrap();
        audit_head::Model {
            workspace_id: last.workspace_id,
            last_sequence: last.sequence,
            last_hash: last.hash.clone(),
        }
    }

    fn walk(events: &[audit_event::Model], head: &audit_head::Model) -> Result<i64, BrokenLink> {
        let mut walk = ChainWalk::new();
        for event in events {
            walk.check(event)?;
        }
        walk.finish(head)?;
        Ok(walk.checked())
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let events = chain(5);
        assert_eq!(walk(&events, &head_of(&events)), Ok(5));
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let details = BTreeMap::new();
        let content = |actor, action| EventContent {
            id: Uuid::nil(),
            workspace_id: Uuid::nil(),
            sequence: 1,
            actor,
            action,
            target: "",
            request_id: "",
            occur_time: DateTime::UNIX_EPOCH,
            details: &details,
        };
        assert_ne!(
            event_hash("", &content("ab", "c")),
            event_hash("", &content("a", "bc"))
        );
        let split = BTreeMap::from([("a".to_owned(), "bc".to_owned())]);
        let joined = BTreeMap::from([("ab".to_owned(), "c".to_owned())]);
        let with = |details| EventContent {
            details,
            ..content("x", "y")
        };
        assert_ne!(
            event_hash("", &with(&split)),
            event_hash("", &with(&joined))
        );
    }

    #[test]
    fn a_changed_field_breaks_the_hash_of_that_event() {
        let events = chain(4);
        let head = head_of(&events);
        let mut tampered = events.clone();
        tampered[2].actor = "user:intruder".to_owned();
        let broken = walk(&tampered, &head).unwrap_err();
        assert_eq!(broken.sequence, 3);
        assert_eq!(broken.event_id, Some(events[2].id));
        assert!(broken.reason.starts_with("hash mismatch"));

        let mut tampered = events.clone();
        tampered[1].details = r#"{"role":"owner"}"#.to_owned();
        assert_eq!(walk(&tampered, &head).unwrap_err().sequence, 2);
    }

    #[test]
    fn a_rehashed_event_breaks_the_link_of_the_next() {
        let events = chain(4);
        let head = head_of(&events);
        let mut tampered = events.clone();
        tampered[1].hash = "0".repeat(64);
        // Event 2's own hash no longer holds.
        assert_eq!(walk(&tampered, &head).unwrap_err().sequence, 2);
        let mut tampered = events.clone();
        tampered[2].previous_hash = "f".repeat(64);
        let broken = walk(&tampered, &head).unwrap_err();
        assert_eq!(broken.sequence, 3);
        assert!(broken.reason.starts_with("previous-hash mismatch"));
    }

    #[test]
    fn removed_events_are_found_in_the_middle_and_at_the_end() {
        let events = chain(5);
        let head = head_of(&events);
        let mut gapped = events.clone();
        gapped.remove(2);
        let broken = walk(&gapped, &head).unwrap_err();
        assert_eq!(broken.sequence, 4);
        assert!(
            broken
                .reason
                .starts_with("sequence gap: expected 3, found 4")
        );

        let truncated = &events[..3];
        let broken = walk(truncated, &head).unwrap_err();
        assert_eq!(broken.event_id, None);
        assert_eq!(broken.sequence, 4);
        assert!(broken.reason.starts_with("missing events"));
    }
}
