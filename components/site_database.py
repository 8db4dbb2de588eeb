"""SiteDatabase: a site's database, user and grants, created by SQL on the primary.

No database restart and no config file edit for any change: the SQL dynamic providers run
``CREATE``/``ALTER``/``GRANT`` on the live primary. The password comes from
``random.RandomPassword``; bumping ``user.passwordVersion`` rotates it in place.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import SiteConfig
from components.data_retention import Retention
from components.naming import db_secret_name, object_meta, site_labels
from components.sql import (
    MySQLDatabase,
    MySQLDatabaseArgs,
    MySQLGrant,
    MySQLGrantArgs,
    MySQLUser,
    MySQLUserArgs,
)


class SiteDatabase(pulumi.ComponentResource):
    """Database + user + grants, and a Secret with the connection settings in the site namespace."""

    password: pulumi.Output[str]
    secret_name: str

    def __init__(
        self,
        name: str,
        site: SiteConfig,
        *,
        namespace: pulumi.Input[str],
        admin_connection: pulumi.Input[dict[str, Any]],
        primary_host: pulumi.Input[str],
        secondary_host: pulumi.Input[str],
        port: pulumi.Input[int],
        max_user_connections: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flightdeck:database:SiteDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.database = MySQLDatabase(
            f"{name}-database",
            MySQLDatabaseArgs(
                connection=admin_connection,
                database=site.database_name,
                charset=site.database.charset,
                collation=site.database.collation,
                drop_on_delete=site.drop_data_on_delete,
            ),
            # drop_on_delete is what the policy pack reads: the provider never drops without it.
            opts=child.merge(Retention.for_site(site).options),
        )
        # The version is a keeper: bumping it makes a new password, which the user resource
        # applies with ALTER USER (no replacement, no dropped sessions for other users).
        generated = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=False,
            keepers={"passwordVersion": str(site.user.password_version)},
            opts=child,
        )
        self.password = pulumi.Output.secret(generated.result)
        self.user = MySQLUser(
            f"{name}-user",
            MySQLUserArgs(
                connection=admin_connection,
                user=site.user_name,
                host=site.user.host,
                password=self.password,
                # Explicit or replicas x connectionsPerReplica (components.config.database_server):
                # every site is capped, so none can take the server's shared max_connections.
                max_user_connections=max_user_connections,
                require_tls=site.user.require_tls,
            ),
            opts=child,
        )
        grants = [(site.database_name, "*", site.database.privileges)]
        grants += [(grant.database, grant.table, grant.privileges) for grant in site.grants]
        self.grants = [
            MySQLGrant(
                # '.' is in neither identifier alphabet, so every (database, table) gets its own name.
                f"{name}-grant-{database}.{table}",
                MySQLGrantArgs(
                    connection=admin_connection,
                    user=self.user.user,
                    host=self.user.host,
                    database=database,
                    table=table,
                    privileges=list(privileges),
                ),
                # Dropping the user drops its grants, so no REVOKE is needed when the site goes.
                opts=child.merge(pulumi.ResourceOptions(depends_on=[self.database], deleted_with=self.user)),
            )
            for database, table, privileges in grants
        ]
        self.secret_name = db_secret_name(site)
        settings = pulumi.Output.all(primary_host, secondary_host, port, self.password).apply(
            lambda resolved: _connection_settings(site, resolved)
        )
        secret_settings: pulumi.Output[dict[str, str]] = pulumi.Output.secret(settings)
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=object_meta(self.secret_name, namespace, site_labels(site)),
            type="Opaque",
            string_data=secret_settings,
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.user, *self.grants])),
        )
        self.register_outputs({"database": self.database.database, "user": self.user.user, "secret": self.secret_name})


def _connection_settings(site: SiteConfig, resolved: list[Any]) -> dict[str, str]:
    primary_host, secondary_host, port, password = resolved
    return {
        "DB_HOST": str(primary_host),
        "DB_READ_HOST": str(secondary_host),
        "DB_PORT": str(port),
        "DB_ADDRESS": f"{primary_host}:{port}",
        "DB_NAME": site.database_name,
        "DB_USER": site.user_name,
        "DB_PASSWORD": str(password),
    }
