//! Protecting tracking links: a rate limit per client address on token lookups, and the
//! headers that keep private pages out of referrers, search engines and shared caches.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::TrackingConfig;

/// The connection's peer address, when the server records it (it always does in `kiln
/// serve`; a router driven without connection info sees `None`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

/// Addresses kept before idle ones are forgotten.
const PRUNE_AT: usize = 50_000;

/// Rate-limits token lookups per client address.
pub struct Limiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("trust_forwarded_for", &self.trust_forwarded_for).finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter allowing `rate_limit_per_minute` lookups, in bursts of up to a third of that.
    pub fn new(config: &TrackingConfig) -> Self {
        let per_minute = NonZeroU32::new(config.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_limit_per_minute.div_ceil(3)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            trust_forwarded_for: config.trust_forwarded_for,
        }
    }

    /// The client's address: the socket peer, or the last `X-Forwarded-For` hop (the one our
    /// proxy added) when configured to trust it.
    pub fn client(&self, peer: Peer, headers: &HeaderMap) -> IpAddr {
        if self.trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return ip;
            }
        }
        peer.0.map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
    }

    /// `Ok` if `client` may look a token up now, else how long to wait.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > PRUNE_AT {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&client).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Headers every tracking response carries.
pub fn private_headers(headers: &mut HeaderMap, cache_control: &'static str) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, HeaderName::from_static("x-robots-tag"), "noindex, nofollow");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CACHE_CONTROL, cache_control);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_a_burst_then_waits_while_others_are_unaffected() {
        let limiter = Limiter::new(&TrackingConfig { rate_limit_per_minute: 6, trust_forwarded_for: false });
        let a = IpAddr::from([10, 0, 0, 1]);
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let wait = limiter.check(a).expect_err("burst of 2 used up");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(10), "{wait:?}");
        assert!(limiter.check(IpAddr::from([10, 0, 0, 2])).is_ok());
    }

    #[test]
    fn forwarded_addresses_count_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7"));
        let peer = Peer(Some(SocketAddr::from(([127, 0, 0, 1], 9))));
        let untrusting = Limiter::new(&TrackingConfig::default());
        assert_eq!(untrusting.client(peer, &headers), IpAddr::from([127, 0, 0, 1]));
        let trusting = Limiter::new(&TrackingConfig { trust_forwarded_for: true, ..TrackingConfig::default() });
        assert_eq!(trusting.client(peer, &headers), IpAddr::from([198, 51, 100, 7]));
    }
}
