//! The principal tokens the edge holds, indexed by whom they speak for, so
//! that an access change (a member's role changed or removed, a key revoked
//! or rotated) drops exactly the tokens it makes stale without scanning the
//! whole cache.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tyboo_proto::tenancy::AccessChange;

use super::Authenticated;

pub(super) type KeyDigest = [u8; 32];

/// Whom a token speaks for, as tenancy reported it with the token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TokenSubject {
    pub(crate) workspace_id: String,
    /// Empty for a token that is not a person's.
    pub(crate) user_id: String,
    /// Empty for a token not issued for an API key.
    pub(crate) api_key_id: String,
}

pub(super) struct CachedToken {
    pub(super) token: Arc<str>,
    pub(super) valid_until: Instant,
    pub(super) subject: Arc<TokenSubject>,
}

/// A member of one workspace: (workspace id, user id).
type MemberKey = (String, String);

#[derive(Default)]
pub(super) struct TokenCache {
    entries: HashMap<KeyDigest, CachedToken>,
    by_member: HashMap<MemberKey, HashSet<KeyDigest>>,
    by_api_key: HashMap<String, HashSet<KeyDigest>>,
    /// Counts the evictions for access changes. An exchange remembers it
    /// before asking tenancy and caches its token only if it has not moved
    /// since: a change applied while the exchange was in flight may have
    /// come too late for tenancy's answer, and must not be undone by it.
    generation: u64,
}

impl TokenCache {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn contains(&self, digest: &KeyDigest) -> bool {
        self.entries.contains_key(digest)
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// The live token for `digest`; an expired one is dropped.
    pub(super) fn get(&mut self, digest: &KeyDigest, now: Instant) -> Option<Authenticated> {
        let entry = self.entries.get(digest)?;
        if entry.valid_until > now {
            return Some(Authenticated {
                token: Arc::clone(&entry.token),
                subject: Arc::clone(&entry.subject),
            });
        }
        self.remove(digest);
        None
    }

    pub(super) fn insert(&mut self, digest: KeyDigest, entry: CachedToken) {
        self.remove(&digest);
        let subject = &entry.subject;
        if !subject.user_id.is_empty() {
            self.by_member
                .entry((subject.workspace_id.clone(), subject.user_id.clone()))
                .or_default()
                .insert(digest);
        }
        if !subject.api_key_id.is_empty() {
            self.by_api_key
                .entry(subject.api_key_id.clone())
                .or_default()
                .insert(digest);
        }
        self.entries.insert(digest, entry);
    }

    pub(super) fn remove(&mut self, digest: &KeyDigest) -> bool {
        let Some(entry) = self.entries.remove(digest) else {
            return false;
        };
        let subject = entry.subject;
        let member = (subject.workspace_id.clone(), subject.user_id.clone());
        unindex(&mut self.by_member, &member, digest);
        unindex(&mut self.by_api_key, &subject.api_key_id, digest);
        true
    }

    pub(super) fn remove_expired(&mut self, now: Instant) {
        let expired: Vec<KeyDigest> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.valid_until <= now)
            .map(|(digest, _)| *digest)
            .collect();
        for digest in expired {
            self.remove(&digest);
        }
    }

    /// The entry that would expire first.
    pub(super) fn soonest(&self) -> Option<KeyDigest> {
        self.entries
            .iter()
            .min_by_key(|(_, entry)| entry.valid_until)
            .map(|(digest, _)| *digest)
    }

    /// Drops every token that `changes` make stale; returns how many. A
    /// change naming a member drops all their tokens in that workspace,
    /// whatever key each came from; one naming a key drops its tokens. A
    /// change naming neither (a kind this edge does not know) drops
    /// everything, since it cannot tell what is still true.
    pub(super) fn evict_changed(&mut self, changes: &[AccessChange]) -> usize {
        if changes.is_empty() {
            return 0;
        }
        self.generation += 1;
        let mut stale = HashSet::new();
        for change in changes {
            if change.user_id.is_empty() && change.api_key_id.is_empty() {
                return self.clear();
            }
            if !change.user_id.is_empty() {
                let member = (change.workspace_id.clone(), change.user_id.clone());
                stale.extend(self.by_member.get(&member).into_iter().flatten().copied());
            }
            if !change.api_key_id.is_empty() {
                stale.extend(
                    self.by_api_key
                        .get(&change.api_key_id)
                        .into_iter()
                        .flatten()
                        .copied(),
                );
            }
        }
        stale.iter().filter(|digest| self.remove(digest)).count()
    }

    /// Drops every token; returns how many.
    pub(super) fn evict_all(&mut self) -> usize {
        self.generation += 1;
        self.clear()
    }

    fn clear(&mut self) -> usize {
        let evicted = self.entries.len();
        self.entries.clear();
        self.by_member.clear();
        self.by_api_key.clear();
        evicted
    }
}

