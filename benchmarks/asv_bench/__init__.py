"""airspeed velocity benchmarks of roharness (see ../README.md); timing is never asserted."""
