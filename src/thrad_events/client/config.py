"""The options both clients share: key, base URL, timeout, retry policy, and the request headers."""

from __future__ import annotations

import platform
from dataclasses import dataclass

import httpx

from thrad_events.client.retry import RetryPolicy

DEFAULT_BASE_URL = "https://events.thrad.ai"
DEFAULT_TIMEOUT_S = 10.0
SDK_VERSION = "0.1.0"
USER_AGENT = (
    f"thrad-events-python/{SDK_VERSION} httpx/{httpx.__version__} "
    f"python/{platform.python_version()}"
)

COLLECT_PATH = "/v1/api/collect"
CONVERSION_PATH = "/v1/api/conversion"
COLLECT_BATCH_PATH = "/v1/api/collect/batch"
CONVERSION_BATCH_PATH = "/v1/api/conversion/batch"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    api_key: str
    base_url: str
    timeout: float | httpx.Timeout
    retry: RetryPolicy

    @classmethod
    def build(
        cls,
        *,
        api_key: str,
        base_url: str,
        timeout: float | httpx.Timeout,
        max_attempts: int,
        deadline_s: float | None,
        initial_backoff_s: float,
        max_backoff_s: float,
    ) -> ClientConfig:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key is required")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {base_url!r}")
        policy = RetryPolicy(
            max_attempts=max_attempts,
            deadline_s=deadline_s,
            initial_backoff_s=initial_backoff_s,
            max_backoff_s=max_backoff_s,
        )
        return cls(api_key.strip(), base_url.rstrip("/"), timeout, policy)

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def attempt_timeout(self, remaining_s: float | None) -> float | httpx.Timeout:
        """The timeout of one attempt: the configured one, shortened to fit the deadline."""
        if remaining_s is None or isinstance(self.timeout, httpx.Timeout):
            return self.timeout
        return max(min(self.timeout, remaining_s), 0.001)
