"""Keep the log lines of third-party libraries out of user output unless asked for (`--verbose`).

LanceDB's Rust core logs through `env_logger`, configured once, when `lancedb` is imported, from the environment
variable `LANCEDB_LOG` (Lance's own Python package reads `LANCE_LOG`). Unset, it prints WARN lines such as
"No existing dataset at .../knowledge_meta.lance, it will be created" on a first run. The entry points (cli.py,
app.py) call `quiet_library_logs` before anything imports lancedb; a level the user set is kept.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

QUIET_LEVEL = "error"
LOG_LEVEL_VARIABLES = ("LANCEDB_LOG", "LANCE_LOG")


def quiet_library_logs(verbose: bool = False, environ: MutableMapping[str, str] | None = None) -> None:
    """Set the libraries' log level to errors only, unless `verbose` or the user set a level already."""
    if verbose:
        return
    environ = os.environ if environ is None else environ
    for name in LOG_LEVEL_VARIABLES:
        environ.setdefault(name, QUIET_LEVEL)
