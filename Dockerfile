# The Airflow image of docker-compose.yaml: the official Airflow 3.3.2 image (Python 3.11) with this
# provider installed from the working tree. Built once by `docker compose up --build`; rebuild after
# changing the provider's code (the example DAGs are mounted, not copied, so they need no rebuild).
FROM apache/airflow:3.3.2-python3.11

# Only what the wheel is built from (pyproject's readme is part of the metadata).
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow-provider-carol/
COPY --chown=airflow:root airflow_provider_carol /opt/airflow-provider-carol/airflow_provider_carol

# Pinning apache-airflow to the image's own version (AIRFLOW_VERSION is set by the base image) keeps
# pip from upgrading or downgrading Airflow while it resolves the provider's requirements, as the
# Airflow image documentation recommends. Every other requirement is already in the image.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/airflow-provider-carol[all]"
