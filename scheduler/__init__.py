"""friendtor: keeps peer mentorship groups meeting."""

__version__ = "0.1.0"
