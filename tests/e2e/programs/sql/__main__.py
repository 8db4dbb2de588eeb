"""E2E test program: one database + user + grant per site, all from stack config.

Config (namespace = the project name the test writes into Pulumi.yaml):

* ``adminConnection`` (secret object): the providers' ``connection`` input,
  ``{"mode": "direct", "host", "port", "user", "password"}``.
* ``sites`` (object): a list of ``{"name", "database", "user", "privileges",
  "charset"?, "collation"?, "dropOnDelete"?}``.
* ``sitePasswords`` (secret object): ``{site name: password}`` (pulumi-random is not
  available on this machine, so passwords come from config).

The test copies this file into a temporary project directory next to a generated
``Pulumi.yaml``; ``PYTHONPATH`` points at the repository root so both this program and
the dynamic-provider host import :mod:`components.sql`.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.sql import (
    MySQLDatabase,
    MySQLDatabaseArgs,
    MySQLGrant,
    MySQLGrantArgs,
    MySQLUser,
    MySQLUserArgs,
)

config = pulumi.Config()
admin: pulumi.Output[Any] = config.require_secret_object("adminConnection")
sites: list[dict[str, Any]] = config.require_object("sites")
passwords: pulumi.Output[Any] = config.require_secret_object("sitePasswords")


def _password(name: str) -> pulumi.Output[str]:
    return passwords.apply(lambda table: str(table[name]))


for site in sites:
    name = str(site["name"])
    database = MySQLDatabase(
        f"{name}-db",
        MySQLDatabaseArgs(
            database=site["database"],
            connection=admin,
            charset=site.get("charset"),
            collation=site.get("collation"),
            drop_on_delete=site.get("dropOnDelete"),
        ),
    )
    user = MySQLUser(
        f"{name}-user",
        MySQLUserArgs(user=site["user"], password=_password(name), connection=admin),
    )
    MySQLGrant(
        f"{name}-grant",
        MySQLGrantArgs(
            user=user.user,
            host=user.host,
            database=database.database,
            privileges=site["privileges"],
            connection=admin,
        ),
    )

pulumi.export("sites", [str(site["name"]) for site in sites])
