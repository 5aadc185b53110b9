# The two commands a fresh clone needs: `make demo` and `make test`. Everything installs into .venv.
.PHONY: demo test test-compat lint docs bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	@scripts/demo.sh

test: bootstrap
	@scripts/test.sh

# The oldest supported Airflow lines (3.1 on Python 3.10, 3.2 on Python 3.13), each in its own venv.
test-compat: bootstrap
	@scripts/test-compat.sh

lint: bootstrap
	@scripts/lint.sh

docs: bootstrap
	.venv/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf .venv .venv-pycarol .venv-airflow-3.1 .venv-airflow-3.2 .airflow .sandbox
