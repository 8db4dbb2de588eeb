"""flightdeck: hosting for many WordPress and Drupal sites on one Kubernetes cluster.

Thin on purpose: validate the stack config (every problem reported at once, before any
resource is registered), build the Platform, export what operators need.
"""

import pulumi

from components import stack_config
from components.platform import Platform

settings = stack_config.load()
platform = Platform("flightdeck", settings)
pulumi.export("mysql", platform.summary["mysql"])
pulumi.export("sites", platform.summary["sites"])
