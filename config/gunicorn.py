"""gunicorn settings for ``make run`` (``tools/run_platform.py`` passes ``-c python:config.gunicorn``).

The access log names no credential and no query: gunicorn's default format writes ``%(u)s`` (the
user part of HTTP Basic credentials, and a Basic value without a colon whole, so a secret sent that
way lands in the log) and ``%(r)s``/``%(f)s`` (the request line and Referer, whose query strings can
carry authorization codes, e.g. on the connections callback). Logged instead: client address, time,
method, path, protocol, status, size, duration in ms and user agent.
"""

import os

# Threads in each worker: a request spends much of its time waiting on PostgreSQL, and on the
# 2-core machine gthread raised every endpoint's throughput by 1.4-1.8x over sync workers
# (docs/benchmarks.md). Each thread keeps its own database connection: workers x threads per node.
# Not uvicorn: Django under ASGI runs each request in its own thread, so persistent connections must be
# off there and every request pays a new connection.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# Seconds an idle kept-alive connection stays open. Behind a load balancer, set it above the
# balancer's idle timeout (some need more than 600 s): a server that closes idle connections first
# turns the balancer's reuse of one into a 502.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "2"))

accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'


def child_exit(server, worker) -> None:
    """Prometheus multiprocess mode: drop a dead worker's live-gauge files (observability.metrics)."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def pre_request(worker, req) -> None:
    """A body too large to drain, or of undeclared length, closes its connection after the answer,
    on purpose and announced (``config.body_drain``)."""
    from config.body_drain import close_after_large_body

    close_after_large_body(req)
