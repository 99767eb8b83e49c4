"""A IIIF Image API 3.0 and 2.1 server for libraries and museums."""

__version__ = "0.1.0"
