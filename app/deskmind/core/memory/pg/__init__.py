"""The PostgreSQL + pgvector memory backend. psycopg is imported only inside this package."""
