"""Detection: the volume detector against a seasonal baseline, the other signals (sentiment,
crisis terms, major media, spread), breaking stories, and the replays and simulations that run
the same detector on recorded or synthetic series."""
