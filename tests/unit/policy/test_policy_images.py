"""Image references: pinned means a tag other than latest, or a digest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flightdeck_policy.images import image_problem, parse_image

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "reference",
    [
        "wordpress:6.8-php8.3-apache",
        "drupal:11-php8.3-apache",
        "mariadb:11.4",
        "docker.io/library/wordpress:6.8",
        "registry.example.org:5000/team/app:v1.2.3",
        f"wordpress@{DIGEST}",
        f"wordpress:latest@{DIGEST}",  # the digest pins the content whatever the tag says
        f"registry:5000/app@{DIGEST}",
    ],
)
def test_pinned_images_pass(reference: str) -> None:
    assert image_problem(reference) is None


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("wordpress", "untagged image 'wordpress'"),
        ("wordpress:latest", "mutable :latest tag"),
        ("registry.example.org:5000/wordpress", "untagged image"),  # the colon is the registry's port
        ("registry:5000/app:latest", "mutable :latest tag"),
        ("wordpress:", "invalid tag"),
        ("wordpress@sha256:abc", "malformed digest"),
        ("", "empty image"),
        ("  ", "empty image"),
        (":6.8", "without a repository"),
    ],
)
def test_unpinned_images_are_named_with_the_reason(reference: str, problem: str) -> None:
    found = image_problem(reference)
    assert found is not None and problem in found


# Repository names: 1-3 path components, each alphanumeric runs joined by '.', '_' or '-'. Built
# from parts rather than with st.from_regex, which costs 3x as much per example.
_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_component = st.builds(
    lambda first, rest: first + "".join(separator + part for separator, part in rest),
    _alnum,
    st.lists(st.tuples(st.sampled_from("._-"), _alnum), max_size=3),
)
names = st.lists(_component, min_size=1, max_size=3).map("/".join)
hosts = st.one_of(st.just(""), st.from_regex(r"[a-z][a-z0-9-]{0,10}(?:\.[a-z]{2,5})?(?::[0-9]{2,5})?/", fullmatch=True))
tags = st.from_regex(r"[\w][\w.-]{0,20}", fullmatch=True).filter(lambda tag: tag != "latest")
digests = st.binary(min_size=32, max_size=32).map(lambda digest: "sha256:" + digest.hex())


@given(hosts, names, tags)
def test_any_version_tag_is_pinned_and_parses_back(host: str, name: str, tag: str) -> None:
    reference = f"{host}{name}:{tag}"
    assert image_problem(reference) is None
    parsed = parse_image(reference)
    assert (parsed.name, parsed.tag, parsed.digest) == (f"{host}{name}", tag, None)


@given(hosts, names)
def test_without_tag_or_digest_is_never_pinned(host: str, name: str) -> None:
    assert parse_image(f"{host}{name}").tag is None
    assert image_problem(f"{host}{name}") is not None
    assert image_problem(f"{host}{name}:latest") is not None


@given(hosts, names, st.one_of(st.none(), tags, st.just("latest")), digests)
def test_a_digest_always_pins(host: str, name: str, tag: str | None, digest: str) -> None:
    reference = f"{host}{name}{':' + tag if tag else ''}@{digest}"
    assert image_problem(reference) is None
    assert parse_image(reference).digest == digest
