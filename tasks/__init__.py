"""The steps a flow wires: plain typed functions first, thin Prefect `@task` wrappers after."""
