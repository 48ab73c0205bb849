//! Response headers for a limited route, in the format of the IETF draft
//! "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers,
//! revisions 08 to 11): `RateLimit-Policy` names the policy with its quota
//! `q` and window `w` (seconds), `RateLimit` the units remaining `r` and
//! the seconds until the quota is whole again `t`. Policy names are
//! Structured Field strings, hence the quotes. A refusal adds `Retry-After`.
//!
//! `q` is the burst because that is what `r` counts down from and `t`
//! counts up to; `w` is the quota's period. Seconds are rounded up, so a
//! client that waits as told is never refused for being early.

use std::time::Duration;

use http::{HeaderName, HeaderValue, header::RETRY_AFTER};

use crate::{Decision, Quota};

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The one policy the edge advertises per response.
pub const POLICY_NAME: &str = "default";

pub fn headers(quota: &Quota, decision: &Decision) -> Vec<(HeaderName, HeaderValue)> {
    let policy = format!(
        "\"{POLICY_NAME}\";q={};w={}",
        decision.limit,
        seconds_up(quota.period)
    );
    let state = format!(
        "\"{POLICY_NAME}\";r={};t={}",
        decision.remaining,
        seconds_up(decision.reset_after)
    );
    let mut headers = vec![(RATELIMIT_POLICY, value(policy)), (RATELIMIT, value(state))];
    if let Some(retry_after) = decision.retry_after.filter(|_| !decision.allowed) {
        headers.push((RETRY_AFTER, value(seconds_up(retry_after).to_string())));
    }
    headers
}

fn seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("digits, quotes and separators are valid header text")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(headers: &[(HeaderName, HeaderValue)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().expect("ascii").to_owned()))
            .collect()
    }

    #[test]
    fn an_allowed_request_gets_policy_and_state() {
        let quota = Quota::per_minute(600, 100).expect("valid");
        let decision = Decision {
            allowed: true,
            limit: 100,
            remaining: 99,
            reset_after: Duration::from_millis(100),
            retry_after: None,
        };
        assert_eq!(
            rendered(&headers(&quota, &decision)),
            [
                (
                    "ratelimit-policy".to_owned(),
                    "\"default\";q=100;w=60".to_owned()
                ),
                ("ratelimit".to_owned(), "\"default\";r=99;t=1".to_owned()),
            ]
        );
    }

    #[test]
    fn a_refusal_adds_retry_after_rounded_up() {
        let quota = Quota::new(10, Duration::from_millis(1_500), 5).expect("valid");
        let decision = Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_after: Duration::from_secs(2),
            retry_after: Some(Duration::from_millis(1_001)),
        };
        assert_eq!(
            rendered(&headers(&quota, &decision)),
            [
                (
                    "ratelimit-policy".to_owned(),
                    "\"default\";q=5;w=2".to_owned()
                ),
                ("ratelimit".to_owned(), "\"default\";r=0;t=2".to_owned()),
                ("retry-after".to_owned(), "2".to_owned()),
            ]
        );
    }
}
