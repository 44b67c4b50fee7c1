"""Analysis of run outputs: typed frames (``load_run`` and its helpers), the HTML
report and the comparison of two runs. Reads only the files of a run directory."""

from arbsim.analysis import frames
from arbsim.analysis.frames import *  # noqa: F403 - the package re-exports frames' public API

__all__ = frames.__all__
