# The two commands a fresh clone needs: `make demo` and `make test`. Everything installs into .venv.
.PHONY: demo test lint docs bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	@scripts/demo.sh

test: bootstrap
	@scripts/test.sh

lint: bootstrap
	@scripts/lint.sh

docs: bootstrap
	.venv/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf .venv .venv-pycarol .airflow .sandbox
