"""Publishing to Prefect: the run summary and tables in the UI, and the events automations use."""
