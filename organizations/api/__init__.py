"""The organizations app's API operations, one module per domain (iamportal.api mounts them)."""
