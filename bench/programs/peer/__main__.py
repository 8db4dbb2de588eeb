"""Benchmark peer: each site's database (and, when asked, user and grant) with pulumi-mysql 3.3.0.

Config: ``sites`` (count), ``prefix`` (name prefix), ``kinds`` (a subset of
``["database", "user", "grant"]``), ``endpoint`` (``host:port``), ``username``, secret
``password``, secret ``passwordSeed`` (each site user's password derives from it). Runs in the
benchmark's own virtualenv (``bench/requirements.txt``), never the project's.
"""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_mysql as mysql  # type: ignore[import-not-found]  # bench venv only (bench/requirements.txt)

config = pulumi.Config()
sites = config.require_int("sites")
prefix = config.require("prefix")
kinds = set(config.require_object("kinds"))
seed = config.require_secret("passwordSeed")

provider = mysql.Provider(
    "mysql",
    endpoint=config.require("endpoint"),
    username=config.require("username"),
    password=config.require_secret("password"),
)
opts = pulumi.ResourceOptions(provider=provider)


def site_password(name: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(seed.apply(lambda s: hashlib.sha256(f"{s}:{name}".encode()).hexdigest()[:24]))


for i in range(sites):
    name = f"{prefix}_{i:04d}"
    database = mysql.Database(f"s{i:04d}-db", name=name, default_character_set="utf8mb4",
                              default_collation="utf8mb4_unicode_ci", opts=opts)  # fmt: skip
    if "user" in kinds:
        user = mysql.User(f"s{i:04d}-user", user=name, host="%", plaintext_password=site_password(name), opts=opts)
        if "grant" in kinds:
            mysql.Grant(f"s{i:04d}-grant", user=user.user, host=user.host, database=database.name,
                        privileges=["ALL"], opts=opts)  # fmt: skip
pulumi.export("sites", sites)
