"""The platform's periodic jobs: the per-tenant fan-out (``jobs.fanout``), the django-celery-beat rows
each app lists (``jobs.schedules``), and their bookkeeping (public schema): one ``JobRun`` row per job
and tenant with the last run's counts and errors, the run guard that makes a job run once at a time
per tenant, the one summary log line per run, and the platform admin's "run now". Sits below the apps
that run jobs (oauth, connectors, mcp_tools, observability) and above ``tenants``."""
