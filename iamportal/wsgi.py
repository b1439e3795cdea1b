import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iamportal.settings")
application = get_wsgi_application()
# What start-up made (modules, URL patterns, compiled templates) lives as long as the
# process: keep it out of the collector's full passes, which otherwise pause a request
# for ~80 ms once a worker holds a large organization's compiled rules.
gc.freeze()
