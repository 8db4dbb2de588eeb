"""Stack-file edits: comments and order kept, the whole config validated first, atomic writes."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import stack_config
from components.config import ConfigError
from flightdeck import stack_file
from flightdeck.stack_file import StackFile, StackFileError

REPO = Path(__file__).resolve().parents[3]

COMMENTED = """\
# Test cluster. Top comment.
encryptionsalt: v1:abc
config:
  pulumi:disable-default-providers: [kubernetes]   # no ambient kubeconfig
  flightdeck:mysql:
    mode: operator
    version: "11.4"
  flightdeck:certificates:
    acmeEmail: ops@example.org
  flightdeck:kubeconfig:
    secure: v1:c2VjcmV0
  # --- sites ---
  flightdeck:sites:
    # the shop pays the bills
    - name: shop
      cms: wordpress   # WooCommerce
      domains: [shop.example.org]
      user: {maxUserConnections: 200}
      # comment between shop and blog
    - name: blog
      cms: wordpress
      domains: [blog.example.org]
    # before wiki
    - name: wiki
      cms: drupal
      domains: [wiki.example.org]
      backup: {startTime: "01:15"}
    # trailing comment after the last site
  other:key: untouched
"""

COMMENTS = [line.strip() for line in COMMENTED.splitlines() if "#" in line]
NEWS = {"name": "news", "cms": "wordpress", "domains": ["news.example.org"]}


@pytest.fixture
def commented(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(COMMENTED)
    return path


@pytest.fixture(params=["prod", "staging"])
def real(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"Pulumi.{request.param}.yaml"
    shutil.copyfile(REPO / f"Pulumi.{request.param}.yaml", path)
    return path


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "#" in line]


def sites_of(path: Path) -> list[str]:
    return [site["name"] for site in yaml.safe_load(path.read_text())["config"]["flightdeck:sites"]]


def test_sections_match_the_program() -> None:
    assert stack_file.SECTIONS == stack_config.SECTIONS
    assert stack_file.SECRET_KEYS == stack_config.SECRET_KEYS


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_round_trip_of_real_stack_files_is_byte_identical(stack: str) -> None:
    path = REPO / f"Pulumi.{stack}.yaml"
    document = StackFile.load(path)
    assert document.render() == path.read_text()
    document.validate()


def test_round_trip_of_commented_file(commented: Path) -> None:
    assert StackFile.load(commented).render() == COMMENTED


def test_add_site_appends_and_keeps_everything_else(real: Path) -> None:
    before = real.read_text()
    result = stack_file.add_site(real, {**NEWS, "replicas": 3, "filesSize": "20Gi"})
    after = real.read_text()
    assert result.written and result.changed and after == result.after
    assert after.startswith(before.rstrip("\n"))  # pure append at the end of the sites list
    assert after[len(before) :] == (
        "    - name: news\n"
        "      cms: wordpress\n"
        "      domains: [news.example.org]\n"
        "      replicas: 3\n"
        "      filesSize: 20Gi\n"
    )
    assert sites_of(real)[-1] == "news"
    assert [s.name for s in stack_file.list_sites(real)][-1] == "news"


def test_add_site_keeps_trailing_comment_last(commented: Path) -> None:
    stack_file.add_site(commented, NEWS)
    text = commented.read_text()
    assert comments(text) == COMMENTS
    lines = text.splitlines()
    assert lines.index("    - name: news") < lines.index("    # trailing comment after the last site")
    assert lines[-1] == "  other:key: untouched"


def test_add_site_orders_keys_like_the_model(commented: Path) -> None:
    stack_file.add_site(
        commented, {"user": {"name": "n_user"}, "domains": ["n.example.org"], "cms": "drupal", "name": "n"}
    )
    new = yaml.safe_load(commented.read_text())["config"]["flightdeck:sites"][-1]
    assert list(new) == ["name", "cms", "domains", "user"]


def test_add_site_quotes_values_yaml11_would_misread(commented: Path) -> None:
    stack_file.add_site(commented, {**NEWS, "backup": {"startTime": "03:00"}, "env": {"FLAG": "yes", "N": "1"}})
    text = commented.read_text()
    assert 'startTime: "03:00"' in text
    assert 'FLAG: "yes"' in text and 'N: "1"' in text
    site = yaml.safe_load(text)["config"]["flightdeck:sites"][-1]  # PyYAML reads YAML 1.1
    assert site["backup"]["startTime"] == "03:00" and site["env"] == {"FLAG": "yes", "N": "1"}


@pytest.mark.parametrize("name", ["shop", "blog", "wiki"])
def test_remove_site_keeps_comments_outside_it(commented: Path, name: str) -> None:
    inside = {"shop": ["cms: wordpress   # WooCommerce"], "blog": [], "wiki": []}[name]
    stack_file.remove_site(commented, name)
    text = commented.read_text()
    assert name not in sites_of(commented)
    assert comments(text) == [c for c in COMMENTS if c not in inside]
    StackFile.load(commented).validate()


def test_remove_then_add_keeps_comment_order(commented: Path) -> None:
    stack_file.remove_site(commented, "wiki")
    stack_file.add_site(commented, NEWS)
    text = commented.read_text()
    assert comments(text) == COMMENTS
    assert sites_of(commented) == ["shop", "blog", "news"]


def test_remove_every_site(commented: Path) -> None:
    for name in ("shop", "blog", "wiki"):
        stack_file.remove_site(commented, name)
    assert sites_of(commented) == []
    assert "# Test cluster. Top comment." in commented.read_text()
    stack_file.add_site(commented, NEWS)
    assert sites_of(commented) == ["news"]


def test_add_to_file_without_sites(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config:\n  flightdeck:mysql: {mode: operator}\n  flightdeck:certificates:\n    acmeEmail: a@example.org\n"
    )
    stack_file.add_site(path, NEWS)
    assert sites_of(path) == ["news"]
    assert path.read_text().startswith("config:\n  flightdeck:mysql: {mode: operator}\n")


def test_rotate_password(real: Path) -> None:
    name = sites_of(real)[0]
    stack_file.rotate_password(real, name)
    stack_file.rotate_password(real, name)
    site = next(s for s in stack_file.list_sites(real) if s.name == name)
    assert site.user.password_version == 3


def test_rotate_password_inside_flow_mapping_keeps_other_keys(commented: Path) -> None:
    result = stack_file.rotate_password(commented, "shop")
    assert "      user: {maxUserConnections: 200, passwordVersion: 2}\n" in commented.read_text()
    assert result.diff().count("\n-") == 1 and result.diff().count("\n+") == 2  # header + one line each
    stack_file.rotate_password(commented, "blog")
    assert comments(commented.read_text()) == COMMENTS


@pytest.mark.parametrize(
    ("site", "problem"),
    [
        ({"name": "Bad_Name", "cms": "wordpress", "domains": ["x.example.org"]}, "sites[3].name"),
        ({"name": "joomla", "cms": "joomla", "domains": ["x.example.org"]}, "sites[3].cms"),
        ({"name": "nodomain", "cms": "drupal", "domains": []}, "sites[3].domains"),
        ({"name": "dup-domain", "cms": "drupal", "domains": ["shop.example.org"]}, "sites[3].domains[0]"),
        ({"name": "typo", "cms": "drupal", "domains": ["t.example.org"], "replica": 2}, "sites[3].replica"),
        ({"name": "tz", "cms": "drupal", "domains": ["t.example.org"], "backup": {"startTime": "25:00"}}, "sites[3]"),
    ],
)
def test_invalid_add_is_refused_and_nothing_written(commented: Path, site: dict[str, object], problem: str) -> None:
    stat = commented.stat()
    with pytest.raises(ConfigError) as caught:
        stack_file.add_site(commented, site)
    assert any(p.path.startswith(problem) for p in caught.value.problems), caught.value.problems
    assert commented.read_text() == COMMENTED
    assert commented.stat().st_mtime_ns == stat.st_mtime_ns
    assert not [p for p in commented.parent.iterdir() if p.name != commented.name]  # no temp files left


def test_existing_and_missing_sites_are_refused(commented: Path) -> None:
    with pytest.raises(StackFileError, match="already exists"):
        stack_file.add_site(commented, {"name": "shop", "cms": "wordpress", "domains": ["z.example.org"]})
    with pytest.raises(StackFileError, match=r"no site named 'nope'.*shop, blog, wiki"):
        stack_file.remove_site(commented, "nope")
    with pytest.raises(StackFileError, match="no site named"):
        stack_file.rotate_password(commented, "nope")
    assert commented.read_text() == COMMENTED


def test_already_invalid_file_is_reported_as_such(commented: Path) -> None:
    commented.write_text(COMMENTED.replace("acmeEmail: ops@example.org", "acmeEmail: not-an-email"))
    with pytest.raises(ConfigError) as caught:
        stack_file.add_site(commented, NEWS)
    assert "already invalid" in str(caught.value)


def test_unknown_flightdeck_key_and_secret_section_are_problems(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(COMMENTED.replace("  other:key: untouched\n", "  flightdeck:site: []\n"))
    with pytest.raises(ConfigError, match="unknown stack key flightdeck:site"):
        StackFile.load(path).validate()
    path.write_text(
        COMMENTED.replace("  flightdeck:mysql:\n", "  flightdeck:backups:\n    secure: v1:x\n  flightdeck:mysql:\n")
    )
    with pytest.raises(ConfigError, match="must not be a secret"):
        StackFile.load(path).validate()


def test_dry_run_writes_nothing(commented: Path) -> None:
    result = stack_file.add_site(commented, NEWS, dry_run=True)
    assert not result.written and result.changed
    assert "+    - name: news" in result.diff()
    assert commented.read_text() == COMMENTED


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="no stack file"):
        stack_file.add_site(tmp_path / "Pulumi.none.yaml", NEWS)
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config: [unclosed\n")
    with pytest.raises(StackFileError, match="not valid YAML"):
        stack_file.add_site(broken, NEWS)
    scalar = tmp_path / "Pulumi.scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(StackFileError, match="mapping"):
        stack_file.add_site(scalar, NEWS)
    with pytest.raises(StackFileError, match="not a stack name"):
        stack_file.stack_file_path(tmp_path, "prod; rm -rf")


def test_stack_file_path() -> None:
    assert stack_file.stack_file_path("/p", "prod") == Path("/p/Pulumi.prod.yaml")
    assert stack_file.stack_file_path("/p", "org/flightdeck/prod") == Path("/p/Pulumi.prod.yaml")


def test_write_keeps_mode(commented: Path) -> None:
    os.chmod(commented, 0o640)
    stack_file.add_site(commented, NEWS)
    assert commented.stat().st_mode & 0o777 == 0o640


def test_concurrent_edits_lose_nothing(commented: Path) -> None:
    names = [f"site-{i}" for i in range(8)]
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            stack_file.add_site(commented, {"name": name, "cms": "drupal", "domains": [f"{name}.example.org"]})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(sites_of(commented)[3:]) == names
    assert comments(commented.read_text()) == COMMENTS


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["shop", "blog", "wiki", "+a", "+b"]), max_size=6, unique=True))
def test_any_edit_sequence_keeps_non_site_comments(tmp_path: Path, edits: list[str]) -> None:
    path = tmp_path / "Pulumi.h.yaml"
    path.write_text(COMMENTED)
    for edit in edits:
        if edit.startswith("+"):
            name = f"new-{edit[1:]}"
            stack_file.add_site(path, {"name": name, "cms": "wordpress", "domains": [f"{name}.example.org"]})
        else:
            stack_file.remove_site(path, edit)
    text = path.read_text()
    kept = [c for c in COMMENTS if "WooCommerce" not in c]
    assert [c for c in comments(text) if "WooCommerce" not in c] == kept
    StackFile.load(path).validate()
    assert text.endswith("  other:key: untouched\n")


# -- key spelling: Pulumi reads a bare key as the project's own (`sites` is `flightdeck:sites`) ----

BARE = """\
# Keys without the project namespace, as Pulumi allows.
config:
  pulumi:disable-default-providers: [kubernetes]
  mysql:
    mode: operator
  certificates:
    acmeEmail: ops@example.org
  mysqlAdminPassword:
    secure: v1:c2VjcmV0
  sites:
    # the only site
    - name: shop
      cms: wordpress
      domains: [shop.example.org]
