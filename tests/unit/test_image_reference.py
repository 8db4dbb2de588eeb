"""Image references: the distribution/reference grammar, digests, and what counts as pinned."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from components.image_reference import ImageReference, ImageReferenceError, parse_image

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("wordpress:7.1-php8.3-apache", ImageReference(None, "wordpress", "7.1-php8.3-apache", None)),
        (f"wordpress@{DIGEST}", ImageReference(None, "wordpress", None, DIGEST)),
        (f"drupal:11.4-apache@{DIGEST}", ImageReference(None, "drupal", "11.4-apache", DIGEST)),
        ("docker.io/library/drupal:11", ImageReference("docker.io", "library/drupal", "11", None)),
        (
            "registry.example.org:5000/team/site-image:v2",
            ImageReference("registry.example.org:5000", "team/site-image", "v2", None),
        ),
        ("localhost/wp:dev", ImageReference("localhost", "wp", "dev", None)),
        ("[fd00::1]:5000/wp:1", ImageReference("[fd00::1]:5000", "wp", "1", None)),
        (
            "ghcr.io/acme/wp__custom.theme-x:2026.01",
            ImageReference("ghcr.io", "acme/wp__custom.theme-x", "2026.01", None),
        ),
        (
            "example.org/wp@sha512:" + "ab" * 64,
            ImageReference("example.org", "wp", None, "sha512:" + "ab" * 64),
        ),
    ],
)
def test_valid_references(value: str, expected: ImageReference) -> None:
    assert parse_image(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("wordpress", "names no tag or digest"),
        ("registry.example.org:5000/wp", "names no tag or digest"),
        ("WordPress:7.1", "lowercase"),
        ("wordpress:-bad", "tag '-bad'"),
        ("wordpress:" + "a" * 129, "at most 128"),
        ("word press:7", "lowercase"),
        ("wordpress::7", "lowercase"),
        ("team//wp:1", "lowercase"),
        ("wp-:1", "lowercase"),
        ("-wp:1", "lowercase"),
        ("wordpress@sha256:abc", "64 hex digits, not 3"),
        ("wordpress@sha256:" + "A" * 64, "lowercase hex"),
        ("wordpress@md5:" + "a" * 32, "not one of sha256, sha512"),
        ("bad_host.example.org/wp:1", "not a registry"),
        ("example.org:port/wp:1", "not a registry"),
        (" wordpress:7", "spaces"),
        ("", "empty"),
        ("a" * 256 + ":1", "longer than 255"),
    ],
)
def test_invalid_references_say_why(value: str, reason: str) -> None:
    with pytest.raises(ImageReferenceError) as caught:
        parse_image(value)
    assert reason in str(caught.value)


def test_pinned_means_a_digest() -> None:
    assert parse_image(f"wordpress:7.1-php8.3-apache@{DIGEST}").pinned
    assert not parse_image("wordpress:7.1-php8.3-apache").pinned


@pytest.mark.parametrize(
    ("value", "official"),
    [
        ("wordpress:7", "wordpress"),
        ("library/wordpress:7", "wordpress"),
        ("docker.io/library/drupal:11", "drupal"),
        ("docker.io/drupal:11", "drupal"),
        ("index.docker.io/library/drupal:11", "drupal"),
        ("bitnami/wordpress:6", None),
        ("ghcr.io/library/wordpress:7", None),
    ],
)
def test_official_name(value: str, official: str | None) -> None:
    assert parse_image(value).official_name == official


alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
components = st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "--"]), alnum), max_size=3).flatmap(
    lambda rest: alnum.map(lambda head: head + "".join(sep + part for sep, part in rest))
)
paths = st.lists(components, min_size=1, max_size=3).map("/".join)
# Built from parts, not with st.from_regex (several times dearer per example): a DNS label is
# [a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?, a tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,20}.
_label_chars = "abcdefghijklmnopqrstuvwxyz0123456789"
labels = st.sampled_from(_label_chars) | st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(_label_chars),
    st.text(alphabet=_label_chars + "-", max_size=6),
    st.sampled_from(_label_chars),
)
domains = st.none() | st.tuples(
    st.lists(labels, min_size=2, max_size=3).map(".".join),
    st.none() | st.integers(min_value=1, max_value=65535),
).map(lambda parts: parts[0] + (f":{parts[1]}" if parts[1] else ""))
_tag_first = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
tags = st.builds(
    lambda first, rest: first + rest, st.sampled_from(_tag_first), st.text(alphabet=_tag_first + ".-", max_size=20)
)
digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(lambda hexa: f"sha256:{hexa}")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(domains, paths, st.none() | tags, st.none() | digests)
def test_every_grammatical_reference_parses_back_to_its_parts(
    domain: str | None, path: str, tag: str | None, digest: str | None
) -> None:
    if tag is None and digest is None:
        tag = "1"
    first = path.split("/")[0]
    # Docker's rule: a first component with a '.' (or localhost) is a registry, not a path.
    assume(domain is not None or "/" not in path or ("." not in first and first != "localhost"))
    value = (f"{domain}/" if domain else "") + path + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    assert parse_image(value) == ImageReference(domain, path, tag, digest)
