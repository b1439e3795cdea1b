"""The project's settings plus one trivial JSON view, for `benchmarks/bench_api.py` only:
the baseline the authorize endpoint is compared with runs on the same stack (gunicorn,
middleware, database connection) without adding a route to the product."""

from iamportal.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_urls"

# The load generator sends thousands of requests a minute from one key and one address:
# limits far above that, so the limiter still counts every request (its cost is part of
# the figures) but never refuses one.
API_RATE_PER_KEY = 10**9
API_RATE_PER_IP = 10**9
