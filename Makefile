# The two commands a fresh clone needs: `make demo` and `make test`. Everything installs into .venv.
.PHONY: demo test lint docs bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	@scripts/demo.sh

test: bootstrap
	@scripts/test.sh

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check airflow_provider_carol

docs: bootstrap
	.venv/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf .venv .venv-pycarol .airflow .sandbox
