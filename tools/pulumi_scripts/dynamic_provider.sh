#!/bin/sh
# flightdeck's pulumi-resource-pulumi-python: the host for Python dynamic providers.
# The engine starts it with cwd at the project root and, from the Pulumi.yaml runtime
# options, PULUMI_RUNTIME_VIRTUALENV. Running the venv's python is what lets
# `python -m pulumi.dynamic` unpickle providers that live in the project's own modules.
set -e
if [ -n "${PULUMI_RUNTIME_VIRTUALENV:-}" ]; then
    venv=${PULUMI_RUNTIME_VIRTUALENV%/}
    case $venv in
        /*) ;;
        *) venv=$PWD/$venv ;;
    esac
    if [ ! -x "$venv/bin/python" ]; then
        echo "pulumi-resource-pulumi-python: virtualenv '$venv' (Pulumi.yaml) has no bin/python" >&2
        exit 1
    fi
    PATH="$venv/bin:$PATH"
    export PATH
    unset PYTHONHOME
    exec "$venv/bin/python" -u -m pulumi.dynamic "$@"
fi
exec "${PULUMI_PYTHON_CMD:-python3}" -u -m pulumi.dynamic "$@"
