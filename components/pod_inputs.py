"""Digests of everything a web pod reads only when it starts, for its pod-template annotations. Pure.

A pod reads its Secrets through ``env``/``envFrom`` and its ConfigMap files through ``subPath``
mounts once, at start: a changed value reaches running pods only when they are replaced. The
Deployment's pod template therefore carries a digest of each input; when one changes, the
template changes and the Deployment rolls (``maxUnavailable: 0``: the old pods serve until the
new ones are ready).

``config_digest`` covers plain text (settings.php, the PHP ini, Apache's remoteip.conf).

``secret_digest`` covers secret values (database settings and password, WordPress salts, the
Drupal hash salt). It is a SHA-256 over a fixed label and a canonical encoding, and it leaves
the secret ``Output`` *unsecreted*, so previews keep showing which Deployments roll. That is
safe because every secret it covers is a value flightdeck generated with ``random.RandomPassword``
(32 to 512 characters, at least 190 bits): a digest of such a value cannot be reversed or
guessed by trying candidates. It changes exactly when a value the pods read changes: a new
password (``passwordVersion``, or the generator replaced for any reason), a rotated salt
(``saltsVersion``), a new user or database name, host or port.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

SECRET_DIGEST_ANNOTATION = "flightdeck.io/secret-digest"  # noqa: S105 - an annotation key, not a secret
CONFIG_DIGEST_ANNOTATION = "flightdeck.io/config-digest"
_LABEL = b"flightdeck.io/pod-inputs/v1\x00"


def _digest(values: Mapping[str, str]) -> str:
    canonical = json.dumps(dict(values), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(_LABEL + canonical.encode()).hexdigest()[:32]


def config_digest(files: Mapping[str, str]) -> str:
    """Digest of the ConfigMap files a pod mounts (name -> content)."""
    return _digest(files)


def secret_digest(values: Mapping[str, str]) -> str:
    """Digest of generated secret values the pods read (see the module docstring for why it may be public)."""
    return _digest(values)
