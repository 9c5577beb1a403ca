-- The MLflow server's backend store, beside the warehouse (POSTGRES_DB, fraudops).
CREATE DATABASE mlflow;
