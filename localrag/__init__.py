"""localrag: a private assistant over your own documents and recordings, offline and encrypted."""

__version__ = "0.1.0"
