"""flightdeck operations: the Automation API wrapper, the operator CLI and PR preview summaries.

* :mod:`flightdeck.api` — preview/up/refresh/destroy/outputs of a stack, typed results, per-stack lock.
* :mod:`flightdeck.stack_file` — validated, comment-preserving edits of ``Pulumi.<stack>.yaml``.
* :mod:`flightdeck.pr_summary` — ``pulumi preview --json`` to Markdown with a "dangerous" flag.
* :mod:`flightdeck.cli` — the ``flightdeck`` command (``python -m flightdeck``).

Only this package is installed (``pip install --no-deps -e .``); it validates stack files with the
program's own config model (``components.config``), which lives beside it in the checkout. So
when ``components`` is not importable yet, the checkout root is appended to ``sys.path``.
"""

import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

_CHECKOUT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("components") is None and (_CHECKOUT / "components" / "config" / "__init__.py").is_file():
    sys.path.append(str(_CHECKOUT))