"""


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.bare.yaml"
    path.write_text(BARE)
    return path


def test_bare_keys_are_read_like_namespaced_ones(bare: Path) -> None:
    document = StackFile.load(bare)
    raw, problems = document.raw_config()
    assert problems == [] and set(raw) == {"mysql", "certificates", "sites"}
    assert document.has_admin_password
    assert [site.name for site in stack_file.list_sites(bare)] == ["shop"]
    assert document.render() == BARE


def test_edits_keep_the_files_own_spelling(bare: Path) -> None:
    stack_file.add_site(bare, NEWS)
    stack_file.rotate_password(bare, "shop")
    text = bare.read_text()
    assert "  sites:\n" in text and "flightdeck:sites" not in text
    assert [s["name"] for s in yaml.safe_load(text)["config"]["sites"]] == ["shop", "news"]
    assert "# the only site" in text
    stack_file.remove_site(bare, "shop")
    stack_file.remove_site(bare, "news")
    assert yaml.safe_load(bare.read_text())["config"]["sites"] == []
    assert "flightdeck:sites" not in bare.read_text()


def test_a_new_sites_list_follows_the_files_spelling(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  mysql: {mode: operator}\n  certificates: {acmeEmail: a@example.org}\n")
    stack_file.add_site(path, NEWS)
    assert list(yaml.safe_load(path.read_text())["config"]) == ["mysql", "certificates", "sites"]


@pytest.mark.parametrize("key", ["sites", "mysql", "kubeconfig"])
def test_a_file_with_both_spellings_is_refused(tmp_path: Path, key: str) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    value = "{secure: v1:eA==}" if key == "kubeconfig" else "[]" if key == "sites" else "{mode: operator}"
    path.write_text(f"config:\n  flightdeck:{key}: {value}\n  {key}: {value}\n")
    before = path.read_text()
    with pytest.raises(StackFileError, match=f"both 'flightdeck:{key}' and '{key}' are set") as caught:
        stack_file.add_site(path, NEWS)
    assert caught.value.problems[0].path == key
    assert path.read_text() == before


def test_bare_unknown_keys_are_problems_like_the_program_reports(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(BARE.replace("  sites:\n", "  site: []\n  sites:\n"))
    with pytest.raises(ConfigError, match="unknown stack key flightdeck:site "):
        StackFile.load(path).validate()


def test_other_namespaces_are_not_flightdeck_keys() -> None:
    assert stack_file.flightdeck_key_name("pulumi:disable-default-providers") is None
    assert stack_file.flightdeck_key_name("aws:region") is None
    assert stack_file.flightdeck_key_name("flightdeck:sites") == "sites"
    assert stack_file.flightdeck_key_name("sites") == "sites"
