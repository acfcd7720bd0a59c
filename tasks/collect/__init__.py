"""Collection: plan the sources, fetch them (bounded, conditional GET), parse and normalise each
kind, match the watch queries, and judge each source's health."""
