"""The stored `qwenfit calibrate` constants: where they live, reading them and handing them to the
speed model. Kept apart from :mod:`.calibration` (the tool-output parsers and the fit) so that a
check or plan reads the file, when there is one, without importing the calibration code."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["FILE", "activate", "calibration_path", "config_dir", "load"]

FILE = "calibration.json"


def config_dir() -> Path:
    """``$QWENFIT_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/qwenfit``, else platformdirs' user config
    directory, else ``~/.config/qwenfit``."""
    if os.environ.get("QWENFIT_CONFIG_DIR"):
        return Path(os.environ["QWENFIT_CONFIG_DIR"])
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "qwenfit"
    if sys.platform.startswith("linux") and xdg is None:
        # what platformdirs' Unix user_config_dir gives with XDG_CONFIG_HOME unset, without importing it
        return Path(os.path.expanduser("~/.config")) / "qwenfit"
    try:
        import platformdirs

        return Path(platformdirs.user_config_dir("qwenfit"))
    except ImportError:
        return Path.home() / ".config" / "qwenfit"


def calibration_path() -> Path:
    return config_dir() / FILE


def load() -> dict[str, float]:
    """Every stored calibrated constant (none when ``QWENFIT_CALIBRATION=off`` or no file)."""
    if os.environ.get("QWENFIT_CALIBRATION", "").lower() in ("off", "0", "no"):
        return {}
    path = calibration_path()
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, float] = {}
    for entry in doc.get("entries", []):
        out.update({k: float(v) for k, v in entry.get("constants", {}).items()})
    return out


_ACTIVE: list[bool] = []


def activate(*, force: bool = False) -> dict[str, float]:
    """Hand the stored constants to the speed model (once per process unless ``force``)."""
    from qwenfit.core.fit.speed import use_calibration

    if _ACTIVE and not force:
        return {}
    _ACTIVE.append(True)
    consts = load()
    use_calibration(consts)
    return consts
