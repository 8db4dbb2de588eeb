"""Benchmark: each site's database (and, when asked, user and grant) with flightdeck's SQL providers.

The same shape as ``bench/programs/peer`` (the same names, charset, privileges), through
:mod:`components.sql`. Config: ``sites`` (count), ``prefix``, ``kinds`` (a subset of
``["database", "user", "grant"]``), secret ``adminConnection`` (the providers' ``connection``
input) and secret ``passwordSeed``. Like flightdeck's own program, it keeps the SDK's
per-resource debug lines off the engine (:mod:`components.registration_logs`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi

from components import registration_logs
from components.sql import MySQLDatabase, MySQLDatabaseArgs, MySQLGrant, MySQLGrantArgs, MySQLUser, MySQLUserArgs

registration_logs.drop_registration_progress_logs()
config = pulumi.Config()
sites = config.require_int("sites")
prefix = config.require("prefix")
kinds = set(config.require_object("kinds"))
admin: pulumi.Output[Any] = config.require_secret_object("adminConnection")
seed = config.require_secret("passwordSeed")


def site_password(name: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(seed.apply(lambda s: hashlib.sha256(f"{s}:{name}".encode()).hexdigest()[:24]))


for i in range(sites):
    name = f"{prefix}_{i:04d}"
    database = MySQLDatabase(f"s{i:04d}-db", MySQLDatabaseArgs(database=name, connection=admin))
    if "user" in kinds:
        user = MySQLUser(f"s{i:04d}-user", MySQLUserArgs(user=name, password=site_password(name), connection=admin))
        if "grant" in kinds:
            MySQLGrant(
                f"s{i:04d}-grant",
                MySQLGrantArgs(
                    user=user.user, host=user.host, database=database.database, privileges=["ALL"], connection=admin
                ),
            )
pulumi.export("sites", sites)
