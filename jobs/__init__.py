"""Bookkeeping of the platform's periodic jobs (public schema): one ``JobRun`` row per job and tenant
with the last run's counts and errors, the run guard that makes a job run once at a time per tenant,
the one summary log line per run, and the platform admin's "run now". Sits below the apps that run
jobs (oauth, connectors) and above ``tenants``."""