fn unindex<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, HashSet<KeyDigest>>,
    key: &K,
    digest: &KeyDigest,
) {
    if let Some(digests) = index.get_mut(key) {
        digests.remove(digest);
        if digests.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn subject(workspace: &str, user: &str, key: &str) -> TokenSubject {
        TokenSubject {
            workspace_id: workspace.to_owned(),
            user_id: user.to_owned(),
            api_key_id: key.to_owned(),
        }
    }

    fn entry(token: &str, subject: TokenSubject) -> CachedToken {
        CachedToken {
            token: Arc::from(token),
            valid_until: Instant::now() + Duration::from_secs(30),
            subject: Arc::new(subject),
        }
    }

    fn change(workspace: &str, user: &str, key: &str) -> AccessChange {
        AccessChange {
            workspace_id: workspace.to_owned(),
            user_id: user.to_owned(),
            api_key_id: key.to_owned(),
            ..AccessChange::default()
        }
    }

    /// Ada holds two keys in workspace one and one in workspace two; Bob
    /// one key in workspace one.
    fn cache() -> TokenCache {
        let mut cache = TokenCache::default();
        cache.insert([1; 32], entry("ada-1", subject("ws1", "ada", "key-a1")));
        cache.insert([2; 32], entry("ada-2", subject("ws1", "ada", "key-a2")));
        cache.insert([3; 32], entry("ada-ws2", subject("ws2", "ada", "key-a3")));
        cache.insert([4; 32], entry("bob", subject("ws1", "bob", "key-b")));
        cache
    }

    fn cached(cache: &mut TokenCache) -> Vec<u8> {
        let now = Instant::now();
        (1..=4)
            .filter(|n| cache.get(&[*n; 32], now).is_some())
            .collect()
    }

    #[test]
    fn a_member_change_drops_their_tokens_in_that_workspace_only() {
        let mut cache = cache();
        assert_eq!(cache.evict_changed(&[change("ws1", "ada", "")]), 2);
        assert_eq!(cached(&mut cache), vec![3, 4]);
        // Applying it again finds nothing left to drop.
        assert_eq!(cache.evict_changed(&[change("ws1", "ada", "")]), 0);
    }

    #[test]
    fn a_key_change_drops_that_keys_token_only() {
        let mut cache = cache();
        assert_eq!(cache.evict_changed(&[change("ws1", "", "key-a2")]), 1);
        assert_eq!(cached(&mut cache), vec![1, 3, 4]);
        // Several changes at once, one of them about nothing cached here.
        let batch = [
            change("ws1", "bob", ""),
            change("ws2", "", "key-a3"),
            change("ws9", "eve", ""),
        ];
        assert_eq!(cache.evict_changed(&batch), 2);
        assert_eq!(cached(&mut cache), vec![1]);
    }

    #[test]
    fn a_change_naming_nobody_drops_everything() {
        let mut cache = cache();
        assert_eq!(cache.evict_changed(&[change("ws1", "", "")]), 4);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_index_follows_replacements_and_removals() {
        let mut cache = cache();
        // Ada's first key is exchanged again and now names Bob's membership
        // (as if re-issued): the old index entry must not linger.
        cache.insert([1; 32], entry("bob-now", subject("ws1", "bob", "key-a1")));
        assert_eq!(cache.evict_changed(&[change("ws1", "ada", "")]), 1);
        assert_eq!(cached(&mut cache), vec![1, 3, 4]);
        assert!(cache.remove(&[4; 32]));
        assert!(!cache.remove(&[4; 32]));
        assert_eq!(cache.evict_changed(&[change("ws1", "bob", "")]), 1);
        assert_eq!(cached(&mut cache), vec![3]);
        cache.remove(&[3; 32]);
        assert!(cache.by_member.is_empty() && cache.by_api_key.is_empty());
    }

    #[test]
    fn expired_entries_leave_the_index_too() {
        let mut cache = TokenCache::default();
        let mut stale = entry("old", subject("ws1", "ada", "key-a1"));
        stale.valid_until = Instant::now() - Duration::from_secs(1);
        cache.insert([1; 32], stale);
        cache.insert([2; 32], entry("new", subject("ws1", "bob", "key-b")));
        cache.remove_expired(Instant::now());
        assert_eq!(cache.len(), 1);
        assert!(!cache.by_member.contains_key(&("ws1".into(), "ada".into())));
        assert!(!cache.by_api_key.contains_key("key-a1"));
    }

    #[test]
    fn every_eviction_for_changes_moves_the_generation() {
        let mut cache = cache();
        let before = cache.generation();
        assert_eq!(cache.evict_changed(&[]), 0);
        assert_eq!(cache.generation(), before, "no changes, nothing to fence");
        cache.evict_changed(&[change("ws9", "eve", "")]);
        assert_eq!(cache.generation(), before + 1);
        cache.evict_all();
        assert_eq!(cache.generation(), before + 2);
    }
}
