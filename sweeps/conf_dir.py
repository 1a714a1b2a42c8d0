"""Where the default configs are: sweeps/conf in an installed package (pyproject.toml maps the
repository's conf/ there), the repository's conf/ in a source tree (the Makefile's editable
install, PYTHONPATH). A user's own configs come in with --config-dir or hydra.searchpath.
A leaf (stdlib only)."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
CONF = _PACKAGE / "conf" if (_PACKAGE / "conf").is_dir() else _PACKAGE.parent / "conf"
