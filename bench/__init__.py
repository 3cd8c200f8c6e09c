"""payfront's benchmarks: real processes under load, reported next to a baseline measured in
the same run (``python -m bench --help``). Not part of the test run."""
