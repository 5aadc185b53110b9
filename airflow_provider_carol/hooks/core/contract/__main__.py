"""``python -m airflow_provider_carol.hooks.core.contract > docs/carol-api-contract.md``."""

import sys

from airflow_provider_carol.hooks.core.contract.page import markdown

sys.stdout.write(markdown())
