"""Container image references: parse, validate, and tell a pinned image from a moving tag. Pure.

The grammar is distribution/reference's (``reference.go``, the one containerd and the kubelet
use)::

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [domain '/'] path-component ['/' path-component]*
    domain      := host [':' port]          (host: DNS name, or [IPv6])
    path-component := [a-z0-9]+ ( ([._]|__|-+) [a-z0-9]+ )*
    tag         := [\\w][\\w.-]{0,127}
    digest      := algorithm ":" hex        (name at most 255 characters)

flightdeck is stricter than the grammar in two ways that keep sites predictable: a digest must
use an algorithm the OCI image spec registers (``sha256`` with 64, ``sha512`` with 128 lowercase
hex digits), and a reference must name a tag or a digest (an untagged image means ``:latest``,
which moves across major versions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NAME_LENGTH = 255
# OCI image-spec descriptor.md, "Registered algorithms".
DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}

_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST = re.compile(r"^([a-z0-9]+):([a-f0-9]+)$")

# Docker Hub's names for an official ("library") image, as the kubelet normalises them.
_HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class ImageReference:
    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        """A digest names exactly one image; a tag may be rebuilt (security fixes) at any time."""
        return self.digest is not None

    @property
    def official_name(self) -> str | None:
        """``wordpress`` for ``wordpress``, ``library/wordpress`` or ``docker.io/library/wordpress``."""
        if self.domain is not None and self.domain not in _HUB_DOMAINS:
            return None
        path = self.path.removeprefix("library/")
        return None if "/" in path else path


class ImageReferenceError(ValueError):
    pass


def parse_image(value: str) -> ImageReference:
    """The parts of ``value``; raises ``ImageReferenceError`` saying what is wrong."""
    if not value or value != value.strip():
        raise ImageReferenceError(f"{value!r} is not an image reference (empty or surrounded by spaces)")
    name, at, digest = value.partition("@")
    if at:
        _check_digest(value, digest)
    # A ':' after the last '/' starts the tag; one before it belongs to a registry port.
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    tag: str | None = None
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise ImageReferenceError(
                f"{value!r}: tag {tag!r} must be at most 128 letters, digits, '_', '.' or '-', "
                "not starting with '.' or '-'"
            )
    if len(name) > MAX_NAME_LENGTH:
        raise ImageReferenceError(f"{value!r}: the repository name is longer than {MAX_NAME_LENGTH} characters")
    domain, path = _split_domain(name)
    if domain is not None and not _DOMAIN.match(domain):
        raise ImageReferenceError(f"{value!r}: {domain!r} is not a registry host[:port]")
    for component in path.split("/"):
        if not _PATH_COMPONENT.match(component):
            raise ImageReferenceError(
                f"{value!r}: repository part {component!r} must be lowercase letters and digits, "
                "separated by '.', '_', '__' or '-'"
            )
    if tag is None and not at:
        raise ImageReferenceError(
            f"{value!r} names no tag or digest, which means ':latest' (it jumps major versions); "
            "name a tag (such as wordpress:7.1-php8.3-apache) or pin a digest (@sha256:...)"
        )
    return ImageReference(domain, path, tag, digest or None)


def _split_domain(name: str) -> tuple[str | None, str]:
    """The first component is a registry when it looks like one (the Docker rule: '.', ':' or localhost)."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return None, name


def _check_digest(value: str, digest: str) -> None:
    match = _DIGEST.match(digest)
    if not match:
        raise ImageReferenceError(f"{value!r}: digest {digest!r} must be sha256:<64 lowercase hex digits>")
    algorithm, encoded = match.groups()
    if algorithm not in DIGEST_LENGTHS:
        raise ImageReferenceError(f"{value!r}: digest algorithm {algorithm!r} is not one of sha256, sha512")
    if len(encoded) != DIGEST_LENGTHS[algorithm]:
        raise ImageReferenceError(
            f"{value!r}: a {algorithm} digest has {DIGEST_LENGTHS[algorithm]} hex digits, not {len(encoded)}"
        )
