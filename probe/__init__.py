"""A small, real OAuth client for probing a live deployment over HTTP: dynamic registration, PKCE,
login and consent driven like a browser, code exchange and refresh. The test suite and the benchmarks
use it; it depends on nothing of the platform's own code."""
