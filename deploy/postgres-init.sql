-- First start of the compose Postgres: the extension and Dagster's own database.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE DATABASE dagster OWNER sage;
