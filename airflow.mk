# Apache Airflow in a venv of its own, for running and testing the DAGs in dags/.
# Airflow's pins (SQLAlchemy, pydantic, FastAPI) conflict with the project's, so it never goes
# into .venv: the DAGs call the project's `fraudops` command instead of importing fraudops.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
AIRFLOW_PYTHON ?= python3

.PHONY: airflow airflow-lock

airflow: $(AIRFLOW_STAMP)

# uv installs the ~440 pinned packages in a fraction of pip's time; unlike pip, it compiles
# their bytecode only when asked (without it, every Airflow process compiles what it imports).
$(AIRFLOW_STAMP): airflow-constraints.txt
	test -x $(AIRFLOW_BIN)/python || $(AIRFLOW_PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install --quiet --upgrade pip uv
	$(AIRFLOW_BIN)/uv pip install --quiet --compile-bytecode --python $(AIRFLOW_BIN)/python -r airflow-constraints.txt
	touch $(AIRFLOW_STAMP)

# Re-pin Airflow and everything it needs after changing airflow-requirements.in.
airflow-lock:
	test -x $(AIRFLOW_BIN)/python || $(AIRFLOW_PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install --quiet uv
	$(AIRFLOW_BIN)/uv pip compile airflow-requirements.in --python-version 3.11 --quiet \
		-o airflow-constraints.txt
