"""``python -m airflow_provider_carol.check``."""

import sys

from airflow_provider_carol.check import main

sys.exit(main())
