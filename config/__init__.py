# The project package is ``config`` (as in cookiecutter-django), not ``platform``: a package importable
# as ``platform`` would shadow Python's standard-library module, which uuid, Celery and others import.
from config.celery import app as celery_app

__all__ = ("celery_app",)
