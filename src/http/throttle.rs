//! The dashboard's login throttle: `governor`'s GCRA limiters, one keyed by the
//! client's address and one for all clients together, both on the injected clock.
//!
//! Every `POST /login` takes a cell from both (a correct token too: people log in
//! rarely, guessers often). A client over its own quota, or any client while the
//! global one is spent, is answered 429 with `Retry-After`, before its form is
//! read. The clock is [`crate::clock::Clock`] behind governor's clock trait, so a
//! simulated clock (tests, `PUEBLA_SIMULATED_CLOCK`) moves the windows as it moves
//! everything else, and nothing here reads the system time.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;

/// The injected clock as governor's time source: nanoseconds since the Unix epoch.
#[derive(Clone)]
struct InjectedClock(Arc<dyn Clock>);

impl GovernorClock for InjectedClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = self.0.now().timestamp_nanos_opt().unwrap_or(0);
        Nanos::from(u64::try_from(nanos).unwrap_or(0))
    }
}

/// Keys kept before the idle ones are dropped (a key idle for a whole window is
/// indistinguishable from a fresh one, so dropping it forgets nothing).
const PRUNE_ABOVE: usize = 4096;

/// The two limiters.
pub struct LoginThrottle {
    per_address:
        RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, InjectedClock, NoOpMiddleware<Nanos>>,
    global: RateLimiter<NotKeyed, InMemoryState, InjectedClock, NoOpMiddleware<Nanos>>,
    clock: InjectedClock,
}

impl LoginThrottle {
    /// `per_address` attempts per minute from one address (a burst of that many,
    /// then one every 60/N s), `global` per minute from all. Zero is taken as one.
    pub fn new(per_address: u32, global: u32, clock: Arc<dyn Clock>) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let clock = InjectedClock(clock);
        Self {
            per_address: RateLimiter::hashmap_with_clock(quota(per_address), clock.clone()),
            global: RateLimiter::direct_with_clock(quota(global), clock.clone()),
            clock,
        }
    }

    /// Takes one attempt for `client` (its address; `None` when unknown, which all
    /// share one key): `Err(wait)` when it must wait that long first.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        if self.per_address.len() > PRUNE_ABOVE {
            self.per_address.retain_recent();
        }
        let key = client.map_or(IpAddr::from(Ipv6Addr::UNSPECIFIED), address_key);
        self.per_address
            .check_key(&key)
            .and_then(|()| self.global.check())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The key of a client address: an IPv4 address itself (also when mapped into
/// IPv6), an IPv6 address by its /64, the smallest block one subscriber gets, so
/// that the addresses of one network share one quota.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClock;
    use chrono::TimeZone as _;

    fn clock() -> Arc<SimulatedClock> {
        Arc::new(SimulatedClock::new(
            chrono::Utc.with_ymd_and_hms(2027, 3, 22, 16, 0, 0).unwrap(),
        ))
    }

    #[test]
    fn one_address_gets_its_burst_then_waits_on_the_injected_clock() {
        let clock = clock();
        let t = LoginThrottle::new(3, 100, clock.clone());
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let b: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            t.check(Some(a)).expect("within the burst");
        }
        let wait = t.check(Some(a)).expect_err("the fourth is refused");
        // Three per minute: one cell every 20 s.
        assert!(
            wait <= Duration::from_secs(20) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(retry_after_seconds(wait), wait.as_secs_f64().ceil() as u64);
        t.check(Some(b)).expect("another address has its own quota");
        // Nothing moves while the injected clock stands still.
        assert!(t.check(Some(a)).is_err());
        clock.advance(chrono::Duration::seconds(20));
        t.check(Some(a)).expect("a cell came back after 20 s");
        assert!(t.check(Some(a)).is_err());
    }

    #[test]
    fn the_global_quota_stops_every_address() {
        let clock = clock();
        let t = LoginThrottle::new(10, 4, clock.clone());
        for i in 0..4u8 {
            t.check(Some(IpAddr::from([198, 51, 100, i]))).unwrap();
        }
        let wait = t
            .check(Some("203.0.113.9".parse().unwrap()))
            .expect_err("the global quota is spent");
        assert!(wait > Duration::ZERO);
        clock.advance(chrono::Duration::seconds(15));
        t.check(Some("203.0.113.9".parse().unwrap())).unwrap();
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(
            address_key(a),
            address_key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(6)), 6);
    }
}
