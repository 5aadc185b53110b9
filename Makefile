# The two commands a fresh clone needs: `make demo` and `make test`. Everything installs into .venv.
.PHONY: demo test test-compat lint docs dist bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	@scripts/demo.sh

test: bootstrap
	@scripts/test.sh

# The other supported Airflow lines (2.11, 3.0, 3.1, 3.2; Python 3.11-3.13), each in its own venv.
test-compat: bootstrap
	@scripts/test-compat.sh -j 2

lint: bootstrap
	@scripts/lint.sh

docs: bootstrap
	.venv/bin/mkdocs build --strict --site-dir site

# The release artifacts: dist/ gets the sdist and the wheel, then both are checked (scripts/check_dist.py).
dist: bootstrap
	rm -rf dist
	.venv/bin/uv build --sdist --wheel --out-dir dist
	.venv/bin/python scripts/check_dist.py dist/*

clean:
	rm -rf .venv .venv-pycarol .venv-airflow-* .airflow .sandbox dist
