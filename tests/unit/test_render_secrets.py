"""The dry renderer never prints a generated password or the admin password, in any form.

Under the renderer's mocks every ``RandomPassword`` (site database passwords, the MariaDB root
password, the WordPress keys and salts, the Drupal hash salt) returns ``mock-password-<name>``;
an external server's admin password comes in as the secret key ``mysqlAdminPassword``. Each of
them must be absent, in plain text, base64 or JSON-escaped form, from every file the renderer
writes and from what it prints (the site table, ``--json`` outputs).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tools.render_stack import deploy, stack_file_config, stack_file_secret_keys, summary_table, write_render

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
ADMIN_PASSWORD = "Adm1n-pw-0f-the-external-server"


def forms(secret: str) -> set[str]:
    return {secret, json.dumps(secret)[1:-1], base64.b64encode(secret.encode()).decode()}


def rendered_text(config: dict[str, Any], stack: str, secrets: dict[str, str], out: Path) -> tuple[str, set[str]]:
    deployment = deploy(config, stack=stack, secrets=secrets)
    generated = {f"mock-password-{r.name}" for r in deployment.of_type(RANDOM_PASSWORD)}
    # The mocks hand these to the program for real: the scan below is not vacuous.
    db_secret = next(r for r in deployment.kind("Secret") if r.name.endswith("-db-secret"))
    assert db_secret.inputs["stringData"]["DB_PASSWORD"] in generated
    written = write_render(deployment, out)
    text = "\n".join(
        [
            *(path.read_text() for path in written),
            summary_table(deployment.outputs),
            json.dumps(deployment.outputs, default=str),
        ]
    )
    return text, generated | set(secrets.values())


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_no_generated_password_in_the_dry_render(stack: str, tmp_path: Path) -> None:
    secrets = {key: f"{key}-value-never-shown" for key in stack_file_secret_keys(stack)}
    text, secret_values = rendered_text(stack_file_config(stack), stack, secrets, tmp_path)
    assert len(secret_values) >= 3
    assert [s for s in secret_values if any(form in text for form in forms(s))] == []


def test_no_admin_password_of_an_external_server_in_the_dry_render(tmp_path: Path) -> None:
    config = stack_file_config("local")
    config["mysql"] = {"mode": "external", "host": "10.20.30.40", "adminUser": "flightdeck_admin"}
    text, secret_values = rendered_text(config, "external", {"mysqlAdminPassword": ADMIN_PASSWORD}, tmp_path)
    assert ADMIN_PASSWORD in secret_values and "10.20.30.40" in text
    assert [s for s in secret_values if any(form in text for form in forms(s))] == []
