"""Alerts: daily spend over AI_COST_ALERT_THRESHOLD, or the error or fallback rate jumping.

`check()` reads the ledger: today's spend (UTC day), and the last hour's error and fallback rates against
the 23 hours before. Each alert is raised once per period (the day for spend, the hour for rates), across
replicas too: the period is claimed by a unique row in the ledger's `usage_alerts` table. A raised alert is
one structured log record (logger `skymarket.alerts`, JSON message), a metric, and a JSON POST to
ALERT_WEBHOOK_URL when it is set. Requests trigger `maybe_check()` at most every ALERT_CHECK_INTERVAL_S.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from gateway.ledger import Ledger
from gateway.metrics import Metrics

__all__ = ["Alert", "Alerts", "build_alerts"]

log = logging.getLogger("skymarket.alerts")


@dataclass(frozen=True)
class Alert:
    kind: str  # daily_spend | error_rate | fallback_rate
    period: str  # 2026-11-27 (spend) or 2026-11-27T14 (rates)
    value: float
    threshold: float
    message: str
    time: str

    def as_dict(self) -> dict[str, Any]:
        return {"alert": self.kind, **{k: v for k, v in asdict(self).items() if k != "kind"}}


class Alerts:
    def __init__(self, ledger: Ledger, *, threshold_usd: float, webhook_url: str | None = None,
                 error_jump: float = 0.2, fallback_jump: float = 0.2, min_requests: int = 20,
                 interval_s: float = 60.0, metrics: Metrics | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        """Args:
        ledger: where usage is read and alert periods are claimed.
        threshold_usd: daily spend above which to alert (0: never).
        webhook_url: POST each alert here as JSON.
        error_jump: alert when the last hour's error rate exceeds the baseline's by this much.
        fallback_jump: the same for the fallback rate.
        min_requests: no rate alert on fewer requests in the last hour.
        interval_s: `maybe_check()` runs `check()` at most this often.
        metrics: counts raised alerts.
        clock: the current time (UTC), a seam for tests.
        """
        self.ledger = ledger
        self.threshold_usd = threshold_usd
        self.webhook_url = webhook_url
        self.error_jump = error_jump
        self.fallback_jump = fallback_jump
        self.min_requests = min_requests
        self.interval_s = interval_s
        self.metrics = metrics
        self.clock = clock
        self._lock = threading.Lock()
        self._next = 0.0

    def maybe_check(self) -> list[Alert]:
        """`check()` unless one ran less than `interval_s` ago (or is running)."""
        now = time.monotonic()
        if now < self._next or not self._lock.acquire(blocking=False):
            return []
        try:
            self._next = now + self.interval_s
            return self.check()
        finally:
            self._lock.release()

    def check(self, now: dt.datetime | None = None) -> list[Alert]:
        """Evaluates every rule; returns the alerts raised now (not those already raised this period)."""
        now = now or self.clock()
        found: list[Alert] = []
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        spend = self.ledger.spend_since(midnight)
        if self.threshold_usd > 0 and spend > self.threshold_usd:
            found.append(self._make("daily_spend", midnight.date().isoformat(), spend, self.threshold_usd,
                                    f"spend today is ${spend:.2f}, over the ${self.threshold_usd:.2f} threshold", now))
        hour_ago = now - dt.timedelta(hours=1)
        n, errors, fallbacks = self.ledger.totals(hour_ago, now)
        if n >= self.min_requests:
            bn, berrors, bfallbacks = self.ledger.totals(now - dt.timedelta(hours=24), hour_ago)
            period = now.strftime("%Y-%m-%dT%H")
            for kind, count, base, jump in (("error_rate", errors, berrors, self.error_jump),
                                            ("fallback_rate", fallbacks, bfallbacks, self.fallback_jump)):
                rate, base_rate = count / n, (base / bn if bn else 0.0)
                if jump > 0 and rate - base_rate >= jump:
                    found.append(self._make(kind, period, rate, base_rate + jump,
                                            f"{kind.replace('_', ' ')} {rate:.0%} in the last hour "
                                            f"(baseline {base_rate:.0%}, {n} requests)", now))
        return [a for a in found if self._raise(a)]

    @staticmethod
    def _make(kind: str, period: str, value: float, threshold: float, message: str, now: dt.datetime) -> Alert:
        return Alert(kind, period, round(value, 6), round(threshold, 6), message, now.isoformat())

    def _raise(self, alert: Alert) -> bool:
        if not self.ledger.claim_alert(alert.kind, alert.period, value=alert.value, threshold=alert.threshold):
            return False
        log.warning(json.dumps(alert.as_dict(), sort_keys=True))
        if self.metrics is not None:
            self.metrics.alerts.labels(alert.kind).inc()
        if self.webhook_url:
            try:
                httpx.post(self.webhook_url, json=alert.as_dict(), timeout=5.0).raise_for_status()
            except httpx.HTTPError as exc:  # the URL may hold a token: name the error type only
                log.warning("alert webhook failed: %s", type(exc).__name__)
        return True


def build_alerts(settings: Any, ledger: Ledger, metrics: Metrics | None = None) -> Alerts:
    return Alerts(
        ledger, threshold_usd=settings.ai_cost_alert_threshold, webhook_url=settings.alert_webhook_url,
        error_jump=settings.alert_error_rate_jump, fallback_jump=settings.alert_fallback_rate_jump,
        min_requests=settings.alert_min_requests, interval_s=settings.alert_check_interval_s, metrics=metrics,
    )
