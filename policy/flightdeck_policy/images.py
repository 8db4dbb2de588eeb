"""Container image references: is this one pinned (a tag other than ``latest``, or a digest)?

Grammar from the distribution reference (github.com/distribution/reference, ``regexp.go``):
``name[:tag][@digest]``, where ``name`` may start with a registry host that carries a port
(``registry:5000/app``), so a tag is the part after the last ``:`` only when that ``:`` comes
after the last ``/``. A reference without a tag or digest means ``:latest`` to the runtime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG = re.compile(r"[\w][\w.-]{0,127}")
DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
MUTABLE_TAG = "latest"


@dataclass(frozen=True)
class ImageReference:
    name: str
    tag: str | None
    digest: str | None


def parse_image(reference: str) -> ImageReference:
    name, _, digest = reference.partition("@")
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
    return ImageReference(name=name, tag=tag, digest=digest if "@" in reference else None)


def image_problem(reference: str) -> str | None:
    """Why ``reference`` is not a pinned image, or None when it is."""
    if not reference.strip():
        return "has an empty image"
    image = parse_image(reference.strip())
    if not image.name:
        return f"has image {reference!r} without a repository"
    if image.digest is not None:
        # A digest pins the content whatever the tag says.
        return None if DIGEST.fullmatch(image.digest) else f"has image {reference!r} with a malformed digest"
    if image.tag is None:
        return f"has untagged image {reference!r}, which resolves to whatever :latest is when a node pulls it"
    if not TAG.fullmatch(image.tag):
        return f"has image {reference!r} with an invalid tag"
    if image.tag == MUTABLE_TAG:
        return f"has image {reference!r}: the mutable :latest tag changes under a running Deployment"
    return None
