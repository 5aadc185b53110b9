"""Apache Airflow provider for TOTVS Carol.

Kept import-free on purpose: DAG files import this package on every parse.
"""

__version__ = "0.1.0"
