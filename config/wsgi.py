import os

from django.core.wsgi import get_wsgi_application

from config.body_drain import DrainUnreadBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# a body the platform refused unread is drained, so the kept-alive connection stays usable
application = DrainUnreadBody(get_wsgi_application())
