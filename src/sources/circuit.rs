//! The circuit breaker of one source: after repeated upstream failures the source is paused
//! for a cool-down instead of being hammered, and a single probe request decides when it
//! comes back.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::UpstreamError;

/// The breaker's state, as `/v1/sources` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the cool-down ends.
    Open,
    /// One probe request is out; the rest are refused until it answers.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    /// Upstream failures in a row.
    failures: u32,
    opened_at: Option<Instant>,
}

/// A consecutive-failure circuit breaker.
#[derive(Debug)]
pub struct Circuit {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Leave to send one request; report its outcome with [`Circuit::record`].
///
/// A probe dropped without an outcome (its search was cancelled) re-opens the circuit, so a
/// lost probe never leaves the source stuck half-open.
#[derive(Debug)]
pub struct Admission<'a> {
    circuit: &'a Circuit,
    probe: bool,
    recorded: bool,
}

impl Circuit {
    /// A breaker that opens after `threshold` failures in a row and stays open `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Circuit {
        let inner = Inner {
            state: CircuitState::Closed,
            failures: 0,
            opened_at: None,
        };
        Circuit {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(inner),
        }
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        self.lock().state
    }

    /// The refusal a request would meet now, without changing the breaker: `Some` while the
    /// circuit is open and still cooling down.
    ///
    /// A cheap look before a request queues for a permit and the limiter, so that requests
    /// of a paused source fail at once instead of waiting their turn only to be refused;
    /// [`Circuit::admit`], after the limiter, still decides, so the probe stays paced.
    pub fn refusing(&self) -> Option<UpstreamError> {
        let inner = self.lock();
        (inner.state == CircuitState::Open && !self.cooled_down(&inner))
            .then(|| self.refusal(&inner))
    }

    /// Leave to send a request now, or the error that says when the source comes back.
    pub fn admit(&self) -> Result<Admission<'_>, UpstreamError> {
        let mut inner = self.lock();
        let probe = match inner.state {
            CircuitState::Closed => false,
            CircuitState::Open if self.cooled_down(&inner) => {
                inner.state = CircuitState::HalfOpen;
                true
            }
            CircuitState::Open | CircuitState::HalfOpen => return Err(self.refusal(&inner)),
        };
        Ok(Admission {
            circuit: self,
            probe,
            recorded: false,
        })
    }

    /// Records how an admitted request ended.
    pub fn record(&self, mut admission: Admission<'_>, error: Option<&UpstreamError>) {
        admission.recorded = true;
        let mut inner = self.lock();
        match error {
            Some(error) if error.is_upstream_failure() => {
                inner.failures = inner.failures.saturating_add(1);
                if admission.probe || inner.failures >= self.threshold {
                    inner.state = CircuitState::Open;
                    inner.opened_at = Some(Instant::now());
                }
            }
            // The upstream answered: it is alive, even if it refused this request.
            _ => {
                inner.failures = 0;
                inner.state = CircuitState::Closed;
                inner.opened_at = None;
            }
        }
    }

    fn cooled_down(&self, inner: &Inner) -> bool {
        inner
            .opened_at
            .is_none_or(|at| at.elapsed() >= self.cooldown)
    }

    fn refusal(&self, inner: &Inner) -> UpstreamError {
        let left = inner
            .opened_at
            .map(|at| self.cooldown.saturating_sub(at.elapsed()))
            .unwrap_or(self.cooldown);
        UpstreamError::CircuitOpen {
            failures: inner.failures,
            retry_in_secs: left.as_secs().max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            let mut inner = self.circuit.lock();
            inner.state = CircuitState::Open;
            inner.opened_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> UpstreamError {
        UpstreamError::Unavailable {
            status: 503,
            html_page: false,
            retry_after: None,
            reason: None,
        }
    }

    fn fail(circuit: &Circuit) {
        let admission = circuit.admit().unwrap();
        circuit.record(admission, Some(&failure()));
    }

    #[test]
    fn opens_after_the_threshold_of_failures_in_a_row() {
        let circuit = Circuit::new(3, Duration::from_secs(60));
        fail(&circuit);
        fail(&circuit);
        assert_eq!(circuit.state(), CircuitState::Closed);
        fail(&circuit);
        assert_eq!(circuit.state(), CircuitState::Open);
        let refused = circuit.admit().unwrap_err();
        assert!(
            refused.to_string().contains("paused after 3 failures"),
            "{refused}"
        );
    }

    #[test]
    fn refusing_looks_without_changing_the_state() {
        let cooling = Circuit::new(1, Duration::from_secs(60));
        assert_eq!(cooling.refusing(), None, "closed");
        fail(&cooling);
        let refusal = cooling.refusing().expect("open and cooling down");
        assert_eq!(refusal.kind(), "circuit_open");
        assert_eq!(cooling.state(), CircuitState::Open);

        let cooled = Circuit::new(1, Duration::ZERO);
        fail(&cooled);
        assert_eq!(
            cooled.refusing(),
            None,
            "the cool-down is over: a probe may queue"
        );
        assert_eq!(
            cooled.state(),
            CircuitState::Open,
            "only admit starts the probe"
        );
        let _probe = cooled.admit().unwrap();
        assert_eq!(cooled.refusing(), None, "half open: admit decides");
    }

    #[test]
    fn a_success_resets_the_count() {
        let circuit = Circuit::new(2, Duration::from_secs(60));
        fail(&circuit);
        let admission = circuit.admit().unwrap();
        circuit.record(admission, None);
        fail(&circuit);
        assert_eq!(circuit.state(), CircuitState::Closed);
    }

    #[test]
    fn refusals_that_are_not_upstream_failures_do_not_count() {
        let circuit = Circuit::new(1, Duration::from_secs(60));
        let admission = circuit.admit().unwrap();
        let rejected = UpstreamError::Rejected {
            status: 422,
            reason: "too many tags".into(),
        };
        circuit.record(admission, Some(&rejected));
        assert_eq!(circuit.state(), CircuitState::Closed);
    }

    #[test]
    fn after_the_cooldown_one_probe_decides() {
        let circuit = Circuit::new(1, Duration::ZERO);
        fail(&circuit);
        let probe = circuit.admit().unwrap();
        assert_eq!(circuit.state(), CircuitState::HalfOpen);
        assert!(circuit.admit().is_err(), "only one probe at a time");
        circuit.record(probe, None);
        assert_eq!(circuit.state(), CircuitState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_and_a_dropped_probe_too() {
        let circuit = Circuit::new(1, Duration::ZERO);
        fail(&circuit);
        fail(&circuit);
        assert_eq!(circuit.state(), CircuitState::Open);
        let probe = circuit.admit().unwrap();
        drop(probe);
        assert_eq!(circuit.state(), CircuitState::Open);
    }
}
