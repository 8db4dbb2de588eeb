"""The stack config model: realistic stacks validate; each bad config names its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from components.config import (
    ConfigError,
    MySQLOperatorConfig,
    StackConfig,
    format_path,
    quantity_bytes,
    validate_stack_config,
)
from components.config.database_server import site_connection_limit
from tests.unit.harness import minimal_config, stack_file_config


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_stack_files_validate(stack: str) -> None:
    config = validate_stack_config(stack_file_config(stack), stack=stack)
    assert config.sites


def test_prod_stack_is_production_grade() -> None:
    config = validate_stack_config(stack_file_config("prod"))
    assert isinstance(config.mysql, MySQLOperatorConfig)
    assert config.mysql.reader_count == 2
    assert config.mysql.size == "20Gi"
    assert config.certificates.environment == "production"
    assert len(config.sites) >= 5
    assert {site.cms for site in config.sites} == {"wordpress", "drupal"}


def test_staging_differs_from_prod() -> None:
    prod = validate_stack_config(stack_file_config("prod"))
    staging = validate_stack_config(stack_file_config("staging"))
    assert staging.kubernetes.context != prod.kubernetes.context
    assert staging.certificates.environment == "staging"
    assert isinstance(staging.mysql, MySQLOperatorConfig) and isinstance(prod.mysql, MySQLOperatorConfig)
    # Smaller, but the same Galera topology, so plugins that Galera refuses show up in staging first.
    assert staging.mysql.reader_count == prod.mysql.reader_count == 2
    assert quantity_bytes(staging.mysql.size) < quantity_bytes(prod.mysql.size)


def test_defaults_are_safe() -> None:
    config = validate_stack_config(minimal_config())
    site = config.sites[0]
    assert site.database.charset == "utf8mb4"
    assert site.database.collation == "utf8mb4_unicode_ci"
    assert site.user.host == "%"
    assert site.drop_data_on_delete is False
    assert site.user.max_user_connections is None  # derived: replicas x mysql.connectionsPerReplica
    assert isinstance(config.mysql, MySQLOperatorConfig)
    assert site_connection_limit(site, config.mysql) == 2 * 25
    assert config.mysql.binlog_expire_days == 3 and config.mysql.max_connections == 1000
    assert site.database_name == "blog" and site.user_name == "blog"
    assert isinstance(config.mysql, MySQLOperatorConfig)
    assert config.mysql.update_strategy == "ReplicasFirstPrimaryLast"
    assert config.mysql.auto_failover and config.mysql.anti_affinity


def test_derived_names_replace_dashes() -> None:
    config = validate_stack_config(
        minimal_config(sites=[{"name": "my-shop", "cms": "wordpress", "domains": ["shop.example.org"]}])
    )
    assert config.sites[0].database_name == "my_shop"


def test_model_is_immutable() -> None:
    config = validate_stack_config(minimal_config())
    with pytest.raises(ValidationError):
        config.sites[0].replicas = 5  # type: ignore[misc]


def _with(path: str, value: Any) -> dict[str, Any]:
    """``minimal_config()`` with ``value`` set at a dotted path (``sites.0.domains``)."""
    config = copy.deepcopy(minimal_config())
    target: Any = config
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    last = parts[-1]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return config


def _without(path: str) -> dict[str, Any]:
    config = copy.deepcopy(minimal_config())
    head, _, last = path.rpartition(".")
    target: Any = config
    for part in head.split(".") if head else []:
        target = target[int(part)] if part.isdigit() else target[part]
    del target[last]
    return config


TWO_SAME_SITES = [
    {"name": "blog", "cms": "wordpress", "domains": ["a.example.org"]},
    {"name": "blog", "cms": "drupal", "domains": ["b.example.org"]},
]

# (config, the field path the error must name, a fragment of the reason)
BAD_CONFIGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown top key", {**minimal_config(), "sitez": []}, "sitez", "unknown key"),
    ("missing mysql", _without("mysql"), "mysql", "Field required"),
    ("bad mysql mode", _with("mysql.mode", "galera"), "mysql", "operator"),
    ("negative readers", _with("mysql.readerCount", -1), "mysql.readerCount", "greater than or equal to 0"),
    ("bad size", _with("mysql.size", "20 gigs"), "mysql.size", "quantity"),
    ("zero size", _with("mysql.size", "0Gi"), "mysql.size", "greater than zero"),
    ("unknown mysql key", _with("mysql.replicas", 3), "mysql.replicas", "unknown key"),
    (
        "bad update strategy",
        _with("mysql.updateStrategy", "Recreate"),
        "mysql.updateStrategy",
        "ReplicasFirstPrimaryLast",
    ),
    ("bad access mode", _with("mysql.access", {"mode": "ssh"}), "mysql.access.mode", "direct"),
    (
        "portForward with override",
        _with("mysql.access", {"mode": "portForward", "host": "x"}),
        "mysql.access",
        "direct",
    ),
    ("external without host", _with("mysql", {"mode": "external"}), "mysql.host", "Field required"),
    (
        "external via portForward",
        _with("mysql", {"mode": "external", "host": "db.internal", "access": {"mode": "portForward"}}),
        "mysql.access.mode",
        "direct",
    ),
    ("bad cpu", _with("mysql.resources", {"requests": {"cpu": "lots"}}), "mysql.resources.requests.cpu", "CPU"),
    ("bad time zone", _with("mysql.timeZone", "Mars/Olympus"), "mysql.timeZone", "time zone"),
    ("missing email", _with("certificates", {}), "certificates.acmeEmail", "Field required"),
    ("bad email", _with("certificates.acmeEmail", "ops-at-example"), "certificates.acmeEmail", "e-mail"),
    ("bad acme env", _with("certificates.environment", "prod"), "certificates.environment", "production"),
    ("bad window start", _with("backups", {"window": {"start": "25:00"}}), "backups.window.start", "24-hour"),
    ("bad window format", _with("backups", {"window": {"end": "5am"}}), "backups.window.end", "HH:MM"),
    ("zero concurrency", _with("backups", {"maxConcurrent": 0}), "backups.maxConcurrent", "greater than or equal to 1"),
    (
        "two backup storages",
        _with(
            "backups",
            {
                "databaseBackups": {
                    "storage": {
                        "persistentVolumeClaim": {},
                        "s3": {"bucket": "bkt", "endpoint": "s3", "credentialsSecret": "s"},
                    }
                }
            },
        ),
        "backups.databaseBackups.storage",
        "exactly one",
    ),
    (
        "window too small",
        _with("backups", {"window": {"start": "01:00", "end": "01:30", "slotMinutes": 15}, "maxConcurrent": 1}),
        "backups",
        "do not fit",
    ),
    ("sites not a list", _with("sites", {"name": "blog"}), "sites", "list"),
    ("missing site name", _without("sites.0.name"), "sites[0].name", "Field required"),
    ("uppercase site name", _with("sites.0.name", "Blog"), "sites[0].name", "lowercase"),
    ("site name too long", _with("sites.0.name", "a" * 41), "sites[0].name", "longer than 40"),
    ("bad cms", _with("sites.0.cms", "joomla"), "sites[0].cms", "'wordpress' or 'drupal'"),
    ("no domains", _with("sites.0.domains", []), "sites[0].domains", "at least 1"),
    ("uppercase domain", _with("sites.0.domains", ["Blog.example.org"]), "sites[0].domains[0]", "lowercase"),
    ("invalid domain", _with("sites.1.domains", ["wiki..example.org"]), "sites[1].domains[0]", "not a valid DNS name"),
    ("single-label domain", _with("sites.0.domains", ["localhost"]), "sites[0].domains[0]", "fully qualified"),
    ("wildcard domain", _with("sites.0.domains", ["*.example.org"]), "sites[0].domains[0]", "DNS-01"),
    (
        "duplicate domain",
        _with("sites.1.domains", ["blog.example.org"]),
        "sites[1].domains[0]",
        "already used by sites[0].domains[0]",
    ),
    ("duplicate site", _with("sites", TWO_SAME_SITES), "sites[1].name", "already used"),
    ("duplicate database", _with("sites.1.database", {"name": "blog"}), "sites[1].database.name", "already used"),
    ("duplicate user", _with("sites.1.user", {"name": "blog"}), "sites[1].user.name", "already used"),
    ("database name too long", _with("sites.0.database", {"name": "d" * 65}), "sites[0].database.name", "at most 64"),
    (
        "database name with backtick",
        _with("sites.0.database", {"name": "blog`; DROP"}),
        "sites[0].database.name",
        "disallowed character",
    ),
    ("user name too long", _with("sites.0.user", {"name": "u" * 33}), "sites[0].user.name", "at most 32"),
    ("user name with quote", _with("sites.0.user", {"name": "o'brien"}), "sites[0].user.name", "disallowed"),
    ("system user", _with("sites.0.user", {"name": "root"}), "sites[0].user.name", "reserved"),
    (
        "maintenance account",
        _with("sites.0.user", {"name": "mysql", "host": "localhost"}),
        "sites[0].user.name",
        "reserved",
    ),
    ("derived root user", _with("sites.0.database", {"name": "root"}), "sites[0].user.name", "derived"),
    ("system schema", _with("sites.0.database", {"name": "performance_schema"}), "sites[0].database.name", "reserved"),
    ("site named sys", _with("sites.0.name", "sys"), "sites[0].name", "system schema"),
    (
        "external admin account",
        _with("mysql", {"mode": "external", "host": "db.internal", "adminUser": "dbadmin"})
        | {"sites": [{"name": "blog", "cms": "wordpress", "domains": ["b.example.org"], "user": {"name": "dbadmin"}}]},
        "sites[0].user.name",
        "mysql.adminUser",
    ),
    (
        "operator metrics account",
        _with("sites.0.user", {"name": "mariadb-metrics"}),
        "sites[0].user.name",
        "metrics account",
    ),
    ("even Galera size", _with("mysql.readerCount", 1), "mysql.readerCount", "odd number"),
    ("even Galera size 4", _with("mysql.readerCount", 3), "mysql.readerCount", "use 2 or 4"),
    (
        "drain breaks quorum",
        _with("mysql.podDisruptionBudget", {"maxUnavailable": 2}),
        "mysql.podDisruptionBudget.maxUnavailable",
        "quorum",
    ),
    ("cluster name too long", _with("mysql.name", "m" * 41), "mysql.name", "at most 40"),
    (
        "buffer pool too large",
        _with("mysql.innodbBufferPoolSize", "1900Mi"),
        "mysql.innodbBufferPoolSize",
        "OOM",
    ),
    (
        "nothing to size the buffer pool from",
        _with("mysql.resources", {"requests": {"cpu": "1"}}),
        "mysql.resources.limits.memory",
        "innodb_buffer_pool_size",
    ),
    ("buffer pool fraction", _with("mysql.innodbBufferPoolFraction", 0.95), "mysql.innodbBufferPoolFraction", "0.8"),
    ("binlogs kept forever", _with("mysql.binlogExpireDays", 0), "mysql.binlogExpireDays", "greater than or equal"),
    (
        "connections do not fit",
        _with("sites.0.user", {"maxUserConnections": 990}),
        "mysql.maxConnections",
        "limits 1040 (each site's user.maxUserConnections, else replicas × connectionsPerReplica 25) plus reservedConnections 20 = 1060",
    ),
    (
        "external connections do not fit",
        _with("mysql", {"mode": "external", "host": "db.internal", "maxConnections": 100}),
        "mysql.maxConnections",
        "= 120",
    ),
    ("too few reserved", _with("mysql.reservedConnections", 2), "mysql.reservedConnections", "greater than or equal"),
    ("removed replication key", _with("mysql.maxLagSeconds", 30), "mysql.maxLagSeconds", "unknown key"),
    ("bad user host", _with("sites.0.user", {"host": "10.0.0.1'"}), "sites[0].user.host", "disallowed"),
    (
        "negative connections",
        _with("sites.0.user", {"maxUserConnections": -5}),
        "sites[0].user.maxUserConnections",
        "greater than or equal to 1",
    ),
    (
        "unlimited connections",
        _with("sites.0.user", {"maxUserConnections": 0}),
        "sites[0].user.maxUserConnections",
        "greater than or equal to 1",
    ),
    (
        "password version zero",
        _with("sites.0.user", {"passwordVersion": 0}),
        "sites[0].user.passwordVersion",
        "greater than or equal to 1",
    ),
    ("bad charset", _with("sites.0.database", {"charset": "utf-8"}), "sites[0].database.charset", "letters and digits"),
    (
        "unknown privilege",
        _with("sites.0.database", {"privileges": ["SELEC"]}),
        "sites[0].database.privileges[0]",
        "unknown privilege",
    ),
    (
        "db privilege on a table",
        _with("sites.0.grants", [{"database": "shared", "table": "posts", "privileges": ["CREATE VIEW", "EVENT"]}]),
        "sites[0].grants[0].privileges[1]",
        "database-level",
    ),
    (
        "grant without privileges",
        _with("sites.0.grants", [{"database": "shared", "privileges": []}]),
        "sites[0].grants[0].privileges",
        "at least 1",
    ),
    (
        "duplicate grant target",
        _with(
            "sites.0.grants",
            [
                {"database": "shared", "privileges": ["SELECT"]},
                {"database": "shared", "table": "*", "privileges": ["INSERT"]},
            ],
        ),
        "sites[0].grants[1]",
        "already granted by grants[0]",
    ),
    (
        "site requests above limits",
        _with("sites.0.resources", {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
        "sites[0].resources.requests.memory",
        "more than the limit",
    ),
    (
        "mysql cpu above limit",
        _with("mysql.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}),
        "mysql.resources.requests.cpu",
        "more than the limit",
    ),
    (
        "pdb blocks drains",
        _with("mysql.podDisruptionBudget", {"maxUnavailable": 0}),
        "mysql.podDisruptionBudget.maxUnavailable",
        "greater than or equal to 1",
    ),
    (
        "velero namespace mismatch",
        _with("operators", {"velero": {"enabled": True, "namespace": "backup-system"}}),
        "backups.velero.namespace",
        "Velero release",
    ),
    (
        "grant on own db",
        _with("sites.0.grants", [{"database": "blog", "privileges": ["SELECT"]}]),
        "sites[0].grants[0].database",
        "own database",
    ),
    ("zero replicas", _with("sites.0.replicas", 0), "sites[0].replicas", "greater than or equal to 1"),
    ("bad files size", _with("sites.0.filesSize", "lots"), "sites[0].filesSize", "quantity"),
    ("bad image", _with("sites.0.image", "Not An Image"), "sites[0].image", "container image"),
    ("reserved env", _with("sites.0.env", {"DB_HOST": "x"}), "sites[0].env.DB_HOST", "reserved"),
    ("snake_case key", _with("sites.0.drop_data_on_delete", True), "sites[0].drop_data_on_delete", "unknown key"),
    (
        "pinned start outside window",
        _with("sites.0.backup", {"startTime": "12:00"}),
        "sites[0].backup.startTime",
        "outside the backup window",
    ),
    (
        "pinned start off slot",
        _with("sites.0.backup", {"startTime": "01:07"}),
        "sites[0].backup.startTime",
        "slot boundary",
    ),
    (
        "values on disabled operator",
        _with("operators", {"velero": {"values": {"a": 1}}}),
        "operators.velero.values",
        "not enabled",
    ),
    ("namespace prefix", _with("kubernetes", {"namespacePrefix": "Prod_"}), "kubernetes.namespacePrefix", "pattern"),
]


@pytest.mark.parametrize(("case", "config", "path", "reason"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_its_field(case: str, config: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config, stack="prod")
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid stack config:"
    expected = f"  prod: {path}: "
    matching = [line for line in lines if line.startswith(expected)]
    assert matching, f"no problem at {path!r} in:\n{caught.value}"
    assert any(reason in line for line in matching), f"{reason!r} not in {matching}"
    assert "Traceback" not in str(caught.value)


def test_corpus_is_large() -> None:
    assert len(BAD_CONFIGS) >= 30


def test_every_problem_is_listed_at_once() -> None:
    config = minimal_config()
    config["mysql"]["readerCount"] = -1
    config["sites"][0]["domains"] = ["Bad.example.org"]
    config["sites"][1]["domains"] = ["blog.example.org", "dup.example.org", "dup.example.org"]
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config, stack="staging")
    paths = {problem.path for problem in caught.value.problems}
    assert paths == {"mysql.readerCount", "sites[0].domains[0]", "sites[1].domains[2]"}


def test_external_mode_requires_admin_password_secret() -> None:
    config = minimal_config(
        mysql={"mode": "external", "host": "db.internal"},
        kubernetes={"egress": {"databaseCidrs": ["10.0.5.10/32"]}},
    )
    with pytest.raises(ConfigError, match="mysqlAdminPassword: external mode needs the secret admin password"):
        validate_stack_config(config, has_admin_password=False)
    assert validate_stack_config(config, has_admin_password=True).mysql.mode == "external"


def test_errors_never_echo_values_of_secret_fields() -> None:
    # Secrets are separate keys; a stray password-like value in the model is never echoed back.
    config = minimal_config()
    config["mysql"]["adminPassword"] = "hunter2-super-secret"
    with pytest.raises(ConfigError) as caught:
        validate_stack_config(config)
    assert "hunter2" not in str(caught.value)
    assert "mysql.adminPassword: unknown key" in str(caught.value)


def test_format_path() -> None:
    assert format_path(("sites", 2, "domains", 0)) == "sites[2].domains[0]"
    assert format_path(("mysql", "readerCount")) == "mysql.readerCount"


def test_every_field_is_documented() -> None:
    def walk(model: type[Any], path: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{path}.{name}")
        return missing

    from components import config as module

    models = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, StackConfig.__mro__[1])]
    undocumented = [m for model in models for m in walk(model, model.__name__)]
    assert not undocumented
