"""churnkit: churn analysis from transaction exports.

The library is the product; the ``churnkit`` command is a thin shell over it.
"""

__version__ = "0.1.0"
