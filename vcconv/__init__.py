"""vcconv: one-shot voice conversion with interpretable auto-encoders."""

import os as _os

# OpenMP threads that spin while waiting make a 2-thread CPU run many times slower as soon as
# another process competes for the cores; passive waiting costs little when the machine is idle.
# Must be set before torch (libgomp) loads; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
