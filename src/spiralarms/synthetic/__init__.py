"""Stage `synthesize` (demo only): synthetic galaxies in the real GZ2 formats: rendering, volunteer
votes, arm masks, the physical table and contact sheets."""
