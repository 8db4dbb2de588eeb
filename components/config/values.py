"""Value types of the stack config: quantities, names, images, clocks, and the ``Strict`` base.

Pure: no Pulumi, no I/O. Each ``Annotated`` type carries its own check, so a bad value is
reported at the key that holds it.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from components.backup_slots import parse_clock
from components.image_reference import ImageReferenceError, parse_image
from components.sql import identifiers


class Strict(BaseModel):
    """Base of every config section: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        strict=False,
    )


# --- scalar validators -------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_K8S_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_STORAGE_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_CPU_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m)?$")
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SUFFIX_BYTES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip


def quantity_bytes(value: str) -> float:
    """Bytes in a Kubernetes storage/memory quantity such as ``20Gi``."""
    match = _STORAGE_QUANTITY.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 512Mi or 20Gi")
    return float(match.group(1)) * _SUFFIX_BYTES[match.group(3) or ""]


def _storage_quantity(value: str) -> str:
    if quantity_bytes(value) <= 0:
        raise ValueError("must be greater than zero")
    return value


def _cpu_quantity(value: str) -> str:
    if not _CPU_QUANTITY.match(value) or float(_CPU_QUANTITY.match(value).group(1)) <= 0:  # type: ignore[union-attr]
        raise ValueError(f"{value!r} is not a CPU quantity such as 250m or 1.5")
    return value


def _dns_name(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"{value!r} must be lowercase")
    if value.startswith("*."):
        raise ValueError(f"{value!r}: wildcard domains need DNS-01; HTTP-01 certificates name each host")
    if len(value) > 253 or "." not in value:
        raise ValueError(f"{value!r} is not a fully qualified domain name")
    for label in value.split("."):
        if not _DNS_LABEL.match(label):
            raise ValueError(f"{value!r} is not a valid DNS name (label {label!r})")
    return value


def _k8s_name(max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > max_length:
            raise ValueError(f"{value!r} is longer than {max_length} characters")
        if not _K8S_NAME.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and '-', starting with a letter")
        return value

    return check


def _from_sql_check(check: Callable[[object, str], str | None]) -> Callable[[str], str]:
    def run(value: str) -> str:
        problem = check(value, "value")
        if problem:
            raise ValueError(problem.removeprefix("value: "))
        return value

    return run


def _clock(value: str) -> str:
    parse_clock(value)
    return value


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone such as UTC or Europe/Berlin") from None
    return value


def _image(value: str) -> str:
    try:
        parse_image(value)
    except ImageReferenceError as error:
        raise ValueError(f"not a container image reference: {error}") from None
    return value


def _http_url(value: str) -> str:
    if not _HTTP_URL.match(value):
        raise ValueError(f"{value!r} is not an http(s) URL such as https://s3.example.org")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


StorageQuantity = Annotated[str, AfterValidator(_storage_quantity)]
CpuQuantity = Annotated[str, AfterValidator(_cpu_quantity)]
DnsName = Annotated[str, AfterValidator(_dns_name)]
SiteName = Annotated[str, AfterValidator(_k8s_name(40))]
K8sName = Annotated[str, AfterValidator(_k8s_name(63))]
DatabaseName = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_database_name))]
UserName = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_user_name))]
UserHost = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_host))]
TableName = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_table))]
Clock = Annotated[str, AfterValidator(_clock)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
Image = Annotated[str, AfterValidator(_image)]
Email = Annotated[str, AfterValidator(_email)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
# Privileges are checked against their table in the cross-field pass, which can name the entry.
PrivilegeList = Annotated[list[str], Field(min_length=1)]
Charset = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_charset))]
Collation = Annotated[str, AfterValidator(_from_sql_check(identifiers.validate_collation))]


class ResourceAmounts(Strict):
    cpu: CpuQuantity | None = Field(None, description="CPU, e.g. `250m`")
    memory: StorageQuantity | None = Field(None, description="memory, e.g. `512Mi`")


class Resources(Strict):
    requests: ResourceAmounts = Field(default_factory=ResourceAmounts, description="guaranteed amounts")
    limits: ResourceAmounts = Field(default_factory=ResourceAmounts, description="ceilings")
