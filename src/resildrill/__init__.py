"""resildrill: resilience drills for clinical IT, with recovery measured to a tenth of a second."""

__version__ = "0.1.0"
__all__ = ["__version__"]
