"""Cross-field rules of a site's workload settings (limits, image, environment). Pure."""

from __future__ import annotations

from components.config.problems import Problem
from components.config.sites import SiteConfig
from components.config.values import quantity_bytes
from components.config.workload import FLIGHTDECK_ENV_PREFIX, RESERVED_ENV
from components.image_reference import parse_image

MIN_UPLOAD_BYTES = 2**20
# ingress-nginx buffers a request body to its own disk and PHP to a temporary file before
# the CMS sees it: beyond this, uploads belong in object storage, not in a web request.
MAX_UPLOAD_BYTES = 2 * 2**30
MIN_PHP_MEMORY_BYTES = 64 * 2**20  # the minimum WordPress and Drupal document
CMS_IMAGES = ("wordpress", "drupal")
# Official tags of these variants run PHP-FPM or only the CLI: nothing answers HTTP on port 80.
NON_HTTP_VARIANTS = ("fpm", "cli")


def site_workload_problems(site: SiteConfig, path: str) -> list[Problem]:
    problems: list[Problem] = []
    upload = quantity_bytes(site.max_upload_size)
    if not MIN_UPLOAD_BYTES <= upload <= MAX_UPLOAD_BYTES:
        problems.append(Problem(f"{path}.maxUploadSize", f"{site.max_upload_size} is outside 1Mi..2Gi"))
    memory = quantity_bytes(site.php.memory_limit)
    limit = site.resources.limits.memory
    if memory < MIN_PHP_MEMORY_BYTES:
        problems.append(Problem(f"{path}.php.memoryLimit", f"{site.php.memory_limit} is below 64Mi"))
    elif limit and memory > quantity_bytes(limit):
        problems.append(
            Problem(
                f"{path}.php.memoryLimit",
                f"{site.php.memory_limit} is more than the pod's memory limit {limit} (resources.limits.memory)",
            )
        )
    if site.image:
        problems += _image_problems(site, f"{path}.image")
    for key in site.env:
        if key in RESERVED_ENV or key.startswith(FLIGHTDECK_ENV_PREFIX):
            problems.append(Problem(f"{path}.env.{key}", "reserved: flightdeck sets it"))
    return problems


def _image_problems(site: SiteConfig, path: str) -> list[Problem]:
    assert site.image is not None
    reference = parse_image(site.image)  # already valid: the model checked it
    official = reference.official_name
    if official in CMS_IMAGES and official != site.cms:
        return [Problem(path, f"{site.image} is the official {official} image, but the site's cms is {site.cms}")]
    tag_parts = (reference.tag or "").split("-")
    variants = [variant for variant in NON_HTTP_VARIANTS if variant in tag_parts]
    if official in CMS_IMAGES and variants:
        return [
            Problem(
                path, f"{site.image} is the {variants[0]} variant: nothing serves HTTP on port 80; use an apache tag"
            )
        ]
    return []
