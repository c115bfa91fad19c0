//! What one tenant's checks share: the tenant, the run's clock, how far back data may lie, and
//! the way each check turns into a report row.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::Backend;
use super::poll::{GaveUp, Poller};
use super::report::{CheckKind, CheckResult, Status};

#[derive(Debug, Clone, Copy)]
pub struct TenantScope<'a> {
    pub tenant: &'a str,
    pub poller: Poller,
    pub lookback: Duration,
}

impl TenantScope<'_> {
    pub fn pass(
        &self,
        check: CheckKind,
        query: String,
        latency: Duration,
        detail: String,
    ) -> CheckResult {
        CheckResult::pass(Some(self.tenant), check, query, latency, detail)
    }

    /// The row of a check that never saw its data: `status` is Fail, or Warn for optional ones.
    pub fn gave_up(
        &self,
        check: CheckKind,
        query: String,
        backend: Backend,
        gave_up: &GaveUp,
        status: Status,
    ) -> CheckResult {
        let (detail, hint) = gave_up.detail_and_hint(backend, self.tenant);
        CheckResult::not_passed(Some(self.tenant), check, status, query, detail, Some(hint))
    }

    pub fn skip(&self, check: CheckKind, query: String, detail: String) -> CheckResult {
        CheckResult::not_passed(Some(self.tenant), check, Status::Skip, query, detail, None)
    }

    /// The window `[now - lookback, now]` in Unix time.
    pub fn window(&self) -> (Duration, Duration) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (now.saturating_sub(self.lookback), now)
    }

    /// How the window reads in a report's query column.
    pub fn window_text(&self) -> String {
        format!("over the last {}s", self.lookback.as_secs())
    }
}
