"""flightdeck: a Pulumi program that turns one Kubernetes cluster into a hosting platform.

Layout (each module one concept):
    config            stack configuration model (pydantic), pure validation
    stack_config      reads the Pulumi stack config into the model, formats errors
    backup_slots      pure: spreads backup start times over a window, stably
    naming            pure: Kubernetes names and labels derived from the config
    platform          Platform component: operators, MySQL cluster, storage, issuer, sites
    site              Site component: everything one site owns
    sql/              dynamic providers for databases, users and grants
"""
