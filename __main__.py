"""flightdeck: hosting for many WordPress and Drupal sites on one Kubernetes cluster.

Thin on purpose: validate the stack config (every problem reported at once, before any
resource is registered), refuse changes that would lose data (compared with this stack's own
previous outputs, also before any resource is registered), build the Platform, export what
operators and the next run need. The SDK's per-resource debug chatter stays off the engine's
wire (components/registration_logs.py: 16 % of a preview's CPU).
"""

import pulumi

from components import previous_deployment, registration_logs, stack_config
from components.change_guard import OUTPUT_NAME
from components.platform import Platform

registration_logs.drop_registration_progress_logs()
settings = stack_config.load()
previous_deployment.refuse_destructive_changes_since_last_deployment(settings.config)
platform = Platform("flightdeck", settings)
pulumi.export("mysql", platform.summary["mysql"])
pulumi.export("sites", platform.summary["sites"])
pulumi.export(OUTPUT_NAME, platform.summary[OUTPUT_NAME])
