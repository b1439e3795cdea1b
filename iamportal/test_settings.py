"""Test profile: the development settings with fast hashing and in-memory email."""

from iamportal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# The API's rate limits are off for the suite (their extra queries would change the query
# counts that tests assert); tests/api/test_rate_limits.py turns them on.
API_RATE_PER_KEY = API_RATE_PER_IP = 0
# Every API request looks its key up (tests update rows directly, without the version bump
# that reaches a process's key cache); tests/api/test_key_cache.py turns the cache on.
API_KEY_CACHE_SECONDS = 0
# Permission usage is not noted for the suite (its writes would change the query counts
# that tests assert); tests/policies/test_usage.py turns it on, writing on every note.
USAGE_FLUSH_SECONDS = None
# A fixed key for identity providers' client secrets (federation.crypto).
IAMPORTAL_SECRETS_KEY = "q0Zy0d8HqQ6m7cB8o3vLJ2aC6vU8b0nE9xRkS1pT4wY="
