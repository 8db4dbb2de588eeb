"""Stack config of the site workloads: PHP limits, cron, and the proxies the sites trust. Pure."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field

from components.config.values import StorageQuantity, Strict
from components.cron_slots import CronPeriod


def _proxy_address(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or a CIDR range such as 10.244.0.0/16") from None
    if network.prefixlen == 0:
        raise ValueError(f"{value!r} would trust every address to set the client IP (X-Forwarded-For)")
    return value


ProxyAddress = Annotated[str, AfterValidator(_proxy_address)]

# Environment the pods get from flightdeck: a site's `env` may not set these (its own
# WORDPRESS_CONFIG_EXTRA is appended to flightdeck's, not refused).
WORDPRESS_SALT_NAMES = (
    "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
    "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
)  # fmt: skip
WORDPRESS_SALT_ENV = tuple(f"WORDPRESS_{name}" for name in WORDPRESS_SALT_NAMES)
WORDPRESS_DB_ENV = ("WORDPRESS_DB_HOST", "WORDPRESS_DB_NAME", "WORDPRESS_DB_USER", "WORDPRESS_DB_PASSWORD")
WORDPRESS_CONFIG_EXTRA_ENV = "WORDPRESS_CONFIG_EXTRA"
DRUPAL_HASH_SALT_ENV = "DRUPAL_HASH_SALT"
FLIGHTDECK_ENV_PREFIX = "FLIGHTDECK_"
RESERVED_ENV = frozenset((*WORDPRESS_SALT_ENV, *WORDPRESS_DB_ENV, DRUPAL_HASH_SALT_ENV))

# Private pod networks: what the official wordpress image's Apache trusts by default
# (RemoteIPInternalProxy 10/8, 172.16/12, 192.168/16), plus carrier-grade NAT space (some
# CNIs assign pod IPs from it) and IPv6 unique-local addresses.
DEFAULT_PROXY_ADDRESSES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"]


class PhpConfig(Strict):
    memory_limit: StorageQuantity = Field(
        "256Mi",
        description="PHP `memory_limit` of one request (WordPress: also WP_MEMORY_LIMIT and WP_MAX_MEMORY_LIMIT); "
        "at most `resources.limits.memory`",
    )


class SiteCronConfig(Strict):
    enabled: bool = Field(
        True,
        description="run the CMS's cron from a CronJob (WordPress `wp-cron.php`, Drupal's cron service) "
        "instead of on page loads",
    )
    every_minutes: CronPeriod = Field(15, description="minutes between runs: 5, 15, 30 or 60")
