"""localrag: a private assistant over your own documents and recordings, offline and encrypted."""

__version__ = "0.1.0"

# Before any library that could phone home is imported: telemetry off, hubs offline.
from localrag import hardening as _hardening

_hardening.quiet_libraries()
