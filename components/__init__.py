"""flightdeck: a Pulumi program that turns one Kubernetes cluster into a hosting platform.

Layout (each module one concept):
    config            stack configuration model (pydantic), pure validation
    stack_config      reads the Pulumi stack config into the model, formats errors
    backup_slots      pure: spreads backup start times over a window, stably
    naming            pure: Kubernetes names and labels derived from the config
    cron_slots        pure: spreads site cron runs over the hour, stably (like backup_slots)
    web_pod, cron_jobs  pure: the web pod and the cron CronJob of a site
    php_settings, wordpress_config, drupal_settings  pure: files and settings the images read
    pod_inputs        pure: digests of what pods read at start (pod-template annotations)
    image_reference   pure: container image reference grammar
    platform          Platform component: operators, MySQL cluster, storage, issuer, sites
    site              Site component: everything one site owns
    site_workload     SiteWorkload component: Deployment, Service, Ingress, PDB, CronJob
    sql/              dynamic providers for databases, users and grants
    registration_logs keeps the SDK's per-resource debug lines off the engine (a measured 16 % of CPU)
"""
