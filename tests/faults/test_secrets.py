"""No plaintext secret anywhere the tier's operations wrote or printed (collected last).

Secrets: every generated password the cluster now holds (each site's database password, the
WordPress keys and salts, the Drupal hash salt), the MariaDB root password, every password a
case saw before it rotated it, the rig server's admin password and the stack's passphrase.
Searched, in plain text, base64 (Kubernetes Secret data) and JSON-escaped form: ``pulumi stack
export``; the engine event stream and the output (the program's and the providers' logs) of
every operation of every case; every error message and result document, the failures
included; the CLI's ``--json`` output; the control plane's logs (the mariadb-operator stand-in
handles the root password); and the dry renderer's output for the same stack file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.harness import REPO_ROOT, Capture, FaultStack, cli, encodings, leaks, site_names

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]


def cluster_secrets(stack: FaultStack) -> set[str]:
    rig = stack.rig
    found = {rig.secret_data("mariadb", "mariadb-root")["password"]}
    for site in site_names(stack):
        found.add(rig.secret_data(site, f"{site}-db")["DB_PASSWORD"])
        for secret in rig.core().list_namespaced_secret(site).items:
            if secret.metadata.name.endswith(("-wordpress", "-drupal")):
                found |= set(rig.secret_data(site, secret.metadata.name).values())
    return found


def gather(stack: FaultStack, texts: dict[str, str], passphrase_file: Path, tmp_path: Path) -> None:
    """The texts the scan reads besides the captured ones."""
    texts["pulumi stack export"] = json.dumps(stack.platform.export())
    # `preview --drift --json`, `up --json` and `recover --json` ran in their cases (captured).
    commands = [(["outputs", stack.name], True), (["sites", "list", "-s", stack.name], False)]
    for args, engine in commands:
        done = cli(stack, [*args, "--json"], passphrase_file, engine=engine)
        assert done.returncode == 0, done.stderr[-2000:]
        texts[f"flightdeck {' '.join(args)} --json"] = done.stdout + done.stderr
    for log in stack.rig.control_plane.log_dir.glob("*.log"):
        texts[f"control plane log {log.name}"] = log.read_text(errors="replace")

    out = tmp_path / "render"
    render = subprocess.run(
        [sys.executable, "-m", "tools.render_stack", stack.name, "--stack-dir", str(stack.platform.work_dir),
         "--out", str(out), "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert render.returncode == 0, render.stderr[-2000:]
    rendered = [render.stdout, render.stderr, *(p.read_text() for p in sorted(out.rglob("*.yaml")))]
    assert len(rendered) > 20
    texts["dry render"] = "\n".join(rendered)


def test_the_scan_finds_what_it_looks_for() -> None:
    secret = "s3cr3tPassw0rdXyz"
    assert encodings(secret) >= {secret, "czNjcjN0UGFzc3cwcmRYeXo="}
    assert leaks({"a": f"x{secret}y", "b": "czNjcjN0UGFzc3cwcmRYeXo=", "c": "clean"}, {secret}) == {"a": 1, "b": 1}


def test_no_plaintext_secret_in_state_events_logs_errors_json_or_the_dry_render(
    faults: FaultStack, capture: Capture, passphrase_file: Path, tmp_path: Path
) -> None:
    stack = faults
    secrets = capture.secrets | cluster_secrets(stack)
    sites = site_names(stack)
    assert len(secrets) >= 2 * len(sites) + 3, "the scan needs the secrets it is about"

    texts = capture.texts()
    assert capture.events and capture.output and capture.documents
    # Collected last, after the failure cases: their error messages and partial results are scanned.
    assert capture.errors, "no failure case ran before the scan"
    stack.note("secrets scan", f"{len(secrets)} secrets, {len(capture.errors)} error messages, "
               f"{len(capture.events)} engine events, {len(capture.output)} output lines")  # fmt: skip
    with stack.timed("secrets scan", "export, CLI, logs, dry render"):
        gather(stack, texts, passphrase_file, tmp_path)
    assert leaks(texts, secrets) == {}
