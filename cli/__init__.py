"""The command line: `vigie`, one front end on top of the flows, tasks and warehouse."""
