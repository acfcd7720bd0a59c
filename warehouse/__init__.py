"""The DuckDB warehouse: versioned migrations, the connection, and the queries the rest uses."""
